import { definePlugin } from '../pdk/index.ts';
import { chooseUpstream, compileRules } from './rules.ts';
import { Schema } from './schema.ts';

/**
 * Tenant and canary routing (issue 15, APISIX's traffic-split): the first
 * rule that matches sends the request to its upstream, a tenant template's
 * upstream when the conf defines one, or a weighted share; no rule leaves the
 * route's own `upstream`. Identity comes only from `ctx.identity`, which auth
 * plugins set after verifying a credential, never from a client header.
 */
export const trafficSplit = definePlugin({
  name: 'traffic-split',
  version: '1.0.0',
  // After the auth plugins (jwt 1450 … basic-auth 1100), so the identity is known, and the limits
  // (limit-conn 1002, limit-req 1001, rate-limiting 910), so a refused request costs no choice;
  // before request-transformer (801), so rules see the headers the client sent, and before
  // proxy-cache (100), which keys on ctx.upstream. APISIX's 966 would run before Kong's rate-limiting.
  priority: 900,
  schema: Schema,
  create(conf, env) {
    const table = compileRules(conf, env.random);
    return {
      access(ctx) {
        chooseUpstream(table, ctx);
      },
    };
  },
});
