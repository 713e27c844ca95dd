import { definePlugin, toBytes, toMs } from '../pdk/index.ts';
import { prepareExit } from '../pdk/index.ts';
import type { Exit, LogCtx, MaybePromise, ReadonlyHeaders, RequestCtx, ResponseCtx, UpstreamAnswerCtx, UpstreamAnswerHook } from '../pdk/index.ts';
import { hitExit } from './answer.ts';
import { CACHE_STATUSES, counterKey } from './counters.ts';
import type { CacheStatus } from './counters.ts';
import { Flights } from './flight.ts';
import type { Claim, WaitEnd } from './flight.ts';
import { headerView } from './header-view.ts';
import { digestOf, entryKey, keyDigest, keyMaterial, variantKey, varyNames } from './key.ts';
import { LocalEntries } from './local.ts';
import type { LocalEntry } from './local.ts';
import { generationKey } from './purge.ts';
import type { KeySpec } from './key.ts';
import { askIfChanged, hasValidator, refreshedHeaders, takePreconditions } from './revalidate.ts';
import { hasBody, initialAge, notModified, requestBypasses, verdict } from './rules.ts';
import type { RequestFacts, StoreRules } from './rules.ts';
import { schema } from './schema.ts';
import { isMarker, partsFor, readAt, readBody, writeEntry } from './store.ts';
import type { Head } from './store.ts';

/** An entry as a lookup found it: the key its head is under (the variant's, when it varies) and the head. */
interface Found {
  readonly key: string;
  readonly head: Head;
}

/** One request's way through the cache, from access to log. */
interface CacheState {
  status: CacheStatus;
  /** The key's material (key.ts), digest (X-Cache-Key) and the entry key; '' on BYPASS. */
  readonly material: string;
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
  /** The expired entry found: the answer to an upstream failure (stale_if_error), refreshed by a 304. */
  stale: Found | null;
  /** Its body, read once its validators went upstream: a 304 is answered with it. */
  staleBody: Uint8Array | null;
  /** The client's preconditions, kept aside once the request goes upstream without them (revalidate.ts); null = still in the request. */
  preconditions: ReadonlyHeaders | null;
}

declare module '../pdk/index.ts' {
  interface CtxVars { proxyCache?: CacheState }
}

const VERSION = '1.2.0';

/** Headers the entry never keeps: recomputed on every answer (Age, Content-Length) or the cache's own. */
const NOT_STORED: ReadonlySet<string> = new Set(['age', 'content-length', 'x-cache-status', 'x-cache-key']);

/** Answers made from an entry: they carry their own cache headers, and store nothing. */
const FROM_ENTRY: ReadonlySet<CacheStatus> = new Set(['HIT', 'STALE', 'UPDATING', 'REVALIDATED']);

/** What stale_if_error answers for: the upstream's own 5xx of these, or the gateway's when no answer came. */
const FAILURES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * How long an expired entry with a validator is kept for revalidation when
 * no stale window asks for longer: nginx's proxy_cache_path `inactive`
 * default. The zone's LRU evicts it sooner when room is needed.
 */
const REVALIDATE_KEEP_MS = 10 * 60_000;

/**
 * `build(route)`, kept for the last route seen: one instance serves one route
 * (or every route when global), so the keys it derives from the route's name
 * are made once, not per request.
 */
function forLastRoute<T>(build: (route: string) => T): (route: string) => T {
  let last: string | null = null;
  let value: T | undefined;
  return (route) => {
    if (route !== last) {
      value = build(route);
      last = route;
    }
    return value!;
  };
}

/**
 * proxy-cache (issue 14): GET/HEAD responses stored in a shared dict, so
 * every worker answers from what any worker fetched. A hit is an Exit from
 * `access`, which the gateway sends through its response writer: the other
 * plugins' header and body filters run on it as on any response. A miss
 * streams to its client while the body filter keeps a copy (up to
 * max_body_size), stored when the whole body has gone through. Misses of
 * one key are one upstream request across workers (flight.ts).
 *
 * An expired entry is kept past its freshness for the stale windows (and,
 * with a validator, for revalidation):
 *   - within stale_while_revalidate it is the answer at once (STALE) while
 *     the lock's holder refreshes it in the background (fetchInBackground);
 *     requests meanwhile get it too (UPDATING);
 *   - within stale_if_error it answers an upstream failure (STALE), through
 *     the gateway's onUpstreamAnswer hook;
 *   - with an ETag or Last-Modified the refresh asks the upstream
 *     conditionally, and a 304 renews it (REVALIDATED).
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
    const whileRevalidateMs = toMs(conf.stale_while_revalidate);
    const ifErrorMs = toMs(conf.stale_if_error);
    const staleMs = Math.max(whileRevalidateMs, ifErrorMs);
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
    // lock_timeout 0: no single flight, every miss goes upstream (and no background refresh: nothing would say one is under way).
    const flights = lockMs > 0 ? new Flights(dict, lockMs, env.workerId, (id) => env.workerAlive(id)) : null;
    let seq = 0;
    const countKeys = forLastRoute((route) => Object.fromEntries(CACHE_STATUSES.map((s) => [s, counterKey(route, s)])) as Readonly<Record<CacheStatus, string>>);
    const entryId = (): string => `${env.workerId.toString(36)}.${(++seq).toString(36)}`;

    const state = (status: CacheStatus, material: string, digest: string, key: string, storable: boolean, authorization: boolean): CacheState => ({
      status, material, digest, key, storable, headers: null, freshMs: 0, chunks: null, size: 0, authorization, lock: null, stale: null, staleBody: null, preconditions: null,
    });

    /** The entry of `key` (its variant for these headers), if it was stored for this very key material. */
    function lookup(key: string, material: string, headers: ReadonlyHeaders): Found | null {
      const found = readAt(dict, key);
      if (found === null) return null;
      if (!isMarker(found)) return found.k === material ? { key, head: found } : null;
      const vkey = variantKey(key, found.vary, headers);
      const head = readAt(dict, vkey);
      return head === null || isMarker(head) || head.k !== material ? null : { key: vkey, head };
    }

    const generationKeyOf = forLastRoute(generationKey);
    const generation = (route: string): number => {
      const v = dict.get(generationKeyOf(route));
      return typeof v === 'number' ? v : 0;
    };

    /** Seconds since the response was made: the Age it had when stored, plus its time in the cache. */
    const ageOf = (head: Head): number => head.a + Math.max(0, Math.floor((env.now() - head.t) / 1000));
    const locals = new LocalEntries();

    /** A local copy's answer: prepared once per second of Age; a conditional request takes the general way. */
    function localAnswer(local: LocalEntry, st: CacheState, headers: ReadonlyHeaders): Exit {
      const head = local.head;
      if (headers.has('if-none-match') || headers.has('if-modified-since')) return answer({ key: st.key, head }, local.body, 'HIT', headers, st.digest);
      const age = ageOf(head);
      if (local.exit === null || local.age !== age) {
        local.exit = prepareExit(hitExit(head, local.body, age, hide ? null : { status: 'HIT', digest: st.digest }));
        local.age = age;
      }
      return local.exit;
    }

    /** The answer from an entry, as `status` says it: a 304 when the client's preconditions hold. */
    function answer(found: Found, body: Uint8Array, status: CacheStatus, preconditions: ReadonlyHeaders, digest: string): Exit {
      const age = ageOf(found.head);
      const unchanged = notModified(preconditions, headerView(found.head.h));
      return hitExit(found.head, unchanged ? null : body, age, hide ? null : { status, digest });
    }

    /** The answer from a fresh, whole entry at `key`, or null (what a waiter polls for). */
    function fresh(st: CacheState, headers: ReadonlyHeaders): Exit | null {
      const found = lookup(st.key, st.material, headers);
      if (found === null || found.head.e <= env.now()) return null;
      const body = readBody(dict, found.key, found.head);
      return body === null ? null : answer(found, body, 'HIT', headers, st.digest);
    }

    /**
     * The request goes upstream (`timeout`: without storing, flight.ts). One
     * that may store goes without the client's preconditions and, for an
     * expired entry that has a validator, with the cache's own.
     */
    function proceed(ctx: RequestCtx, end: Claim | { kind: 'timeout' }, st: CacheState): undefined {
      if (end.kind === 'timeout') st.storable = false;
      if (end.kind === 'lock') st.lock = end.token;
      if (st.storable) askUpstream(ctx, st);
      ctx.vars.proxyCache = st;
      return undefined;
    }

    function askUpstream(ctx: RequestCtx, st: CacheState): void {
      const headers = ctx.req.headers;
      st.preconditions = headerView(takePreconditions(headers));
      const stale = st.stale;
      if (stale === null) return;
      const entry = headerView(stale.head.h);
      if (!hasValidator(entry)) return;
      st.staleBody = readBody(dict, stale.key, stale.head);
      if (st.staleBody !== null) askIfChanged(headers, entry);
    }

    /** Answers a miss from what the lock's holder stores, or sends it on as the lock says. */
    async function waitFor(ctx: RequestCtx, st: CacheState): Promise<Exit | undefined> {
      const end: WaitEnd<Exit> = await flights!.wait(st.key, st.storable, () => fresh(st, ctx.req.headers));
      if (end.kind !== 'hit') return proceed(ctx, end, st);
      answered(ctx, st, 'HIT');
      return end.value;
    }

    /** The request is answered from an entry: nothing of its own to store. */
    function answered(ctx: RequestCtx | UpstreamAnswerCtx, st: CacheState, status: CacheStatus): void {
      st.status = status;
      st.storable = false;
      ctx.vars.proxyCache = st;
    }

    /**
     * stale_while_revalidate: the expired entry is the answer now. The request
     * that takes the key's lock has the gateway fetch it again in the
     * background (STALE); one that finds the lock held knows a refresh is under
     * way (UPDATING). Null when the entry cannot answer (a part evicted) or the
     * last fetch was not storable (the lock says pass): then it is a miss.
     */
    function serveStale(ctx: RequestCtx, st: CacheState, stale: Found): Exit | null {
      const body = readBody(dict, stale.key, stale.head);
      if (body === null) return null;
      const claim = flights!.claim(st.key, true);
      if (claim.kind === 'pass') return null;
      const status: CacheStatus = claim.kind === 'lock' ? 'STALE' : 'UPDATING';
      const exit = answer(stale, body, status, ctx.req.headers, st.digest);
      if (claim.kind === 'lock') {
        const refresh = state('EXPIRED', st.material, st.digest, st.key, true, st.authorization);
        refresh.lock = claim.token;
        refresh.stale = stale;
        askUpstream(ctx, refresh);
        ctx.onUpstreamAnswer(onUpstreamAnswer);
        ctx.fetchInBackground({ proxyCache: refresh }, () => unlock(refresh));
      }
      answered(ctx, st, status);
      return exit;
    }

    /** The upstream's answer to a request that found an expired entry: a 304 renews it, a failure may be answered with it. */
    const onUpstreamAnswer: UpstreamAnswerHook = (ctx, status, headers) => {
      const st = ctx.vars.proxyCache;
      const stale = st?.stale ?? null;
      if (st === undefined || stale === null) return null;
      if (status === 304 && st.staleBody !== null && headers !== null) return revalidated(ctx, st, stale, st.staleBody, headers);
      if (!FAILURES.has(status) || env.now() >= stale.head.e + ifErrorMs) return null;
      const body = st.staleBody ?? readBody(dict, stale.key, stale.head);
      if (body === null) return null;
      // The upstream is failing: the waiters go to it at once, each answered by its own stale entry, rather than one after another.
      passOn(st);
      answered(ctx, st, 'STALE');
      return answer(stale, body, 'STALE', st.preconditions ?? ctx.req.headers, st.digest);
    };

    /** A 304 to the cache's own conditional request: the entry, its headers updated, fresh again. */
    function revalidated(ctx: UpstreamAnswerCtx, st: CacheState, stale: Found, body: Uint8Array, notModified: ReadonlyHeaders): Exit {
      const list = refreshedHeaders(stale.head.h, notModified, NOT_STORED);
      const v = verdict(rules, facts(ctx, st), stale.head.s, headerView(list), env.now());
      const head = v.store ? save(ctx.req.headers, st, stale.head.s, list, v.freshMs, body) : { ...stale.head, h: list };
      unlock(st);
      answered(ctx, st, 'REVALIDATED');
      return answer({ key: stale.key, head }, body, 'REVALIDATED', st.preconditions ?? ctx.req.headers, st.digest);
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

    const facts = (ctx: UpstreamAnswerCtx, st: CacheState): RequestFacts => ({
      authorization: st.authorization,
      isolatedConsumer: conf.consumer_isolation && ctx.identity !== null && !ctx.identity.anonymous,
    });

    /** Whether the response may become an entry; if so, the state is set up to copy its body. */
    function keep(ctx: ResponseCtx, st: CacheState): boolean {
      // What the upstream said, as nginx's proxy_cache reads it: not what the header filters (a transformer's
      // Cache-Control for browsers, an `append`) made of it, which run again on every answer from the entry.
      const upstream = ctx.res.sourceHeaders;
      const v = verdict(rules, facts(ctx, st), ctx.res.status, upstream, env.now());
      if (!v.store) return false;
      const length = upstream.get('content-length');
      if (length !== undefined && Number(length) > maxBody) return false;
      const kept: string[] = [];
      upstream.forEach((value, name) => {
        const lower = name.toLowerCase();
        if (!NOT_STORED.has(lower)) kept.push(lower, value);
      });
      st.headers = kept;
      st.freshMs = v.freshMs;
      st.chunks = [];
      return true;
    }

    /**
     * Writes an entry under `key` (or its variant) and returns its head. The
     * zone keeps it past its freshness for the stale windows, and for
     * revalidation when it has a validator.
     */
    function save(req: ReadonlyHeaders, st: CacheState, status: number, list: string[], freshMs: number, body: Uint8Array): Head {
      const key = st.key;
      const headers = headerView(list);
      const vary = varyNames(headers);
      const now = env.now();
      const head: Head = { s: status, h: list, t: now, a: initialAge(headers), e: now + freshMs, n: body.length, p: partsFor(body.length), id: entryId(), k: st.material };
      const headKey = vary.length === 0 ? key : variantKey(key, vary, req);
      const keepMs = Math.max(staleMs, hasValidator(headers) ? REVALIDATE_KEEP_MS : 0);
      if (!writeEntry(dict, key, vary.length === 0 ? null : { vary }, headKey, head, body, freshMs + keepMs)) {
        env.log.debug({ key, bytes: body.length }, 'proxy-cache: entry not stored (zone full)');
      }
      return head;
    }

    return {
      access(ctx: RequestCtx): MaybePromise<Exit | undefined> {
        const req = ctx.req;
        // The client's: an auth plugin's hide_credentials has removed it from `headers` by now (it runs first).
        const authorization = req.clientHeaders.has('authorization');
        if (!methods.has(req.method) || hasBody(req.headers) || (rules.cacheControl && requestBypasses(req.headers))) {
          ctx.vars.proxyCache = state('BYPASS', '', '', '', false, authorization);
          return undefined;
        }
        const route = ctx.route.name;
        const material = keyMaterial(spec(route), {
          method: req.method, path: req.path, query: req.query.toString(), headers: req.headers, identity: ctx.identity, upstream: ctx.upstream ?? '',
        });
        const digest = keyDigest(material);
        const key = entryKey(route, req.path, digest);
        // A HEAD response has no body to make a GET entry from: it reads entries, never writes them.
        const storable = req.method !== 'HEAD';
        const st = state('MISS', material, digest, key, storable, authorization);
        const now = env.now();
        // Read before the entry, as purge.ts bumps it after its deletes.
        const gen = generation(route);
        const local = locals.get(key, material, gen, now);
        if (local !== null) {
          answered(ctx, st, 'HIT');
          return localAnswer(local, st, req.headers);
        }
        const found = lookup(key, material, req.headers);
        if (found !== null) {
          if (found.head.e > now) {
            const body = readBody(dict, found.key, found.head);
            if (body !== null) {
              answered(ctx, st, 'HIT');
              if (found.key !== key) return answer(found, body, 'HIT', req.headers, digest);
              const copy = locals.keep(key, found.head, body, gen, now);
              return copy === null ? answer(found, body, 'HIT', req.headers, digest) : localAnswer(copy, st, req.headers);
            }
          } else {
            st.status = 'EXPIRED';
            st.stale = found;
            if (storable && flights !== null && now < found.head.e + whileRevalidateMs) {
              const exit = serveStale(ctx, st, found);
              if (exit !== null) return exit;
            }
            ctx.onUpstreamAnswer(onUpstreamAnswer);
          }
        }
        if (flights === null) return proceed(ctx, { kind: 'pass' }, st);
        const claim = flights.claim(key, storable);
        if (claim.kind === 'wait') return waitFor(ctx, st);
        if (claim.kind === 'lock') {
          // The holder may have stored and released between our read and our add.
          const late = fresh(st, req.headers);
          if (late !== null) {
            flights.release(key, claim.token);
            answered(ctx, st, 'HIT');
            return late;
          }
        }
        return proceed(ctx, claim, st);
      },

      headerFilter(ctx: ResponseCtx): void {
        const st = ctx.vars.proxyCache;
        if (st === undefined) return;
        const res = ctx.res;
        if (FROM_ENTRY.has(st.status)) {
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
        save(ctx.req.headers, st, ctx.res.status, st.headers!, st.freshMs, Buffer.concat(st.chunks, st.size));
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
        dict.incr(countKeys(ctx.route.name)[st.status], 1, 0);
      },

      dispose(): void {
        flights?.releaseAll();
      },
    };
  },
});
