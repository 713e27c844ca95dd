import { addressSet, definePlugin, errorExit, s, Type } from '../pdk/index.ts';

const Schema = Type.Refine(
  s.object({
    allow: Type.Array(s.ipOrCidr({ description: 'An IP or CIDR' }), { default: [], description: 'Only these clients pass (empty: any not denied)' }),
    deny: Type.Array(s.ipOrCidr({ description: 'An IP or CIDR' }), { default: [], description: 'These clients are refused; checked before allow' }),
    status: Type.Integer({ minimum: 400, maximum: 599, default: 403, description: 'Status of the refusal' }),
    message: Type.String({ default: 'Your IP address is not allowed', description: 'Message in the JSON refusal body' }),
  }, { description: 'Allow or deny clients by address (the client address from server.real_ip)' }),
  (c) => c.allow.length + c.deny.length > 0,
  () => 'at least one of allow or deny must list an address',
);

/**
 * Kong's ip-restriction on `ctx.client`: the address `server.real_ip`
 * resolved, so a forwarded header counts only from a trusted peer. Deny wins
 * over allow; a non-empty allow list refuses everyone else.
 */
export const ipRestriction = definePlugin({
  name: 'ip-restriction',
  version: '1.0.0',
  priority: 990, // Kong's
  schema: Schema,
  create(conf) {
    const allow = addressSet(conf.allow);
    const deny = addressSet(conf.deny);
    const refusal = errorExit('GW_ERR_IP_DENIED', { status: conf.status, message: conf.message });
    return {
      access(ctx) {
        const ip = ctx.client;
        if (deny !== null && deny.has(ip)) return refusal;
        if (allow !== null && !allow.has(ip)) return refusal;
        return undefined;
      },
    };
  },
});
