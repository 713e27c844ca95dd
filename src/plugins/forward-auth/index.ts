import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { definePlugin, errorExit, GatewayError, s, toMs, Type } from '../pdk/index.ts';
import type { Exit, Identity, RequestCtx, SharedDict } from '../pdk/index.ts';

const Schema = Type.Refine(s.object({
  uri: Type.String({ pattern: '^https?://', description: 'The auth service URL (http or https)' }),
  request_method: s.oneOf(['GET', 'POST'], { default: 'GET', description: 'Method of the auth request' }),
  request_headers: Type.Array(s.headerName({ description: 'Header name' }), { default: [], description: 'Client headers sent to the auth service (the credentials); nothing else of the client\'s is sent' }),
  upstream_headers: Type.Array(s.headerName({ description: 'Header name' }), { default: [], description: 'Auth response headers copied into the upstream request and the identity attributes on a 2xx' }),
  client_headers: Type.Array(s.headerName({ description: 'Header name' }), { default: [], description: 'Auth response headers copied to the client on a refusal' }),
  identity_headers: s.object({
    consumer: Type.String({ default: 'X-Consumer-Username', description: 'Auth response header holding the consumer name' }),
    user_id: Type.String({ default: 'X-User-Id', description: 'Auth response header holding the user id' }),
    company_id: Type.String({ default: 'X-Company-Id', description: 'Auth response header holding the company id' }),
  }, { description: 'Auth response headers that make the identity' }),
  timeout: s.duration({ default: '3s', description: 'Connect and response timeout of the auth call' }),
  keepalive: Type.Integer({ minimum: 1, default: 16, description: 'Pooled connections to the auth service per worker' }),
  status_on_unavailable: Type.Integer({ minimum: 500, maximum: 599, default: 503, description: 'Status when the auth service cannot be reached or fails' }),
  status_on_timeout: Type.Integer({ minimum: 500, maximum: 599, default: 504, description: 'Status when the auth service is too slow' }),
  cache_ttl: s.duration({ default: '0s', description: 'How long a decision (2xx, 401, 403) is reused for the same request: method, URI, host, client and request_headers (0: ask every time)' }),
  cache_dict: s.dict({
    default: 'sluice_cache',
    description: 'Shared dict holding cached decisions (shared by all workers)',
    usedWhen: (c) => toMs(c['cache_ttl'] as string) > 0, // create() opens it only to cache
  }),
}, { description: 'Lets an independent auth service decide each request' }),
(c) => toMs(c.cache_ttl) === 0 || c.request_headers.length > 0,
() => 'cache_ttl needs request_headers: without credential headers every client would share one cached decision');

/** A decision as cached: status, the kept auth response headers (flat name/value list), body. */
interface Decision { readonly s: number; readonly h: readonly string[]; readonly b: string }

/** Auth response bodies above this are a failed auth call, not something to relay or cache. */
const MAX_BODY = 64 * 1024;
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** First value of a (lower-case) header in a decision. */
function field(d: Decision, lower: string): string | null {
  for (let i = 0; i < d.h.length; i += 2) if (d.h[i] === lower) return d.h[i + 1]!;
  return null;
}

/**
 * APISIX's forward-auth: an independent service decides. It gets the
 * request's method, URI, host and client address as X-Forwarded-* plus the
 * configured request_headers, and nothing else (no credentials leak to it
 * unless listed). A 2xx passes, with upstream_headers copied upstream and
 * into the identity; anything else goes back to the client. A service that
 * is down or slow refuses (503/504), never passes. Decisions (a 2xx, 401,
 * 403) are cached in a shared dict, so every worker reuses them, keyed by a
 * digest of everything the service was sent: its answer may turn on the
 * method, the URI, the host or the client as well as on the credentials.
 */
export const forwardAuth = definePlugin({
  name: 'forward-auth',
  version: '1.0.0',
  priority: 1400,
  schema: Schema,
  create(conf, env) {
    const url = new URL(conf.uri);
    const path = `${url.pathname}${url.search}`;
    const timeout = toMs(conf.timeout);
    const pool = new Pool(url.origin, { connections: conf.keepalive, connectTimeout: timeout, headersTimeout: timeout, bodyTimeout: timeout });
    const ttl = toMs(conf.cache_ttl);
    const dict: SharedDict | null = ttl > 0 ? env.dict(conf.cache_dict) : null;
    // The auth service's URL is part of the key, so two confs on one dict never share decisions.
    const keyPrefix = `forward-auth:${createHash('sha256').update(conf.uri).digest('base64').slice(0, 16)}:`;
    const kept = new Set([...conf.upstream_headers, ...conf.client_headers, 'content-type',
      conf.identity_headers.consumer, conf.identity_headers.user_id, conf.identity_headers.company_id].map((h) => h.toLowerCase()));
    const toClient = new Set([...conf.client_headers.map((h) => h.toLowerCase()), 'content-type']);
    const unavailable = errorExit('GW_ERR_AUTH_UNAVAILABLE', { status: conf.status_on_unavailable });
    const timedOut = errorExit('GW_ERR_AUTH_TIMEOUT', { status: conf.status_on_timeout });

    const idConsumer = conf.identity_headers.consumer.toLowerCase();
    const idUser = conf.identity_headers.user_id.toLowerCase();
    const idCompany = conf.identity_headers.company_id.toLowerCase();

    /** What the auth service is sent: the request's method, URI, host and client, and the configured request_headers. */
    function forwarded(ctx: RequestCtx): string[] {
      const query = ctx.req.query.toString();
      const headers: string[] = [
        'x-forwarded-method', ctx.req.method,
        'x-forwarded-uri', query === '' ? ctx.req.path : `${ctx.req.path}?${query}`,
        'x-forwarded-for', ctx.client,
        'x-forwarded-host', ctx.req.headers.get('host') ?? '',
      ];
      for (const name of conf.request_headers) for (const v of ctx.req.headers.getAll(name)) headers.push(name, v);
      return headers;
    }

    /** The decision's key: all the service was sent, so an allow for one path or method never answers another. */
    const cacheKey = (headers: readonly string[]): string => keyPrefix + createHash('sha256').update(headers.join('\0')).digest('base64');

    async function ask(headers: string[]): Promise<Decision | Exit> {
      try {
        const res = await pool.request({ path, method: conf.request_method, headers });
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > MAX_BODY) {
            res.body.destroy();
            env.log.warn({ code: 'AUTH_SERVICE_BODY_TOO_LARGE', limit: MAX_BODY }, 'forward-auth: auth response body too large');
            return unavailable;
          }
          chunks.push(chunk);
        }
        const h: string[] = [];
        for (const [name, value] of Object.entries(res.headers)) {
          if (!kept.has(name) || value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) h.push(name, v);
        }
        return { s: res.statusCode, h, b: Buffer.concat(chunks).toString('utf8') };
      } catch (err) {
        const code = (err as { code?: string }).code;
        env.log.warn({ code: code ?? 'AUTH_SERVICE_ERROR' }, 'forward-auth: auth service call failed');
        return code !== undefined && TIMEOUTS.has(code) ? timedOut : unavailable;
      }
    }

    function apply(ctx: RequestCtx, d: Decision): Exit | undefined {
      if (d.s < 200 || d.s > 299) {
        const headers: Record<string, string> = {};
        for (let i = 0; i < d.h.length; i += 2) {
          const name = d.h[i]!;
          if (toClient.has(name)) headers[name] = d.h[i + 1]!;
        }
        return { status: d.s, body: d.b, headers };
      }
      const attributes: Record<string, string> = {};
      for (const name of conf.upstream_headers) {
        ctx.req.headers.remove(name);
        const lower = name.toLowerCase();
        for (let i = 0; i < d.h.length; i += 2) {
          if (d.h[i] !== lower) continue;
          ctx.req.headers.add(name, d.h[i + 1]!);
          attributes[lower] = d.h[i + 1]!;
        }
      }
      const identity: Identity = {
        consumer: field(d, idConsumer),
        user_id: field(d, idUser),
        company_id: field(d, idCompany),
        anonymous: false,
        attributes,
      };
      if (identity.user_id !== null) attributes['user_id'] = identity.user_id;
      if (identity.company_id !== null) attributes['company_id'] = identity.company_id;
      ctx.identity = identity;
      return undefined;
    }

    async function decide(ctx: RequestCtx): Promise<Exit | undefined> {
      const headers = forwarded(ctx);
      const key = dict === null ? '' : cacheKey(headers);
      if (dict !== null) {
        const cached = dict.get(key);
        if (typeof cached === 'string') return apply(ctx, JSON.parse(cached) as Decision);
      }
      const d = await ask(headers);
      if ('status' in d) return d;
      // Only a decision: a 5xx, a 429 or a 408 says the service could not decide now, and is asked again next time.
      if (dict !== null && ((d.s >= 200 && d.s <= 299) || d.s === 401 || d.s === 403)) {
        const r = dict.set(key, JSON.stringify(d), ttl);
        if (!r.ok) env.log.warn({ code: 'AUTH_CACHE_FULL' }, 'forward-auth: decision not cached');
      }
      return apply(ctx, d);
    }

    if (conf.request_headers.some((h) => h.toLowerCase() === 'host')) throw new GatewayError('GW_ERR_PLUGIN_CONF', 'forward-auth.request_headers: Host is sent as X-Forwarded-Host');
    return {
      access: decide,
      // Its keep-alive connections to the auth service; no request is left to use them.
      dispose: () => pool.close(),
    };
  },
});
