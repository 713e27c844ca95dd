import { setTimeout as sleep } from 'node:timers/promises';
import { bySchema, compileKey, definePlugin, errorExit, missingKey, onMissingKeySchema, s, Type } from '../pdk/index.ts';
import type { SharedDict } from '../pdk/index.ts';

const Schema = s.object({
  rate: Type.Number({ exclusiveMinimum: 0, description: 'Requests per second the bucket leaks (nginx limit_req rate)' }),
  burst: Type.Number({ minimum: 0, default: 0, description: 'Requests allowed above the rate, queued (delayed) or, with nodelay, passed at once' }),
  nodelay: Type.Boolean({ default: false, description: 'Pass requests within the burst at once instead of delaying them to the rate' }),
  by: bySchema('ip'),
  on_missing_key: onMissingKeySchema('A request without the key: reject it (403), use the client address, or let it pass unlimited'),
  dict: s.dict({ default: 'sluice_limits', description: 'Shared dict holding the buckets' }),
  rejected_code: Type.Integer({ minimum: 400, maximum: 599, default: 503, description: 'Status beyond the burst (nginx and APISIX: 503)' }),
  rejected_msg: Type.String({ default: 'Too many requests', description: 'message of the JSON body beyond the burst' }),
}, { description: "nginx's limit_req: a leaky bucket per key, shared by every worker" });

/**
 * The bucket of one key is one number in the shared dict: the time its queue
 * drains (GCRA, the same arithmetic as nginx's leaky bucket). A request finds
 * `ahead` = drain time - now ms of queue in front of it, i.e. ahead/interval
 * requests: more than `burst` is a refusal; otherwise it joins the queue
 * (drain time + interval) and, without nodelay, waits `ahead` ms on a timer
 * (the reactor keeps serving). Check and join are one `update` under the
 * stripe lock, so workers share one exact bucket.
 */
class Bucket {
  private readonly interval: number;
  private readonly tolerance: number;
  /** The bucket is gone once drained: its ttl covers the longest possible queue. */
  readonly ttl: number;
  private now = 0;
  admitted = false;
  /** ms the last admitted request should wait. */
  delay = 0;

  constructor(rate: number, burst: number) {
    this.interval = 1000 / rate;
    // A hair of slack so that float rounding never refuses the last request of a burst.
    this.tolerance = burst * this.interval + 1e-6;
    this.ttl = Math.ceil(this.tolerance + this.interval) + 1000;
  }

  take(dict: SharedDict, key: string, now: number): boolean {
    this.now = now;
    this.admitted = false;
    dict.update(key, this.step, this.ttl);
    return this.admitted;
  }

  private readonly step = (v: unknown): number | undefined => {
    const drain = typeof v === 'number' && v > this.now ? v : this.now;
    const ahead = drain - this.now;
    if (ahead > this.tolerance) return undefined;
    this.admitted = true;
    this.delay = ahead;
    return drain + this.interval;
  };
}

/** APISIX's limit-req (nginx limit_req): rate, burst, nodelay, per `by` key. */
export const limitReq = definePlugin({
  name: 'limit-req',
  version: '1.0.0',
  priority: 1001, // APISIX's
  schema: Schema,
  create(conf, env) {
    const key = compileKey(conf.by);
    const dict = env.dict(conf.dict);
    const bucket = new Bucket(conf.rate, conf.burst);
    const refusal = errorExit('GW_ERR_RATE_LIMITED', { status: conf.rejected_code, message: conf.rejected_msg });
    return {
      access(ctx) {
        const k = key(ctx) ?? missingKey(conf.on_missing_key, ctx.client);
        if (typeof k !== 'string') return k ?? undefined; // skip: unlimited; reject: the 403
        if (!bucket.take(dict, `lr:${ctx.route.name}:${k}`, env.now())) return refusal;
        // Below a millisecond a timer would only add latency; nodelay never waits.
        if (conf.nodelay || bucket.delay < 1) return undefined;
        return sleep(bucket.delay) as Promise<undefined>;
      },
    };
  },
});
