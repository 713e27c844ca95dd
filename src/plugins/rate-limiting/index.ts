import { bySchema, compileKey, definePlugin, errorExit, missingKey, NO_LIMIT_KEY, onMissingKeySchema, s, Type } from '../pdk/index.ts';
import type { Exit, KeyFn, RequestCtx, ResponseCtx, SharedDict } from '../pdk/index.ts';
import type { LimitClient } from './redis.ts';
import { closeRedisPool, redisPool } from './redis-pool.ts';
import { LocalWindow, MAX_LIMIT, WINDOWS } from './window.ts';
import type { WindowName } from './window.ts';

declare module '../pdk/index.ts' {
  interface CtxVars {
    /** rate-limiting's header values for this request: see `Outcome`. */
    rateLimiting?: Outcome;
  }
}

const WINDOW_NAMES = Object.keys(WINDOWS) as WindowName[];

const count = (w: WindowName) =>
  Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT, description: `Requests allowed per ${w}` }));

const Limit = Type.Refine(
  s.object({
    by: bySchema('consumer'),
    second: count('second'),
    minute: count('minute'),
    hour: count('hour'),
    day: count('day'),
  }, { description: 'One limit: a key and one or several windows' }),
  (l) => WINDOW_NAMES.some((w) => l[w] !== undefined),
  () => 'a limit needs at least one of second, minute, hour, day',
);

const Schema = s.object({
  limits: Type.Array(Limit, { minItems: 1, maxItems: 16, description: 'Every limit is enforced; a request passes only if it is under all of them' }),
  algorithm: Type.Union([Type.Literal('sliding-window'), Type.Literal('fixed-window')], {
    default: 'sliding-window',
    description: 'sliding-window weights the previous window by how much of it is still inside the last period; fixed-window resets at each boundary',
  }),
  group: Type.Optional(Type.String({ minLength: 1, description: 'Routes with the same group share counters (default: each route has its own)' })),
  on_missing_key: onMissingKeySchema('A request without the key (no identity, no header): reject it (403), count it by client address instead, or skip that limit'),
  policy: Type.Union([Type.Literal('local'), Type.Literal('redis')], { default: 'local', description: 'local: counters in a shared dict; redis: in a Redis server shared by several gateways' }),
  dict: s.dict({ default: 'sluice_limits', description: 'Shared dict holding the local counters (see README: sizing)' }),
  redis: s.object({
    url: Type.String({ default: 'redis://127.0.0.1:6379', description: 'redis:// or rediss:// URL (user, password and db number in it)' }),
    timeout: Type.Integer({ minimum: 1, default: 2000, description: 'ms to connect or answer before Redis counts as unreachable' }),
    prefix: Type.String({ default: 'sluice:rl:', description: 'Prefix of every Redis key' }),
  }, { description: 'policy redis' }),
  fault_tolerant: Type.Boolean({ default: true, description: 'policy redis: while Redis is unreachable, count locally (true) or refuse with 503 (false)' }),
  hide_client_headers: Type.Boolean({ default: false, description: 'Do not send RateLimit-* and X-RateLimit-* headers' }),
  error_code: Type.Integer({ minimum: 400, maximum: 599, default: 429, description: 'Status when a limit is hit' }),
  error_message: Type.String({ default: 'API rate limit exceeded', description: 'message of the JSON body when a limit is hit' }),
}, { description: 'Limits requests per consumer, user, company, client address, route or header, exactly across workers' });

/** One window of one limit. */
interface Counter {
  readonly limitIndex: number;
  readonly window: WindowName;
  /** Index of `window` in WINDOW_NAMES. */
  readonly slot: number;
  /** Appended to the limit's key: `:<limit>:<window>`. */
  readonly suffix: string;
  readonly local: LocalWindow;
}

/**
 * Header values decided in access and sent in headerFilter: the most
 * restrictive counter for RateLimit-*, and per window name the lowest
 * remaining among the limits using it, with that limit. A class with an array
 * literal, not typed arrays: it is made on every request, and V8 allocates
 * these far faster.
 */
class Outcome {
  limit = 0;
  left = -1;
  reset = 0;
  /** Per window slot: [remaining (-1: no limit uses it), limit, …], two entries for each of the four WINDOWS. */
  readonly slots: number[] = [-1, 0, -1, 0, -1, 0, -1, 0];
}

const REDIS_DOWN = errorExit('GW_ERR_RATE_LIMIT_UNAVAILABLE');

const cap = (w: WindowName): string => w[0]!.toUpperCase() + w.slice(1);
const LIMIT_HEADERS = WINDOW_NAMES.map((w) => `X-RateLimit-Limit-${cap(w)}`);
const REMAINING_HEADERS = WINDOW_NAMES.map((w) => `X-RateLimit-Remaining-${cap(w)}`);
const secs = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/**
 * Kong's rate-limiting with several limits and exact counting: each counter
 * is checked and counted in one atomic step (a shdict `update` under the
 * stripe lock, or one Redis script for all counters). Locally, when a later
 * limit refuses, the counts already taken are given back, so refused requests
 * use no quota; in between, a concurrent request may see one count too many
 * and be refused: an error on the side of the limit, never over it.
 * With `policy: redis`, the routes of a worker naming one server share one
 * client, closed when the worker exits.
 */
export const rateLimiting = definePlugin({
  name: 'rate-limiting',
  version: '1.0.0',
  priority: 910, // Kong's
  schema: Schema,
  create(conf, env) {
    const sliding = conf.algorithm === 'sliding-window';
    const keys: KeyFn[] = conf.limits.map((l) => compileKey(l.by));
    const counters: Counter[] = [];
    conf.limits.forEach((l, limitIndex) => {
      for (let slot = 0; slot < WINDOW_NAMES.length; slot++) {
        const window = WINDOW_NAMES[slot]!;
        const limit = l[window];
        if (limit === undefined) continue;
        counters.push({ limitIndex, window, slot, suffix: `:${limitIndex}:${window}`, local: new LocalWindow(limit, WINDOWS[window], sliding) });
      }
    });
    const usedSlots = [...new Set(counters.map((c) => c.slot))];
    const scope = conf.group === undefined ? null : `rl:${conf.group}:`;
    const dict: SharedDict = env.dict(conf.dict);
    const headers = !conf.hide_client_headers;
    const rejected = errorExit('GW_ERR_RATE_LIMITED', { status: conf.error_code, message: conf.error_message });
    // Connecting starts now; the first requests wait for it in checkRedis.
    const redis: Promise<LimitClient> | null = conf.policy === 'redis' ? redisPool(env).client(conf.redis) : null;
    let redisDown = false;

    /** Per limit, its key for this request (null: skip it), or null when the request is refused for a missing key. */
    function keysOf(ctx: RequestCtx): (string | null)[] | null {
      const prefix = scope ?? `rl:${ctx.route.name}:`;
      const out: (string | null)[] = [];
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!(ctx) ?? missingKey(conf.on_missing_key, ctx.client);
        if (typeof k === 'string') out.push(prefix + k);
        else if (k === null) out.push(null);
        else return null;
      }
      return out;
    }

    function note(o: Outcome, c: Counter, limit: number, left: number, resetMs: number): void {
      const at = 2 * c.slot;
      const r = o.slots[at]!;
      if (r === -1 || left < r) {
        o.slots[at] = left;
        o.slots[at + 1] = limit;
      }
      if (o.left === -1 || left < o.left) {
        o.limit = limit;
        o.left = left;
        o.reset = secs(resetMs);
      }
    }

    function refuse(c: Counter, limit: number, retryMs: number, resetMs: number): Exit {
      const h: Record<string, string> = { 'Retry-After': String(secs(retryMs)) };
      if (headers) {
        h['RateLimit-Limit'] = String(limit);
        h['RateLimit-Remaining'] = '0';
        h['RateLimit-Reset'] = String(secs(resetMs));
        h[LIMIT_HEADERS[c.slot]!] = String(limit);
        h[REMAINING_HEADERS[c.slot]!] = '0';
      }
      return { ...rejected, headers: h };
    }

    function checkLocal(ctx: RequestCtx, ks: readonly (string | null)[]): Exit | undefined {
      const now = env.now();
      const o = headers ? new Outcome() : null;
      for (let i = 0; i < counters.length; i++) {
        const c = counters[i]!;
        const k = ks[c.limitIndex];
        if (k === null || k === undefined) continue;
        const w = c.local;
        if (!w.check(dict, k + c.suffix, now)) {
          // Retry-After is when every window used up lets a request through, not only this one.
          let retry = w.retryIn(now);
          for (let j = i + 1; j < counters.length; j++) {
            const d = counters[j]!;
            const dk = ks[d.limitIndex];
            if (dk !== null && dk !== undefined && !d.local.wouldPass(dict, dk + d.suffix, now)) retry = Math.max(retry, d.local.retryIn(now));
          }
          const refusal = refuse(c, w.limit, retry, w.resetIn(now));
          for (let j = 0; j < i; j++) {
            const d = counters[j]!;
            const dk = ks[d.limitIndex];
            if (dk !== null && dk !== undefined) d.local.undo(dict, dk + d.suffix);
          }
          return refusal;
        }
        if (o !== null) note(o, c, w.limit, w.remaining(), w.resetIn(now));
      }
      if (o !== null) ctx.vars.rateLimiting = o;
      return undefined;
    }

    async function checkRedis(ctx: RequestCtx, ks: readonly (string | null)[]): Promise<Exit | undefined> {
      const now = env.now();
      const used: Counter[] = [];
      const args: (string | number)[] = [];
      const argv: (string | number)[] = [];
      for (const c of counters) {
        const k = ks[c.limitIndex];
        if (k === null || k === undefined) continue;
        const n = Math.floor(now / c.local.ms);
        const base = conf.redis.prefix + k + c.suffix + ':';
        args.push(base + n, base + (n - 1));
        const weight = sliding ? (c.local.ms - (now - n * c.local.ms)) / c.local.ms : 0;
        argv.push(c.local.limit, weight, c.local.ms * 2);
        used.push(c);
      }
      if (used.length === 0) return undefined;
      let res: number[];
      try {
        res = await (await redis!).sluiceRateLimit(args.length, ...args, ...argv);
      } catch (err) {
        if (!redisDown) {
          redisDown = true;
          env.log.error({ err, code: 'RL_ERR_REDIS', url: redactUrl(conf.redis.url) },
            conf.fault_tolerant ? 'redis unreachable: counting locally until it is back' : 'redis unreachable: refusing requests until it is back');
        }
        return conf.fault_tolerant ? checkLocal(ctx, ks) : REDIS_DOWN;
      }
      if (redisDown) {
        redisDown = false;
        env.log.info({ url: redactUrl(conf.redis.url) }, 'redis reachable again: counting in redis');
      }
      if (res[0] === -1) {
        // Every refusing counter's counts, seen through its local window's estimate: the headers name the first,
        // Retry-After waits for all of them.
        let retry = 0;
        for (let r = 1; r < res.length; r += 3) {
          const w = used[res[r]! - 1]!.local;
          w.observe(res[r + 1]!, res[r + 2]!, now);
          retry = Math.max(retry, w.retryIn(now));
        }
        const c = used[res[1]! - 1]!;
        return refuse(c, c.local.limit, retry, c.local.resetIn(now));
      }
      if (!headers) return undefined;
      const o = new Outcome();
      for (let i = 0; i < used.length; i++) {
        const c = used[i]!;
        const ms = c.local.ms;
        const start = Math.floor(now / ms) * ms;
        const weight = sliding ? (ms - (now - start)) / ms : 0;
        const left = Math.max(0, Math.floor(c.local.limit - res[2 * i + 2]! * weight - res[2 * i + 1]!));
        note(o, c, c.local.limit, left, start + ms - now);
      }
      ctx.vars.rateLimiting = o;
      return undefined;
    }

    function headerFilter(ctx: ResponseCtx): void {
      const o = ctx.vars.rateLimiting;
      if (o === undefined) return;
      const h = ctx.res.headers;
      h.set('RateLimit-Limit', o.limit);
      h.set('RateLimit-Remaining', o.left);
      h.set('RateLimit-Reset', o.reset);
      for (let i = 0; i < usedSlots.length; i++) {
        const slot = usedSlots[i]!;
        const r = o.slots[2 * slot]!;
        if (r === -1) continue;
        h.set(LIMIT_HEADERS[slot]!, o.slots[2 * slot + 1]!);
        h.set(REMAINING_HEADERS[slot]!, r);
      }
    }

    return {
      access(ctx) {
        const ks = keysOf(ctx);
        if (ks === null) return NO_LIMIT_KEY;
        return redis === null ? checkLocal(ctx, ks) : checkRedis(ctx, ks);
      },
      ...(headers ? { headerFilter } : {}),
    };
  },
  // The worker's Redis clients are shared by its instances (one per server), so
  // they close here, once every instance is disposed, not with any one of them.
  dispose: closeRedisPool,
});

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparsable)';
  }
}
