import type { Static, TSchema } from 'typebox';
import type { Logger } from 'pino';
import type { SharedDict } from '../../shdict/index.ts';
import type { MutableHeaders, ReadonlyHeaders } from './headers.ts';
import type { MutableQuery, ReadonlyQuery } from './query.ts';

export type MaybePromise<T> = T | PromiseLike<T>;

/**
 * A response that ends the request, returned from `rewrite` or `access`
 * (or made with `ctx.exit`). An object body is sent as JSON.
 */
export interface Exit {
  readonly status: number;
  readonly body?: string | Uint8Array | object | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Per-request variables shared by the plugins of one request. A plugin adds
 * its keys by declaration merging:
 * @example
 * declare module '../pdk/index.ts' { interface CtxVars { tenant?: string } }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface CtxVars {}

export interface RouteInfo {
  /** The matched route's `name`. */
  readonly name: string;
}

/** The request as plugins see it once the route is matched. */
export interface RequestHead {
  readonly method: string;
  /** Path sent upstream (after `strip_path`), normalised, without the query. */
  readonly path: string;
  readonly query: ReadonlyQuery;
  readonly headers: ReadonlyHeaders;
  /**
   * The headers as the client sent them (hop-by-hop ones dropped), whatever
   * plugins have since done to `headers`: e.g. whether it carried
   * Authorization after an auth plugin's hide_credentials removed it.
   */
  readonly clientHeaders: ReadonlyHeaders;
}

/** What `rewrite` and `access` may change before the request goes upstream. */
export interface MutableRequestHead extends RequestHead {
  /** Must start with `/`; no spaces, controls, `?` or `#`. */
  path: string;
  readonly query: MutableQuery;
  /**
   * Headers sent upstream. The gateway's rules still apply after the plugins:
   * hop-by-hop headers, X-Forwarded-*, X-Real-IP and identity headers are set
   * by the gateway alone, whatever a plugin writes here.
   */
  readonly headers: MutableHeaders;
  /**
   * Largest request body in bytes for this request (0 = no plugin limit). The
   * gateway enforces the smaller of this and `client_max_body_size`, counting
   * a chunked body as it streams (413).
   */
  bodyLimit: number;
  /**
   * Reads the whole request body (at most `limit` bytes; 0 = only the
   * gateway's limits, client_max_body_size and `bodyLimit`) so `access` can
   * inspect it. Only a request whose plugin calls this is buffered: anywhere
   * else the body streams upstream untouched. Once read, the buffered bytes
   * (or those given to `setBody`) go upstream with a Content-Length. A body
   * over the limit (413), one idle past client_body_timeout (408) or a client
   * that leaves ends the request with the gateway's own error, whatever the
   * plugin does with the rejection. Later calls return the same bytes.
   * @example access: async (ctx) => { const raw = await ctx.req.body(1 << 20); … }
   */
  body(limit?: number): Promise<Buffer>;
  /** Replaces the body sent upstream (e.g. re-encoded JSON); Content-Length follows. */
  setBody(body: Uint8Array | string): void;
}

/**
 * Who made a response (Kong's `kong.response.get_source()`): `upstream` (proxied),
 * `route` (a `return:` route or a static file), `exit` (a plugin's exit, a cache
 * hit among them) or `error` (the gateway's own error). A response cache stores
 * only `upstream` answers.
 */
export type ResponseSource = 'upstream' | 'route' | 'exit' | 'error';

export interface ResponseHead {
  readonly status: number;
  readonly headers: ReadonlyHeaders;
  readonly source: ResponseSource;
  /**
   * The headers as the source made them, before any header filter: what a
   * cache stores, so the filters that run again on its answer (an `append`)
   * do not find their own earlier work in it.
   */
  readonly sourceHeaders: ReadonlyHeaders;
}

export interface MutableResponseHead extends ResponseHead {
  readonly headers: MutableHeaders;
}

export interface Timing {
  /** Wall-clock ms (epoch) when the request arrived. */
  readonly start: number;
  /** ms from arrival to the end of the response. */
  readonly total: number;
  /** ms spent waiting on upstreams, summed over attempts; null when none was asked. */
  readonly upstream: number | null;
}

/**
 * Who the request is for, set by an auth plugin in `access` (DESIGN.md §5).
 * The gateway sends it upstream as X-Consumer-Username, X-User-Id,
 * X-Company-Id and X-Anonymous-Consumer after removing every client copy of
 * those headers, so upstream services can trust them.
 */
export interface Identity {
  /** The consumer's username; null for an identity with no consumer (e.g. from a forward-auth service). */
  readonly consumer: string | null;
  readonly user_id: string | null;
  readonly company_id: string | null;
  /** true when the `anonymous` consumer of an auth plugin stands in for a missing credential. */
  readonly anonymous: boolean;
  /** Every attribute of the consumer (user_id and company_id included), for rate-limit keys and plugins. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** A consumer from the conf, with the credentials auth plugins index once per conf. */
export interface Consumer {
  readonly username: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** The identity to set for this consumer (`anonymous` false). */
  readonly identity: Identity;
}

export interface ConsumerCredential {
  readonly consumer: Consumer;
  readonly credential: Readonly<Record<string, unknown>>;
}

/** The conf's consumers, built once per conf and shared by every plugin of a worker. */
export interface Consumers {
  byUsername(username: string): Consumer | undefined;
  /** Every `credentials[plugin]` entry of every consumer, in conf order: index them in `create`. */
  credentials(plugin: string): readonly ConsumerCredential[];
  /** The identity for the `anonymous` option of an auth plugin: the consumer's, marked anonymous. */
  anonymous(username: string): Identity | undefined;
}

interface BaseCtx {
  /** The client address after `server.real_ip`: the only one plugins should trust. */
  readonly client: string;
  /** Set by an auth plugin; null until then (and on routes without auth). */
  readonly identity: Identity | null;
  readonly route: RouteInfo;
  readonly vars: CtxVars;
  /** The correlation id, when a plugin set one; the access log records it. */
  readonly requestId: string | null;
  /**
   * The name of the upstream this request goes to: the route's `upstream`,
   * or the one a plugin chose with `useUpstream` (traffic-split). null on a
   * route that does not proxy (`return:`, `root:`). A plugin that keys on
   * where the request goes (proxy-cache) reads it after the plugins that
   * choose, which run at higher priorities.
   */
  readonly upstream: string | null;
}

/** `rewrite` and `access`: the request may be changed or ended. */
export interface RequestCtx extends BaseCtx {
  readonly req: MutableRequestHead;
  requestId: string | null;
  /** Auth plugins set this; the gateway turns it into trusted upstream headers. */
  identity: Identity | null;
  /**
   * Ends the request with this response; later plugins and the upstream are skipped.
   * Return its result (or just call it) from `rewrite` or `access`.
   * @example access: (ctx) => ctx.exit(403, { message: 'forbidden' })
   */
  exit(status: number, body?: Exit['body'], headers?: Exit['headers']): Exit;
  /**
   * Asked before the upstream's answer goes out, with its status and head, or
   * with the gateway's own 502/503/504 (head null) when no answer came (every
   * try failed, no target healthy); an Exit it returns is sent instead, and
   * the upstream's body is read and dropped. One per request: a later call
   * replaces it. What nginx's proxy_cache_use_stale (an old entry for a
   * failure) and proxy_cache_revalidate (the entry for a 304) need.
   */
  onUpstreamAnswer(hook: UpstreamAnswerHook): void;
  /**
   * Once this request is answered by a plugin's exit, the gateway sends it
   * upstream again with no client waiting (nginx's
   * proxy_cache_background_update subrequest): to the route's upstream, as
   * the plugins left it, with this request's onUpstreamAnswer hook; the
   * response passes the chain's header and body filters with `vars` as that
   * request's only vars, and is dropped. No access log line, no stats and no
   * log phase: it is no client's request. `done` runs once it is over,
   * however it ended (at once on a route that does not proxy or a request
   * with a body, which is never sent twice).
   */
  fetchInBackground(vars: CtxVars, done: () => void): void;
  /**
   * Sends this request to the conf's upstream `name` (its targets, balancer,
   * `hash_on`, timeouts and retries) instead of the route's own. One map
   * lookup. false, and nothing changes, when the conf defines no such
   * upstream or the route does not proxy; the last successful call wins.
   * @example access: (ctx) => { ctx.useUpstream(`tenant-${ctx.identity?.company_id}`) }
   */
  useUpstream(name: string): boolean;
}

/** What an onUpstreamAnswer hook reads: the request as it went upstream. */
export interface UpstreamAnswerCtx extends BaseCtx {
  readonly req: RequestHead;
}

/** See RequestCtx.onUpstreamAnswer; `headers` is null when no answer came. */
export type UpstreamAnswerHook = (ctx: UpstreamAnswerCtx, status: number, headers: ReadonlyHeaders | null) => Exit | null;

/** `headerFilter` and `bodyFilter`: response headers may change, the request is read-only. */
export interface ResponseCtx extends BaseCtx {
  readonly req: RequestHead;
  readonly res: MutableResponseHead;
}

/** `log`: everything is read-only; the response is already sent. */
export interface LogCtx extends BaseCtx {
  readonly req: RequestHead;
  readonly res: ResponseHead;
  readonly timing: Timing;
  /** The last upstream target tried (`host:port`); null when none was asked. */
  readonly upstreamAddr: string | null;
}

/**
 * The phase handlers a plugin instance provides; leave out the phases it does
 * not need (a missing phase costs nothing per request). Phases run in this
 * order, as OpenResty's do.
 */
export interface Handlers {
  /** Before access; may end the request. Async allowed: only a returned thenable is awaited. */
  rewrite?: ((ctx: RequestCtx) => MaybePromise<Exit | void>) | undefined;
  /** Auth, limits, validation; may end the request. */
  access?: ((ctx: RequestCtx) => MaybePromise<Exit | void>) | undefined;
  /** Synchronous: before the response head is written (proxied, `return:` and exits). */
  headerFilter?: ((ctx: ResponseCtx) => void) | undefined;
  /**
   * Synchronous: each chunk of a proxied response body, then once with `eof`
   * and an empty chunk. Returns the bytes to send. A filter that changes the
   * length must remove Content-Length in its headerFilter.
   */
  bodyFilter?: ((ctx: ResponseCtx, chunk: Uint8Array, eof: boolean) => Uint8Array) | undefined;
  /** Synchronous, after the response is sent: enqueue, never wait. */
  log?: ((ctx: LogCtx) => void) | undefined;
  /**
   * The worker is exiting (reload, quit, stop): flush what this instance
   * queued (syslog batches) and release what it holds. Awaited, bounded by
   * `worker_shutdown_timeout`, after the last response of the worker is sent.
   */
  dispose?: (() => MaybePromise<void>) | undefined;
}

/** Request-id generators; injected so tests get fixed ids. */
export interface Ids {
  uuid(): string;
}

/**
 * CPU-heavy work off the reactor (OpenResty `ngx.run_worker_thread`): runs
 * the function `name` (default: the default export) of `module` in a pool thread.
 * @example env.offload.run(new URL('./validate-task.ts', import.meta.url), input)
 */
export interface Offload {
  run<R = unknown>(module: URL | string, input: unknown, name?: string): Promise<R>;
}

/**
 * What `init`, `create` and `dispose` get: one object per plugin and worker,
 * the same for all three, so what a worker's instances share can be keyed by it.
 */
export interface PluginEnv {
  /** The worker's logger with `{ plugin: name }`. */
  readonly log: Logger;
  /** Wall clock in ms; injected so tests never sleep. */
  readonly now: () => number;
  /** A number in [0, 1) (Math.random); injected so tests of random choices are exact. */
  readonly random: () => number;
  readonly ids: Ids;
  /** This worker thread's id (unique per master lifetime). */
  readonly workerId: number;
  /**
   * Whether the worker of that id is still running: false once it exited or
   * crashed, so what it held in a shared dict (a lock) will never be released
   * by it, and another worker may take it over.
   */
  workerAlive(id: number): boolean;
  /** The conf's consumers and their credentials. */
  readonly consumers: Consumers;
  /** A shared dict declared in `shared_dicts`, shared by every worker; throws GW_ERR_NO_DICT when undeclared. */
  dict(name: string): SharedDict;
  readonly offload: Offload;
}

export interface PluginDef<S extends TSchema = TSchema> {
  /** kebab-case; equal to the folder name and the YAML key. */
  readonly name: string;
  readonly version: string;
  /** Higher runs first within its group (global, then route). Kong's numbers for Kong's plugins. */
  readonly priority: number;
  /** Checked by the master with defaults filled in before any worker sees the conf. */
  readonly schema: S;
  /**
   * Auth plugins: the schema of one entry of a consumer's `credentials.<name>`
   * list, checked by the master (positions, defaults) like the plugin's conf.
   */
  readonly credentialSchema?: TSchema;
  /**
   * Once per worker, before the first `create`, for a plugin the conf names
   * (globally or on any route): set up what every instance of the worker
   * shares. A throw or rejection fails the worker's start like a bad conf.
   */
  init?(env: PluginEnv): MaybePromise<void>;
  /** Builds the handlers for one conf (once per conf and attachment, never per request). */
  create(conf: Static<S>, env: PluginEnv): Handlers;
  /**
   * Once per worker, after every instance's `dispose`: release what `init`
   * or the instances share (pooled Redis clients). Awaited like `dispose`.
   */
  dispose?(env: PluginEnv): MaybePromise<void>;
}

/**
 * Declares a plugin; the conf type given to `create` comes from the schema.
 * @example
 * export const hello = definePlugin({
 *   name: 'hello', version: '1.0.0', priority: 1000,
 *   schema: s.object({ greeting: s.string({ default: 'hi', description: 'Header value' }) }),
 *   create: (conf) => ({ headerFilter: (ctx) => ctx.res.headers.set('x-hello', conf.greeting) }),
 * });
 */
export function definePlugin<const S extends TSchema>(def: PluginDef<S>): PluginDef<S> {
  return Object.freeze(def);
}
