import { setTimeout as sleep } from 'node:timers/promises';
import { bySchema, compileKey, definePlugin, errorExit, missingKey, onMissingKeySchema, s, Type } from '../pdk/index.ts';
import type { SharedDict } from '../pdk/index.ts';

declare module '../pdk/index.ts' {
  interface CtxVars {
    /** The limit-conn counter this request holds, released in log. */
    limitConnKey?: string;
  }
}

const Schema = s.object({
  conn: Type.Integer({ minimum: 1, description: 'Concurrent requests per key passed at once' }),
  burst: Type.Integer({ minimum: 0, default: 0, description: 'Concurrent requests above conn that are delayed instead of refused' }),
  default_conn_delay: Type.Number({ minimum: 0, default: 0.1, description: 'Seconds a request in the burst waits, per conn requests above conn' }),
  by: bySchema('ip'),
  on_missing_key: onMissingKeySchema('A request without the key: reject it (403), use the client address, or let it pass unlimited'),
  dict: s.dict({ default: 'sluice_limits', description: 'Shared dict holding the counters' }),
  rejected_code: Type.Integer({ minimum: 400, maximum: 599, default: 503, description: 'Status above conn + burst (APISIX: 503)' }),
  rejected_msg: Type.String({ default: 'Too many concurrent requests', description: 'message of the JSON body above conn + burst' }),
}, { description: "APISIX's limit-conn: concurrent requests per key across every worker" });

/**
 * A counter's ttl, refreshed by every acquire: a count a dead worker never
 * released clears once the key has been idle this long. A request still in
 * flight when its key expires releases nothing (the count never goes below 0).
 */
const TTL_MS = 3_600_000;

/** One counter per key; acquire and release are each one `update` under the stripe lock. */
class Gauge {
  private readonly max: number;
  admitted = false;
  /** The count after the last acquire. */
  count = 0;

  constructor(max: number) {
    this.max = max;
  }

  acquire(dict: SharedDict, key: string): boolean {
    this.admitted = false;
    dict.update(key, this.up, TTL_MS);
    return this.admitted;
  }

  release(dict: SharedDict, key: string): void {
    dict.update(key, this.down);
  }

  private readonly up = (v: unknown): number | undefined => {
    const n = typeof v === 'number' ? v : 0;
    if (n >= this.max) return undefined;
    this.admitted = true;
    this.count = n + 1;
    return n + 1;
  };

  private readonly down = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 ? v - 1 : undefined);
}

/**
 * APISIX's limit-conn: up to `conn` requests per key at once, `burst` more
 * delayed, the rest refused. The count is released in the log phase, which
 * runs when the response closes: finished, failed or aborted by the client.
 */
export const limitConn = definePlugin({
  name: 'limit-conn',
  version: '1.0.0',
  priority: 1002, // APISIX's
  schema: Schema,
  create(conf, env) {
    const key = compileKey(conf.by);
    const dict = env.dict(conf.dict);
    const gauge = new Gauge(conf.conn + conf.burst);
    const unitDelay = conf.default_conn_delay * 1000;
    const refusal = errorExit('GW_ERR_CONCURRENCY_LIMITED', { status: conf.rejected_code, message: conf.rejected_msg });
    return {
      access(ctx) {
        const k = key(ctx) ?? missingKey(conf.on_missing_key, ctx.client);
        if (typeof k !== 'string') return k ?? undefined; // skip: unlimited; reject: the 403
        const full = `lc:${ctx.route.name}:${k}`;
        if (!gauge.acquire(dict, full)) return refusal;
        // Held from here: log releases it whatever happens next.
        ctx.vars.limitConnKey = full;
        const over = gauge.count - conf.conn;
        if (over <= 0 || unitDelay === 0) return undefined;
        return sleep(Math.ceil(over / conf.conn) * unitDelay) as Promise<undefined>;
      },
      log(ctx) {
        const k = ctx.vars.limitConnKey;
        if (k !== undefined) gauge.release(dict, k);
      },
    };
  },
});
