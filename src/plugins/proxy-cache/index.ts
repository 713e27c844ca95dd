import { definePlugin, toBytes, toMs } from '../pdk/index.ts';
import type { Exit, LogCtx, MaybePromise, ReadonlyHeaders, RequestCtx, ResponseCtx } from '../pdk/index.ts';
import { hitExit } from './answer.ts';
import { CACHE_STATUSES, counterKey } from './counters.ts';
import type { CacheStatus } from './counters.ts';
import { Flights } from './flight.ts';
import type { Claim, WaitEnd } from './flight.ts';
import { headerView } from './header-view.ts';
import { digestOf, entryKey, keyDigest, variantKey, varyNames } from './key.ts';
import type { KeySpec } from './key.ts';
import { hasBody, initialAge, notModified, requestBypasses, verdict } from './rules.ts';
import type { StoreRules } from './rules.ts';
import { schema } from './schema.ts';
import { isMarker, partsFor, readAt, readBody, writeEntry } from './store.ts';
import type { Head } from './store.ts';

/** One request's way through the cache, from access to log. */
interface CacheState {
  status: CacheStatus;
  /** The key's digest (X-Cache-Key) and the entry key; '' on BYPASS. */
  readonly digest: string;
  readonly key: string;
  /** Whether a response to this request may become an entry at all (not HEAD, not a BYPASS). */
  storable: boolean;
  /** Set by the header filter once the response qualifies. */
  headers: string[] | null;
  freshMs: number;
  chunks: Uint8Array[] | null;
  size: number;
  readonly authorization: boolean;
  /** The single-flight lock's token while this request holds it (flight.ts). */
  lock: string | null;
}

declare module '../pdk/index.ts' {
  interface CtxVars { proxyCache?: CacheState }
}

const VERSION = '1.0.0';

/** Headers the entry never keeps: recomputed on every answer (Age, Content-Length) or the cache's own. */
const NOT_STORED = new Set(['age', 'content-length', 'x-cache-status', 'x-cache-key']);

/**
 * proxy-cache (issue 14, the core): GET/HEAD responses stored in a shared
 * dict, so every worker answers from what any worker fetched. A hit is an
 * Exit from `access`, which the gateway sends through its response writer:
 * the other plugins' header and body filters run on it as on any response.
 * A miss streams to its client while the body filter keeps a copy (up to
 * max_body_size), stored when the whole body has gone through. Misses of
 * one key are one upstream request across workers (flight.ts).
 */
export const proxyCache = definePlugin({
  name: 'proxy-cache',
  version: VERSION,
  priority: 100, // Kong's: after auth (the consumer is known) and the limits (a hit still counts)
  schema,

  create(conf, env) {
    const dict = env.dict(conf.dict);
    const methods = new Set(conf.methods);
    const maxBody = toBytes(conf.max_body_size);
    const hide = conf.hide_cache_headers;
    const rules: StoreRules = {
      statuses: new Set(conf.statuses),
      contentTypes: new Set(conf.content_types.map((t) => t.toLowerCase())),
      ttlMs: toMs(conf.ttl),
      cacheControl: conf.cache_control,
    };
    const confDigest = digestOf([VERSION, JSON.stringify(conf)]);
    let specFor: KeySpec | null = null;
    const spec = (route: string): KeySpec => (specFor?.route === route ? specFor : (specFor = {
      route,
      confDigest,
      varyHeaders: [...new Set(conf.vary_headers.map((h) => h.toLowerCase()))].sort(),
      varyQuery: conf.vary_query,
      isolation: conf.consumer_isolation,
    }));
    const lockMs = toMs(conf.lock_timeout);
    // lock_timeout 0: no single flight, every miss goes upstream.
    const flights = lockMs > 0 ? new Flights(dict, lockMs, env.workerId.toString(36)) : null;
    let seq = 0;
    // The counter keys of the last route seen (one instance serves one route, or every route when global).
    let counted: { readonly route: string; readonly keys: Readonly<Record<CacheStatus, string>> } | null = null;
    const countKey = (route: string, status: CacheStatus): string => (counted?.route === route ? counted : (counted = {
      route, keys: Object.fromEntries(CACHE_STATUSES.map((s) => [s, counterKey(route, s)])) as Record<CacheStatus, string>,
    })).keys[status];
    const entryId = (): string => `${env.workerId.toString(36)}.${(++seq).toString(36)}`;

    const state = (status: CacheStatus, digest: string, key: string, storable: boolean, authorization: boolean): CacheState =>
      ({ status, digest, key, storable, headers: null, freshMs: 0, chunks: null, size: 0, authorization, lock: null });

    function lookup(key: string, headers: ReadonlyHeaders): { key: string; head: Head } | null {
      const found = readAt(dict, key);
      if (found === null) return null;
      if (!isMarker(found)) return { key, head: found };
      const vkey = variantKey(key, found.vary, headers);
      const head = readAt(dict, vkey);
      return head === null || isMarker(head) ? null : { key: vkey, head };
    }

    /** The answer from a fresh, whole entry at `key`, or null; `expired` when an entry was there but stale. */
    function fromEntry(key: string, digest: string, headers: ReadonlyHeaders): { exit: Exit | null; expired: boolean } {
      const found = lookup(key, headers);
      if (found === null) return { exit: null, expired: false };
      const now = env.now();
      if (found.head.e <= now) return { exit: null, expired: true };
      const body = readBody(dict, found.key, found.head);
      if (body === null) return { exit: null, expired: false };
      const age = found.head.a + Math.max(0, Math.floor((now - found.head.t) / 1000));
      const fresh = notModified(headers, headerView(found.head.h));
      return { exit: hitExit(found.head, fresh ? null : body, age, hide ? null : digest), expired: false };
    }

    /** A miss's way on once the lock said: `timeout` goes upstream without storing (flight.ts). */
    function proceed(ctx: RequestCtx, end: Claim | { kind: 'timeout' }, st: CacheState): undefined {
      if (end.kind === 'timeout') st.storable = false;
      if (end.kind === 'lock') st.lock = end.token;
      ctx.vars.proxyCache = st;
      return undefined;
    }

    /** Answers a miss from what the lock's holder stores, or sends it on as the lock says. */
    async function waitFor(ctx: RequestCtx, st: CacheState): Promise<Exit | undefined> {
      const end: WaitEnd<Exit> = await flights!.wait(st.key, st.storable, () => fromEntry(st.key, st.digest, ctx.req.headers).exit);
      if (end.kind !== 'hit') return proceed(ctx, end, st);
      hit(ctx, st);
      return end.value;
    }

    /** The request is answered from an entry: nothing of its own to store. */
    function hit(ctx: RequestCtx, st: CacheState): void {
      st.status = 'HIT';
      st.storable = false;
      ctx.vars.proxyCache = st;
    }

    /** Stored, or failed: the waiters find the entry, or one of them takes the lock over. */
    function unlock(st: CacheState): void {
      if (st.lock === null) return;
      flights!.release(st.key, st.lock);
      st.lock = null;
    }

    /** The upstream's answer is not storable: every waiter goes upstream at once. */
    function passOn(st: CacheState): void {
      if (st.lock === null) return;
      flights!.pass(st.key, st.lock);
      st.lock = null;
    }

    /** Whether the response may become an entry; if so, the state is set up to copy its body. */
    function keep(ctx: ResponseCtx, st: CacheState): boolean {
      const res = ctx.res;
      const v = verdict(rules, { authorization: st.authorization, isolatedConsumer: conf.consumer_isolation && ctx.identity !== null && !ctx.identity.anonymous }, res.status, res.headers, env.now());
      if (!v.store) return false;
      const length = res.headers.get('content-length');
      if (length !== undefined && Number(length) > maxBody) return false;
      const kept: string[] = [];
      // Before the later plugins' filters change it (ours runs at priority 100).
      res.headers.forEach((value, name) => {
        const lower = name.toLowerCase();
        if (!NOT_STORED.has(lower)) kept.push(lower, value);
      });
      st.headers = kept;
      st.freshMs = v.freshMs;
      st.chunks = [];
      return true;
    }

    function store(ctx: ResponseCtx, st: CacheState, chunks: Uint8Array[]): void {
      const headers = headerView(st.headers!);
      const vary = varyNames(headers);
      const body = Buffer.concat(chunks, st.size);
      const now = env.now();
      const head: Head = { s: ctx.res.status, h: st.headers!, t: now, a: initialAge(headers), e: now + st.freshMs, n: body.length, p: partsFor(body.length), id: entryId() };
      const headKey = vary.length === 0 ? st.key : variantKey(st.key, vary, ctx.req.headers);
      if (!writeEntry(dict, st.key, vary.length === 0 ? null : { vary }, headKey, head, body, st.freshMs)) {
        env.log.debug({ key: st.digest, bytes: body.length }, 'proxy-cache: entry not stored (zone full)');
      }
    }

    return {
      access(ctx: RequestCtx): MaybePromise<Exit | undefined> {
        const req = ctx.req;
        const authorization = req.headers.has('authorization');
        if (!methods.has(req.method) || hasBody(req.headers) || (rules.cacheControl && requestBypasses(req.headers))) {
          ctx.vars.proxyCache = state('BYPASS', '', '', false, authorization);
          return undefined;
        }
        const digest = keyDigest(spec(ctx.route.name), {
          method: req.method, path: req.path, query: req.query.toString(), headers: req.headers, identity: ctx.identity,
        });
        const key = entryKey(ctx.route.name, req.path, digest);
        // A HEAD response has no body to make a GET entry from: it reads entries, never writes them.
        const storable = req.method !== 'HEAD';
        const { exit, expired } = fromEntry(key, digest, req.headers);
        const st = state(expired ? 'EXPIRED' : 'MISS', digest, key, storable, authorization);
        if (exit !== null) {
          hit(ctx, st);
          return exit;
        }
        if (flights === null) return proceed(ctx, { kind: 'pass' }, st);
        const claim = flights.claim(key, storable);
        if (claim.kind === 'wait') return waitFor(ctx, st);
        if (claim.kind === 'lock') {
          // The holder may have stored and released between our read and our add.
          const late = fromEntry(key, digest, req.headers).exit;
          if (late !== null) {
            flights.release(key, claim.token);
            hit(ctx, st);
            return late;
          }
        }
        return proceed(ctx, claim, st);
      },

      headerFilter(ctx: ResponseCtx): void {
        const st = ctx.vars.proxyCache;
        if (st === undefined) return;
        const res = ctx.res;
        if (st.status === 'HIT') {
          // The 304's Content-Length would be the exit's 0, not the entry's length (RFC 9110 §8.6): none is right.
          if (res.status === 304) res.headers.remove('content-length');
          return;
        }
        if (!hide) {
          res.headers.set('x-cache-status', st.status);
          if (st.digest !== '') res.headers.set('x-cache-key', st.digest);
        }
        // Only what the upstream said is stored: never a plugin's exit or the gateway's own error.
        const upstream = res.source === 'upstream';
        if (st.storable && upstream && keep(ctx, st)) return;
        if (!upstream || res.status >= 500) unlock(st);
        else passOn(st);
      },

      bodyFilter(ctx: ResponseCtx, chunk: Uint8Array, eof: boolean): Uint8Array {
        const st = ctx.vars.proxyCache;
        if (st === undefined || st.chunks === null) return chunk;
        if (!eof) {
          st.size += chunk.length;
          if (st.size > maxBody) {
            st.chunks = null; // too large: it streams on, unstored
            passOn(st);
          } else st.chunks.push(chunk);
          return chunk;
        }
        // The whole body went through (a cut-off response never gets here). Stored before the
        // response ends, so the client's next request finds the entry, whichever worker it reaches.
        store(ctx, st, st.chunks);
        st.chunks = null;
        unlock(st);
        return chunk;
      },

      // Every response passes here: a holder whose body never ended (client gone, upstream cut) lets a waiter take over,
      // and the request is counted by its X-Cache-Status (counters.ts).
      log(ctx: LogCtx): void {
        const st = ctx.vars.proxyCache;
        if (st === undefined) return;
        unlock(st);
        dict.incr(countKey(ctx.route.name, st.status), 1, 0);
      },

      dispose(): void {
        flights?.releaseAll();
      },
    };
  },
});
