import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import type { Peer } from './peers/peers.ts';
import type { LoadRequest } from './request.ts';

/**
 * What the HTTP bench measures. A scenario is a name, the system under test,
 * the request the client repeats, and for Sluice the conf fragment that makes
 * it: `routes` (and, for later plugin scenarios, `plugins`, `consumers`,
 * `shared_dicts`, `access_log`…) merged over the bench's base conf, which
 * defines the upstream `origin` (the bench's own upstream process). Each Sluice
 * scenario gets a fresh gateway on its own conf, so a global plugin in one
 * scenario never leaks into another.
 *
 * A plugin scenario decorates BARE_ROUTE with its plugins (and adds the
 * consumers or shared_dicts they need), so its cost reads straight off the
 * bare proxy's row.
 */
interface Common {
  readonly name: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Every request a new `n` query argument (see LoadRequest): a new cache key each time. */
  readonly newQueryEachRequest?: true;
  /**
   * Response headers a probe request must carry after the warm-up (with its
   * own new query when the scenario varies it), or the scenario fails: a
   * cache scenario that silently measured misses would be worse than none.
   */
  readonly expect?: Readonly<Record<string, string>>;
  /**
   * Scenarios this one's req/s is reported against (its cost over them), when
   * they ran too; with `atLeast`, the lowest ratio of req/s that meets the target.
   */
  readonly versus?: readonly (string | { readonly scenario: string; readonly atLeast: number })[];
  /** Served over TLS 1.3 with the bench's certificate (certificate.ts), by Sluice or nginx alike. */
  readonly tls?: true;
  /** With `tls`: HTTP/2 by ALPN (Sluice's `http2: true` listener, nginx's `listen … http2`), loaded by h2load. */
  readonly http2?: true;
}

export type Scenario =
  | Common & { readonly kind: 'direct' }
  /** `location`: what nginx's one location does, proxy_pass unless named (see nginxConf in targets.ts). */
  | Common & { readonly kind: 'nginx'; readonly location?: 'proxy_cache' | 'return' }
  /** A Node gateway run beside Sluice as its docs run it (bench/http/peers/), proxying every path to the upstream. */
  | Common & { readonly kind: Peer }
  | Common & {
    readonly kind: 'sluice';
    /** Top-level conf keys for this scenario's gateway; `routes` is required. */
    readonly conf: { readonly routes: readonly Readonly<Record<string, unknown>>[]; readonly [key: string]: unknown };
  };

/** What the load generator sends for `s` to a system under test on 127.0.0.1:`port`. */
export function loadRequest(s: Scenario, port: number): LoadRequest {
  return { url: `${s.tls ? 'https' : 'http'}://127.0.0.1:${port}${s.path}`, headers: s.headers ?? {}, newQueryEachRequest: s.newQueryEachRequest ?? false, http2: s.http2 ?? false };
}

/** The proxy route plugin scenarios decorate: no strip_path, so the upstream sees what nginx's proxy_pass sends. */
export const BARE_ROUTE = { name: 'bare', paths: ['/'], upstream: 'origin' } as const;

/**
 * The response cache on the bare route, its defaults (ttl 5m: the bench
 * upstream sends no Cache-Control) in a zone of the example size. The
 * MISS scenario fills it within seconds, so it measures a full zone evicting
 * its least recently used entries as well as the store.
 */
const CACHED = { shared_dicts: { sluice_cache: '64m' }, routes: [{ ...BARE_ROUTE, plugins: { 'proxy-cache': {} } }] };

/**
 * Bench tokens, signed here with node:crypto so the table needs no async setup:
 * exp a day ahead (the bench never runs that long), RS256 with a fresh 2048-bit key.
 */
const b64url = (v: object | Buffer): string => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');
const BENCH_HS_SECRET = 'bench-hs256-secret-0123456789abcdef';
const BENCH_RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
function benchToken(alg: 'HS256' | 'RS256', iss: string): string {
  const input = `${b64url({ alg, typ: 'JWT' })}.${b64url({ iss, sub: 'bench-user', exp: Math.floor(Date.now() / 1000) + 86_400 })}`;
  const sig = alg === 'HS256' ? createHmac('sha256', BENCH_HS_SECRET).update(input).digest() : sign('sha256', Buffer.from(input), BENCH_RSA.privateKey);
  return `${input}.${b64url(sig)}`;
}
const JWT_CONSUMERS = [{
  username: 'bench',
  credentials: {
    jwt: [
      { key: 'bench-hs', algorithm: 'HS256', secret: BENCH_HS_SECRET },
      { key: 'bench-rs', algorithm: 'RS256', rsa_public_key: BENCH_RSA.publicKey.export({ type: 'spki', format: 'pem' }) },
    ],
  },
}];

/** The consumer the key-auth scenarios authenticate as (header `apikey: bench-key`). */
const KEY_AUTH_CONSUMERS = [{ username: 'bench', attributes: { user_id: '1', company_id: '1' }, credentials: { 'key-auth': [{ key: 'bench-key' }] } }];

/** A company quota and a per-user rate, both far above what the bench sends: two counters, seven headers. */
const NOBODY_LIMITED = { limits: [{ by: 'company_id', hour: 2 ** 25 }, { by: 'user_id', second: 1_000_000 }] };

/** A canary that sends every share to `origin`, the bench's one upstream: the choice is made, the answer is the same. */
export const ORIGIN_CANARY = { weighted: [{ upstream: 'origin', weight: 10 }, { upstream: 'origin', weight: 90 }] };

/**
 * Issue 15's tenant table: 900 single-company rules and 96 two-company ones
 * (all indexed), three templates no bench upstream answers to, then the
 * canary. The bench consumer's company (1) has no rule of its own, so each
 * request pays the index lookup, three template fills and misses, and the
 * weighted choice: the path "everyone else" takes.
 */
export const TENANT_RULES = [
  ...Array.from({ length: 900 }, (_, i) => ({ when: { company_id: [String(1000 + i)] }, upstream: 'origin' })),
  ...Array.from({ length: 96 }, (_, i) => ({ when: { company_id: [String(2000 + 2 * i), String(2001 + 2 * i)] }, upstream: 'origin' })),
  { upstream: 'tenant-{company_id}' },
  { upstream: 'tenant-{consumer}' },
  { upstream: 'user-{user_id}' },
  ORIGIN_CANARY,
];

export const SCENARIOS: readonly Scenario[] = [
  { kind: 'direct', name: 'upstream direct', path: '/bare' },
  // Issue 17's table: the proxies side by side, then the same 12 bytes answered by the gateway itself.
  { kind: 'nginx', name: 'nginx proxy_pass', path: '/bare' },
  {
    kind: 'sluice',
    name: 'sluice bare proxy',
    path: '/bare',
    versus: [{ scenario: 'nginx proxy_pass', atLeast: 0.65 }, { scenario: 'fastify + @fastify/http-proxy', atLeast: 1.7 }, 'fast-gateway'],
    conf: { routes: [BARE_ROUTE] },
  },
  { kind: 'fast-gateway', name: 'fast-gateway', path: '/bare' },
  { kind: 'fastify', name: 'fastify + @fastify/http-proxy', path: '/bare' },
  {
    kind: 'sluice',
    name: 'sluice return route',
    path: '/ping',
    versus: [{ scenario: 'nginx return 200', atLeast: 0.8 }, 'node:http return 200'],
    conf: { routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200, body: 'hello world\n', headers: { 'content-type': 'text/plain' } } }] },
  },
  { kind: 'nginx', name: 'nginx return 200', path: '/ping', location: 'return' },
  // How far Node itself goes with the same 12 bytes: node:http with nothing else, and a socket that parses nothing (peers/).
  { kind: 'node-http', name: 'node:http return 200', path: '/ping' },
  { kind: 'node-net', name: 'node:net floor (no HTTP parsing)', path: '/ping', versus: ['nginx return 200', 'node:http return 200'] },
  // Issue 14's targets: a HIT at least 1.3x nginx proxy_pass and 0.9x the return route; beside nginx's own cache HIT.
  {
    kind: 'sluice',
    name: 'sluice cache HIT',
    path: '/bare',
    expect: { 'x-cache-status': 'HIT' },
    versus: [{ scenario: 'nginx proxy_pass', atLeast: 1.3 }, { scenario: 'sluice return route', atLeast: 0.9 }, 'nginx proxy_cache HIT'],
    conf: CACHED,
  },
  { kind: 'nginx', name: 'nginx proxy_cache HIT', path: '/bare', location: 'proxy_cache', expect: { 'x-cache-status': 'HIT' } },
  // Issue 16: HTTPS beside nginx on the same ECDSA P-256 certificate, kept alive, and a new connection (a full handshake) for every request.
  { kind: 'nginx', name: 'nginx https proxy_pass', path: '/bare', tls: true },
  { kind: 'sluice', name: 'sluice https bare proxy', path: '/bare', tls: true, versus: ['nginx https proxy_pass', 'sluice bare proxy'], conf: { routes: [BARE_ROUTE] } },
  { kind: 'nginx', name: 'nginx https, a handshake each request', path: '/bare', tls: true, headers: { connection: 'close' } },
  {
    kind: 'sluice', name: 'sluice https, a handshake each request', path: '/bare', tls: true, headers: { connection: 'close' },
    versus: ['nginx https, a handshake each request'], conf: { routes: [BARE_ROUTE] },
  },
  // HTTP/2 beside nginx: h2load, 50 streams in flight over 5 connections, on the same certificate.
  { kind: 'nginx', name: 'nginx http2 proxy_pass', path: '/bare', tls: true, http2: true },
  { kind: 'sluice', name: 'sluice http2 bare proxy', path: '/bare', tls: true, http2: true, versus: ['nginx http2 proxy_pass', 'sluice https bare proxy'], conf: { routes: [BARE_ROUTE] } },
  // The bare proxy asked what the MISS row asks: the client builds every request anew for both, so the
  // difference between the two is the cache's (lookup, lock, store, eviction), not the load generator's.
  { kind: 'sluice', name: 'sluice bare proxy, new query each request', path: '/bare', newQueryEachRequest: true, versus: ['sluice bare proxy'], conf: { routes: [BARE_ROUTE] } },
  // Issue 14's target: a MISS (every request a new key, stored) costs at most 10% of the bare proxy's req/s.
  {
    kind: 'sluice',
    name: 'sluice cache MISS',
    path: '/bare',
    newQueryEachRequest: true,
    expect: { 'x-cache-status': 'MISS' },
    versus: [{ scenario: 'sluice bare proxy, new query each request', atLeast: 0.9 }, 'sluice bare proxy'],
    conf: CACHED,
  },
  // The headline runs with access_log off (as nginx's); this row prices the JSON access log line.
  {
    kind: 'sluice',
    name: 'sluice bare proxy + access_log',
    path: '/bare',
    versus: ['sluice bare proxy'],
    conf: { routes: [BARE_ROUTE], access_log: { path: 'logs/access.log' } },
  },
  {
    kind: 'sluice',
    name: 'sluice bare proxy + access_log buffer=64k',
    path: '/bare',
    versus: ['sluice bare proxy'],
    conf: { routes: [BARE_ROUTE], access_log: { path: 'logs/access.log', buffer: '64k', flush: '1s' } },
  },
  // The edge plugins together on one route: the request carries an allowed Origin (CORS headers added), passes
  // ip-restriction, gets a generated and echoed correlation id, and request-transformer edits its headers and query.
  {
    kind: 'sluice',
    name: 'sluice cors + ip-restriction + correlation-id + request-transformer',
    path: '/bare',
    headers: { origin: 'https://app.example.com' },
    conf: {
      routes: [{
        ...BARE_ROUTE,
        plugins: {
          cors: { origins: ['https://app.example.com'], credentials: true },
          'ip-restriction': { allow: ['127.0.0.0/8', '::1'] },
          'correlation-id': { echo_downstream: true },
          'request-transformer': { remove: { headers: ['x-debug'] }, add: { headers: ['x-gateway:sluice'], querystring: ['via:sluice'] } },
        },
      }],
    },
  },
  {
    kind: 'sluice',
    name: 'sluice key-auth',
    path: '/bare',
    versus: ['sluice bare proxy'],
    headers: { apikey: 'bench-key' },
    conf: {
      consumers: KEY_AUTH_CONSUMERS,
      routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {} } }],
    },
  },
  // Issue 7's targets: key-auth + rate-limiting within 15% of the bare proxy, rate-limiting alone within 5% of key-auth.
  {
    kind: 'sluice',
    name: 'sluice key-auth + rate-limiting (nobody limited)',
    path: '/bare',
    versus: ['sluice bare proxy', 'sluice key-auth'],
    headers: { apikey: 'bench-key' },
    conf: {
      shared_dicts: { sluice_limits: '10m' },
      consumers: KEY_AUTH_CONSUMERS,
      routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {}, 'rate-limiting': NOBODY_LIMITED } }],
    },
  },
  // The counting alone: the same limits with hide_client_headers.
  {
    kind: 'sluice',
    name: 'sluice key-auth + rate-limiting (nobody limited, no headers)',
    path: '/bare',
    headers: { apikey: 'bench-key' },
    versus: ['sluice key-auth'],
    conf: {
      shared_dicts: { sluice_limits: '10m' },
      consumers: KEY_AUTH_CONSUMERS,
      routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {}, 'rate-limiting': { ...NOBODY_LIMITED, hide_client_headers: true } } }],
    },
  },
  // What the headers above alone cost: the same seven RateLimit-*/X-RateLimit-* fields, with values of the same
  // lengths, added by response-transformer and counting nothing. The floor under any rate limiter that sends them.
  {
    kind: 'sluice',
    name: 'sluice key-auth + the same 7 headers, static',
    path: '/bare',
    headers: { apikey: 'bench-key' },
    versus: ['sluice key-auth'],
    conf: {
      consumers: KEY_AUTH_CONSUMERS,
      routes: [{
        ...BARE_ROUTE,
        plugins: {
          'key-auth': {},
          'response-transformer': {
            append: {
              headers: [
                'RateLimit-Limit:1000000', 'RateLimit-Remaining:999999', 'RateLimit-Reset:1',
                'X-RateLimit-Limit-Second:1000000', 'X-RateLimit-Remaining-Second:999999',
                'X-RateLimit-Limit-Hour:33554432', 'X-RateLimit-Remaining-Hour:33554431',
              ],
            },
          },
        },
      }],
    },
  },
  {
    kind: 'sluice',
    name: 'sluice key-auth + rate-limiting (most rejected)',
    path: '/bare',
    headers: { apikey: 'bench-key' },
    conf: {
      shared_dicts: { sluice_limits: '10m' },
      consumers: KEY_AUTH_CONSUMERS,
      routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {}, 'rate-limiting': { limits: [{ by: 'consumer', hour: 100 }] } } }],
    },
  },
  {
    kind: 'sluice',
    name: 'sluice rate-limiting alone',
    path: '/bare',
    conf: {
      shared_dicts: { sluice_limits: '10m' },
      routes: [{ ...BARE_ROUTE, plugins: { 'rate-limiting': { limits: [{ by: 'ip', second: 1_000_000 }] } } }],
    },
  },
  {
    kind: 'sluice',
    name: 'sluice jwt HS256',
    path: '/bare',
    headers: { authorization: `Bearer ${benchToken('HS256', 'bench-hs')}` },
    conf: { consumers: JWT_CONSUMERS, routes: [{ ...BARE_ROUTE, plugins: { jwt: {} } }] },
  },
  {
    kind: 'sluice',
    name: 'sluice jwt RS256',
    path: '/bare',
    headers: { authorization: `Bearer ${benchToken('RS256', 'bench-rs')}` },
    conf: { consumers: JWT_CONSUMERS, routes: [{ ...BARE_ROUTE, plugins: { jwt: {} } }] },
  },
  // Issue 15's target: 1,000 tenant rules cost at most 3% CPU per request over one rule (npm run bench:ab -- these two).
  {
    kind: 'sluice',
    name: 'sluice key-auth + traffic-split (1 rule)',
    path: '/bare',
    headers: { apikey: 'bench-key' },
    conf: { consumers: KEY_AUTH_CONSUMERS, routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {}, 'traffic-split': { rules: [ORIGIN_CANARY] } } }] },
  },
  {
    kind: 'sluice',
    name: 'sluice key-auth + traffic-split (1,000 tenant rules)',
    path: '/bare',
    versus: ['sluice key-auth + traffic-split (1 rule)'],
    headers: { apikey: 'bench-key' },
    conf: { consumers: KEY_AUTH_CONSUMERS, routes: [{ ...BARE_ROUTE, plugins: { 'key-auth': {}, 'traffic-split': { rules: TENANT_RULES } } }] },
  },
];
