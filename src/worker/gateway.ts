import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { REQUESTS } from '../contracts/stats-layout.ts';
import type { UpstreamShared } from '../contracts/messages.ts';
import type { RouteConf, SluiceConf } from '../config/types.ts';
import type { Exit, PluginDef } from '../plugins/pdk/types.ts';
import type { AccessLog } from './access-log.ts';
import { createClientAddressResolver } from './client-address.ts';
import type { ClientAddressResolver } from './client-address.ts';
import { DetachedResponse } from './detached-response.ts';
import { Exchange } from './exchange.ts';
import type { Background, ClientResponse, Lifecycle, Site } from './exchange.ts';
import { closeAfterResponse } from './http2-exchange.ts';
import type { Incoming } from './http2-exchange.ts';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { prepareExit } from '../plugins/pdk/prepared-exit.ts';
import { normalizePath } from './normalize-path.ts';
import type { NormalizedTarget } from './normalize-path.ts';
import type { BodyLimits } from './pipeline/body.ts';
import { compileChains } from './pipeline/chain.ts';
import type { Chains } from './pipeline/chain.ts';
import { compileConsumers } from './pipeline/consumers.ts';
import { createPluginEnvs } from './pipeline/env.ts';
import { disposePlugins, initPlugins, namedPlugins } from './pipeline/lifecycle.ts';
import { runRequestPhases } from './pipeline/run.ts';
import { closeUpstream, createUpstream, proxy } from './proxy.ts';
import type { Upstream } from './proxy.ts';
import { smallestLimit } from './request-view.ts';
import { guardRequest, originForm } from './request-guard.ts';
import { sendError, sendExit, sendWhole, track } from './response-writer.ts';
import { compileRouter } from './router.ts';
import type { RouteMatch, Router } from './router.ts';
import { createStaticRoot, serveStatic } from './static-files.ts';
import { isTls } from './tls-context.ts';
import type { StaticRoot } from './static-files.ts';
import { appendIdentityHeaders, buildUpstreamHeaders } from './upstream-headers.ts';
import { asksWebSocket, guardHandshake } from './websocket.ts';
import type { Tunnels } from './websocket.ts';

/**
 * The request path. `createGateway` compiles a conf once (router, upstream
 * pools, route actions, prebuilt `return:` responses, plugin chains); the
 * functions below it run per request, top to bottom:
 *
 *   handle ─► guard, normalise, client address, route ─► request phases ─► serve
 *     │ (refused before a route)                                │
 *     └► refuse: global rewrite, then the error                 ├ return:  prebuilt response
 *                                                               ├ root:    static file
 *                                                               └ upstream: forward ─► proxy
 *
 * A WebSocket handshake for a `websocket: true` route (`upgrades`) takes the
 * same path from `upgrade`, its response written on the socket Node handed
 * over, and is tunnelled once the upstream answers 101 (websocket.ts).
 *
 * Every answer goes out through the response writer (response-writer.ts).
 */

export interface GatewayEnv {
  readonly conf: SluiceConf;
  readonly log: Logger;
  readonly accessLog: AccessLog | null;
  readonly stats: Float64Array;
  readonly lifecycle: Lifecycle;
  /** Every plugin the conf may name (the registry's `plugins`). */
  readonly plugins: ReadonlyMap<string, PluginDef>;
  /** Shared-dict zones from the master, for plugins' env.dict(). */
  readonly zones: Readonly<Record<string, SharedArrayBuffer>>;
  /** Balancing state per upstream, shared with the master and the other workers. */
  readonly upstreams: Readonly<Record<string, UpstreamShared>>;
  /** This worker's id: the shdict lock owner. */
  readonly workerId: number;
  /** Whether another worker still runs (contracts/liveness.ts), for the plugins' env. */
  readonly workerAlive: (id: number) => boolean;
  /** The worker's open WebSockets (closed by its drain). */
  readonly tunnels: Tunnels;
}

export interface Gateway {
  /** Serves a request, over HTTP/1.1 (connection.ts) or HTTP/2 (http2-server.ts). */
  handle(req: Incoming, res: ClientResponse): void;
  /** The server's shouldUpgradeCallback: a WebSocket handshake for a `websocket: true` route. Any other Upgrade is served as a plain request. */
  upgrades(req: IncomingMessage): boolean;
  /** A handshake `upgrades` accepted, with a response on its socket and the bytes the client sent behind it. */
  upgrade(req: IncomingMessage, res: ServerResponse, head: Buffer): void;
  /** Answers `code` in place of serving the request (connection.ts: a client error in its place) and closes the connection. */
  reject(req: Incoming, res: ClientResponse, code: GatewayErrorCode): void;
  /** Upstream pools, then the plugins' dispose (bounded by `boundMs`), then the offload pool. */
  close(boundMs: number): Promise<void>;
}

type RouteAction =
  | { readonly kind: 'return'; readonly status: number; readonly headers: readonly string[]; readonly body: Uint8Array }
  | { readonly kind: 'static'; readonly root: StaticRoot }
  | { readonly kind: 'proxy'; readonly preserveHost: boolean };

/** One conf, compiled: what every request of the worker reads. */
interface Compiled extends Site {
  readonly router: Router;
  readonly actions: readonly RouteAction[];
  /** Per route: the upstream it proxies to by default (a plugin may choose another); null for return/root routes. */
  readonly routeUpstreams: readonly (Upstream | null)[];
  readonly chains: Chains;
  readonly clientAddress: ClientAddressResolver;
  readonly realIpHeader: string | null;
  /** Some route has `websocket: true`: else no Upgrade request is even routed for it. */
  readonly webSockets: boolean;
}

/** A `return:` route's answer, made once: laid out as a plugin's exit is (Content-Type, Content-Length, none on a 204/304). */
function compileReturn(route: RouteConf): RouteAction {
  const r = route.return!;
  const ready = prepareExit({ status: r.status, body: r.body, headers: r.headers });
  return { kind: 'return', status: ready.status, headers: ready.list, body: ready.body };
}

export async function createGateway(env: GatewayEnv): Promise<Gateway> {
  const { conf, log } = env;
  const upstreams = new Map<string, Upstream>();
  for (const [name, u] of Object.entries(conf.upstreams)) upstreams.set(name, createUpstream(u, env.upstreams[name]));
  const actions: RouteAction[] = conf.routes.map((route) => {
    if (route.return !== null) return compileReturn(route);
    if (route.root !== null) return { kind: 'static', root: createStaticRoot(route.root) };
    return { kind: 'proxy', preserveHost: route.preserve_host };
  });
  const routeUpstreams = conf.routes.map((route) => (route.upstream === null ? null : upstreams.get(route.upstream)!));
  const pluginEnvs = createPluginEnvs({ log, workerId: env.workerId, workerAlive: env.workerAlive, zones: env.zones, consumers: compileConsumers(conf.consumers) });
  const defs = namedPlugins(conf, env.plugins);
  await initPlugins(defs, pluginEnvs.envFor);
  const chains = compileChains({ conf, plugins: env.plugins, envFor: pluginEnvs.envFor, log });
  const bodyLimits: BodyLimits = Object.freeze({ maxBody: conf.server.client_max_body_size, idleMs: conf.server.client_body_timeout });
  const g: Compiled = {
    log,
    accessLog: env.accessLog,
    stats: env.stats,
    lifecycle: env.lifecycle,
    routes: conf.routes.length,
    bodyLimits,
    upstreams,
    router: compileRouter(conf.routes),
    actions,
    routeUpstreams,
    chains,
    clientAddress: createClientAddressResolver(conf.server.real_ip),
    realIpHeader: conf.server.real_ip?.header.toLowerCase() ?? null,
    tunnels: env.tunnels,
    webSockets: conf.routes.some((r) => r.websocket),
  };
  return {
    handle: (req, res) => route(g, open(g, req, res), guardRequest(req)),
    upgrades: (req) => g.webSockets && asksWebSocket(req) && isWebSocketRoute(g, req),
    upgrade(req, res, head) {
      const x = open(g, req, res);
      x.handshake = head;
      route(g, x, guardRequest(req) ?? guardHandshake(req, res));
    },
    reject: (req, res, code) => refuse(open(g, req, res), code, true),
    async close(boundMs) {
      for (const u of upstreams.values()) closeUpstream(u);
      await disposePlugins({ instances: chains.instances, defs, envFor: pluginEnvs.envFor, log }, boundMs);
      await pluginEnvs.close();
    },
  };
}

/** The exchange of a request, accounted from here on. */
function open(g: Compiled, req: Incoming, res: ClientResponse): Exchange {
  g.stats[REQUESTS]!++;
  const x = new Exchange(g, req, res, g.chains.unrouted, performance.now());
  track(x);
  // A header that may legitimately repeat (X-Forwarded-For): all copies, comma-joined as RFC 9110 allows.
  x.client = g.clientAddress(x.peer, g.realIpHeader === null ? undefined : x.header(g.realIpHeader));
  return x;
}

/** Where a request goes: its normalised target and route (null: none matched). */
interface Located {
  readonly target: NormalizedTarget;
  readonly match: RouteMatch | null;
}

/** The request's target normalised and routed, or why it cannot be (answered with the connection closed). */
function locate(g: Compiled, req: Incoming): Located | GatewayErrorCode {
  const host = req.headers.host;
  let target = req.url!;
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    const path = originForm(target, host);
    if (path === null) return 'GW_ERR_BAD_REQUEST';
    target = path;
  }
  const n = normalizePath(target);
  // nginx closes the connection after its own 400s; nothing pipelined behind this one is served.
  if ('error' in n) return 'GW_ERR_BAD_PATH';
  return { target: n, match: g.router.match(req.method!, host, n.path, req.headers) };
}

/** Routed where `route` will route it: Node asks before it makes the request or the upgrade of it. */
function isWebSocketRoute(g: Compiled, req: IncomingMessage): boolean {
  const at = locate(g, req);
  return typeof at !== 'string' && at.match !== null && at.match.route.websocket;
}

/** `bad`: the request guard's verdict. */
function route(g: Compiled, x: Exchange, bad: GatewayErrorCode | null): void {
  const at = bad ?? locate(g, x.incoming);
  if (typeof at === 'string') {
    refuse(x, at, true);
    return;
  }
  const { target: n, match: m } = at;
  x.path = n.path;
  if (m === null) {
    x.req.routeTo(n.path, n.query);
    refuse(x, 'GW_ERR_NO_ROUTE');
    return;
  }
  x.routeIndex = m.index;
  x.chain = g.chains.routes[m.index]!;
  x.proxyTo = g.routeUpstreams[m.index]!;
  x.req.routeTo(m.upstreamPath, n.query);
  const steps = x.chain.request;
  const r = steps === null ? null : runRequestPhases(x, steps, 0);
  if (r === null) serve(g, x);
  else if (r instanceof Promise) {
    // Only a plugin that went async costs this closure.
    r.then((exit) => afterRequestPhases(g, x, exit), (err: unknown) => internalError(x, err));
  } else answerExit(g, x, r);
}

function internalError(x: Exchange, err: unknown): void {
  sendError(x, 'GW_ERR_INTERNAL', false, { err });
}

/**
 * A request answered before or without a route still passes the global
 * plugins: their rewrite phase (a correlation id for the error), header
 * filters and log. The gateway's answer stands whatever a rewrite returns.
 */
function refuse(x: Exchange, code: GatewayErrorCode, close = false): void {
  const steps = x.chain.request;
  const r = steps === null ? null : runRequestPhases(x, steps, 0);
  if (r instanceof Promise) r.then(() => sendError(x, code, close), (err: unknown) => internalError(x, err));
  else sendError(x, code, close);
}

function afterRequestPhases(g: Compiled, x: Exchange, exit: Exit | null): void {
  // The client may have gone while a plugin waited: nothing left to answer.
  if (x.out.destroyed) return;
  const failed = x.req.bodyFailure;
  if (failed !== null) {
    if (failed.code !== 'GW_ERR_CLIENT_GONE') sendError(x, failed.code, true);
    return;
  }
  if (exit === null) serve(g, x);
  else answerExit(g, x, exit);
}

/** A plugin's exit, then the background request a plugin asked for with it (fetchInBackground). */
function answerExit(g: Compiled, x: Exchange, exit: Exit): void {
  sendExit(x, exit);
  if (x.background !== null) fetchInBackground(g, x, x.background);
}

/**
 * The request again, to the upstream it was to go to, with no client: a response
 * writer that writes nowhere, the plugins' vars given, no tracking (no
 * access log, stats or log phase). A body is never sent twice.
 */
function fetchInBackground(g: Compiled, x: Exchange, { vars, done }: Background): void {
  const action = g.actions[x.routeIndex]!;
  const upstream = x.proxyTo;
  if (action.kind !== 'proxy' || upstream === null || x.handshake !== null || x.req.buffered !== null || clientSentBody(x.incoming)) {
    done();
    return;
  }
  const bg = new Exchange(g, x.incoming, new DetachedResponse(), x.chain, performance.now(), { req: x.req, vars });
  bg.client = x.client;
  bg.path = x.path;
  bg.routeIndex = x.routeIndex;
  bg.requestId = x.requestId;
  bg.identity = x.identity;
  bg.upstreamAnswer = x.upstreamAnswer;
  bg.proxyTo = upstream;
  bg.out.once('close', done);
  forward(g, bg, upstream, action.preserveHost);
}

const clientSentBody = (incoming: Incoming): boolean => {
  const declared = incoming.headers['content-length'];
  return incoming.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0');
};

/**
 * The route's own work once the plugins let the request through. A declared
 * body over the limit (client_max_body_size, or a plugin's lower one) is a 413
 * whatever the route does with it, as nginx checks before `return`; a body a
 * plugin read was held to the limit as it came.
 */
function serve(g: Compiled, x: Exchange): void {
  const limit = smallestLimit(g.bodyLimits.maxBody, x.req.bodyLimit);
  const declared = x.incoming.headers['content-length'];
  if (x.req.buffered === null && limit > 0 && declared !== undefined && Number(declared) > limit) {
    sendError(x, 'GW_ERR_BODY_TOO_LARGE', true);
    return;
  }
  const action = g.actions[x.routeIndex]!;
  switch (action.kind) {
    case 'return':
      sendWhole(x, action.status, action.headers, action.body, 'route');
      return;
    case 'static':
      serveStatic(x, action.root).catch((err: unknown) => internalError(x, err));
      return;
    case 'proxy':
      // The route's upstream, or the one a plugin chose with ctx.useUpstream (traffic-split).
      forward(g, x, x.proxyTo!, action.preserveHost);
  }
}

function forward(g: Compiled, x: Exchange, upstream: Upstream, preserveHost: boolean): void {
  const req = x.req;
  if (req.reading !== null && req.buffered === null && req.bodyFailure === null) {
    // A plugin started reading the body without awaiting it: the body goes upstream once it is all here.
    req.reading.then(() => serve(g, x), () => afterRequestPhases(g, x, null));
    return;
  }
  const incoming = x.incoming;
  const host = incoming.headers.host;
  const buffered = req.buffered;
  const declared = incoming.headers['content-length'];
  const chunked = incoming.headers['transfer-encoding'] !== undefined;
  const hasBody = buffered !== null ? buffered.length > 0 : clientSentBody(incoming);
  // Plugins' changes first, then the gateway's rules over them: a plugin cannot forge X-Forwarded-For or identity.
  const headers = buildUpstreamHeaders(req.headers.list, {
    host: preserveHost && host !== undefined ? host : '',
    peer: x.peer,
    client: x.client,
    clientHost: host ?? '',
    proto: isTls(x.socket) ? 'https' : 'http',
  });
  if (x.identity !== null) appendIdentityHeaders(headers, x.identity);
  if (buffered !== null) setContentLength(headers, buffered.length, chunked || declared !== undefined);
  else if (hasBody) watchBodyIdle(x, g.bodyLimits.idleMs);
  proxy({
    x,
    upstream,
    headers,
    preserveHost: preserveHost && host !== undefined,
    hasBody,
    body: buffered,
    maxChunkedBody: chunked && buffered === null ? smallestLimit(g.bodyLimits.maxBody, req.bodyLimit) : 0,
    hashKey: upstream.hashKey === null ? undefined : upstream.hashKey(x),
  });
}

/**
 * A buffered body goes upstream with its own length: the client's
 * Content-Length may no longer match (a plugin replaced the body), and its
 * chunked framing (already dropped as hop-by-hop) is gone.
 */
function setContentLength(headers: string[], length: number, clientSentBody: boolean): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.toLowerCase() === 'content-length') headers.splice(i, 2);
  }
  if (length > 0 || clientSentBody) headers.push('content-length', String(length));
}


/**
 * client_body_timeout: nginx's is the idle time between two body reads, not a
 * deadline for the whole body. The socket's idle timer does exactly that while
 * the body streams, and is switched off once the body has arrived.
 */
const kExchange = Symbol('sluice.bodyWatch');
type Watched = Incoming & { [kExchange]?: Exchange | undefined };

function onBodyTimeout(this: Watched): void {
  if (this.complete) return;
  const x = this[kExchange];
  if (x !== undefined && !x.out.headersSent) sendError(x, 'GW_ERR_CLIENT_TIMEOUT', true);
  closeAfterResponse(this);
}

function onBodyEnd(this: Watched): void {
  this[kExchange] = undefined;
  this.setTimeout(0);
}

/** The request's own timer and 'timeout' event: over HTTP/2 the stream's, never the session's. */
function watchBodyIdle(x: Exchange, ms: number): void {
  const req = x.incoming as Watched;
  req[kExchange] = x;
  req.on('timeout', onBodyTimeout);
  req.setTimeout(ms);
  req.once('end', onBodyEnd);
}
