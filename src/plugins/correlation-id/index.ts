import { definePlugin, s, Type } from '../pdk/index.ts';
import type { RequestCtx, ResponseCtx } from '../pdk/index.ts';

/** Visible ASCII only: an incoming id with anything else (CR, LF, spaces, UTF-8) is replaced, never echoed. */
const SAFE_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Kong's correlation-id: every request carries an id upstream (and back, with
 * echo_downstream), kept from the client when it sent a well-formed one. The
 * id is also `ctx.requestId`, which the access log records.
 */
export const correlationId = definePlugin({
  name: 'correlation-id',
  version: '1.0.0',
  priority: 100001, // Kong's: before everything, so every later plugin and log line has the id
  schema: s.object({
    header_name: s.headerName({ default: 'X-Request-Id', description: 'Header the id is read from and sent in' }),
    generator: s.oneOf(['uuid', 'uuid#counter', 'tracker'], {
      default: 'uuid#counter',
      description: 'uuid: a random UUID per request; uuid#counter: a UUID per worker plus a counter (cheapest); tracker: worker-client-time-counter',
    }),
    echo_downstream: Type.Boolean({ default: false, description: 'Also send the id back to the client' }),
  }, { description: 'Give each request an id, upstream and in the access log' }),

  create(conf, env) {
    const header = conf.header_name;
    let counter = 0;
    // uuid#counter: one random UUID per worker and conf, then a counter (Kong's default: no entropy per request).
    const base = conf.generator === 'uuid#counter' ? env.ids.uuid() : '';
    const next: (ctx: RequestCtx) => string =
      conf.generator === 'uuid' ? () => env.ids.uuid()
      : conf.generator === 'uuid#counter' ? () => `${base}#${++counter}`
      : (ctx) => `${env.workerId}-${ctx.client}-${env.now()}-${++counter}`;

    return {
      rewrite(ctx) {
        const incoming = ctx.req.headers.get(header);
        const id = incoming !== undefined && SAFE_ID.test(incoming) ? incoming : next(ctx);
        // set() replaces every copy, so the upstream sees exactly one id.
        ctx.req.headers.set(header, id);
        ctx.requestId = id;
      },
      // Absent, not a per-request `if`, when the id is not echoed.
      headerFilter: conf.echo_downstream
        ? (ctx: ResponseCtx) => {
          if (ctx.requestId !== null) ctx.res.headers.set(header, ctx.requestId);
        }
        : undefined,
    };
  },
});
