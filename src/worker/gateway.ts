import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { RouteConf, SluiceConf } from '../config/types.ts';
import type { Exit, PluginDef } from '../plugins/pdk/types.ts';
import type { AccessLog } from './access-log.ts';
import { createClientAddressResolver } from './client-address.ts';
import { Exchange } from './exchange.ts';
import { sendGatewayError } from './gateway-errors.ts';
import { normalizePath } from './normalize-path.ts';
import { compileChains } from './pipeline/chain.ts';
import type { BodyLimits } from './pipeline/body.ts';
import { PluginCtx, smallestLimit } from './pipeline/ctx.ts';
import { compileConsumers } from './pipeline/consumers.ts';
import { createPluginEnvs } from './pipeline/env.ts';
import { sendExit, sendReturn } from './pipeline/respond.ts';
import { runLog, runRequestPhases } from './pipeline/run.ts';
import { closeUpstream, createUpstream, proxy } from './proxy.ts';
import type { Upstream } from './proxy.ts';
import { guardRequest, originForm } from './request-guard.ts';
import { compileRouter } from './router.ts';
import type { RouteMatch } from './router.ts';
import { createStaticRoot, serveStatic } from './static-files.ts';
import type { StaticRoot } from './static-files.ts';
import { REQUESTS } from '../contracts/stats-layout.ts';
import { recordRequest } from './stats.ts';
import { appendIdentityHeaders, buildUpstreamHeaders } from './upstream-headers.ts';

/**
 * The per-conf request pipeline: everything here is compiled once when a worker
 * starts on a conf (router, upstream pools, route actions, prebuilt `return:`
 * responses), and `handle` is what runs per request.
 */
export interface Lifecycle {
  /** Set when the worker drains: every response from now on carries `Connection: close`. */
  draining: boolean;
}

type RouteAction =
  | { readonly kind: 'return'; readonly status: number; readonly headers: readonly string[]; readonly body: Buffer }
  | { readonly kind: 'static'; readonly root: StaticRoot }
  | { readonly kind: 'proxy'; readonly upstream: Upstream; readonly preserveHost: boolean };

export interface Gateway {
  handle(req: IncomingMessage, res: ServerResponse): void;
  close(): Promise<unknown>;
}

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
  /** Active health per upstream, written by the master's prober. */
  readonly health: Readonly<Record<string, SharedArrayBuffer>>;
  /** This worker's id: the shdict lock owner. */
  readonly workerId: number;
}

function compileReturn(route: RouteConf): RouteAction {
  const r = route.return!;
  const body = Buffer.from(r.body);
  const headers: string[] = [];
  let hasType = false;
  for (const [name, value] of Object.entries(r.headers)) {
    hasType ||= name.toLowerCase() === 'content-type';
    headers.push(name, value);
  }
  if (!hasType && body.length > 0) headers.push('content-type', 'text/plain; charset=utf-8');
  headers.push('content-length', String(body.length));
  return { kind: 'return', status: r.status, headers, body };
}

const kExchange = Symbol('sluice.exchange');
type WithExchange = ServerResponse & { [kExchange]?: Exchange | undefined };

export function createGateway(env: GatewayEnv): Gateway {
  const { conf, log, accessLog, stats, lifecycle } = env;
  const router = compileRouter(conf.routes);
  const upstreams = new Map<string, Upstream>();
  for (const [name, u] of Object.entries(conf.upstreams)) upstreams.set(name, createUpstream(u, env.health[name]));
  const actions: RouteAction[] = conf.routes.map((route) => {
    if (route.return !== null) return compileReturn(route);
    if (route.root !== null) return { kind: 'static', root: createStaticRoot(route.root) };
    return { kind: 'proxy', upstream: upstreams.get(route.upstream!)!, preserveHost: route.preserve_host };
  });
  const pluginEnvs = createPluginEnvs({ log, workerId: env.workerId, zones: env.zones, consumers: compileConsumers(conf.consumers) });
  // Per route, in route order: null for a route without plugins, which then pays nothing.
  const chains = compileChains({ conf, plugins: env.plugins, envFor: pluginEnvs.envFor, log });
  const clientAddress = createClientAddressResolver(conf.server.real_ip);
  const realIpHeader = conf.server.real_ip?.header.toLowerCase() ?? null;
  const maxBody = conf.server.client_max_body_size;
  const bodyLimits: BodyLimits = Object.freeze({ maxBody, idleMs: conf.server.client_body_timeout });

  // Hoisted so a request allocates no listener closure; `this` is the response.
  function onResponseDone(this: WithExchange): void {
    const x = this[kExchange];
    if (x === undefined) return;
    this[kExchange] = undefined;
    const socket = x.socket;
    const end = performance.now();
    // nginx's 499: the client went away before any response head was sent.
    const status = this.headersSent ? this.statusCode : 499;
    accessLog?.write(x, status, socket.bytesWritten - x.bytesBefore, end);
    recordRequest(stats, x.routeIndex < 0 ? conf.routes.length : x.routeIndex, status, end - x.start, x.upstreamTime);
    if (x.ctx !== null) runLog(x.ctx, status, end);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    stats[REQUESTS]!++;
    const x = new Exchange(performance.now(), req.method!, req.socket, req.url!);
    (res as WithExchange)[kExchange] = x;
    res.on('close', onResponseDone);
    if (lifecycle.draining) res.shouldKeepAlive = false;

    const bad = guardRequest(req);
    if (bad !== null) {
      res.shouldKeepAlive = false;
      sendGatewayError(res, bad, true);
      return;
    }
    const host = req.headers.host;
    let target = req.url!;
    if (target.charCodeAt(0) !== 47 /* '/' */) {
      const path = originForm(target, host);
      if (path === null) {
        sendGatewayError(res, 'GW_ERR_BAD_REQUEST', true);
        return;
      }
      target = path;
    }
    const n = normalizePath(target);
    if ('error' in n) {
      sendGatewayError(res, 'GW_ERR_BAD_PATH');
      return;
    }
    x.path = n.path;
    x.client = clientAddress(x.peer, realIpHeader === null ? undefined : headerValue(req, realIpHeader));

    const m = router.match(x.method, host, n.path);
    if (m === null) {
      sendGatewayError(res, 'GW_ERR_NO_ROUTE');
      return;
    }
    x.route = m.route.name;
    x.routeIndex = m.index;
    const chain = chains[m.index]!;
    if (chain === null) {
      serve(req, res, x, m, n.query, null);
      return;
    }
    const ctx = new PluginCtx(chain, x, req.rawHeaders, m.upstreamPath, n.query, req, bodyLimits);
    x.ctx = ctx;
    const r = chain.request === null ? null : runRequestPhases(ctx, chain.request, 0);
    if (r === null) serve(req, res, x, m, n.query, ctx);
    else if (r instanceof Promise) {
      // Only a plugin that went async costs this closure.
      r.then((exit) => afterRequestPhases(req, res, x, m, n.query, ctx, exit)).catch((err: unknown) => {
        log.error({ err, route: x.route }, 'request failed after an async plugin');
        sendGatewayError(res, 'GW_ERR_INTERNAL');
      });
    } else sendExit(res, ctx, r);
  }

  function afterRequestPhases(req: IncomingMessage, res: ServerResponse, x: Exchange, m: RouteMatch, query: string, ctx: PluginCtx, exit: Exit | null): void {
    // The client may have gone while a plugin waited: nothing left to answer.
    if (res.destroyed) return;
    const failed = ctx.req.bodyFailure;
    if (failed !== null) {
      if (failed.code !== 'GW_ERR_CLIENT_GONE') sendGatewayError(res, failed.code, true);
      return;
    }
    if (exit === null) serve(req, res, x, m, query, ctx);
    else sendExit(res, ctx, exit);
  }

  /** The route's own work once plugins (if any) let the request through. */
  function serve(req: IncomingMessage, res: ServerResponse, x: Exchange, m: RouteMatch, query: string, ctx: PluginCtx | null): void {
    const action = actions[m.index]!;
    if (action.kind === 'return') {
      if (ctx !== null) {
        sendReturn(res, ctx, action.status, action.headers, action.body);
        return;
      }
      res.writeHead(action.status, action.headers as string[]);
      res.end(x.method === 'HEAD' ? undefined : action.body);
      return;
    }
    if (action.kind === 'static') {
      serveStatic(action.root, res, m.upstreamPath, x.path, query).catch((err: unknown) => {
        log.error({ err }, 'static file failed');
        sendGatewayError(res, 'GW_ERR_INTERNAL');
      });
      return;
    }

    if (ctx !== null && ctx.req.reading !== null && ctx.req.buffered === null && ctx.req.bodyFailure === null) {
      // A plugin started reading the body without awaiting it: the body goes upstream once it is all here.
      ctx.req.reading.then(() => serve(req, res, x, m, query, ctx), () => afterRequestPhases(req, res, x, m, query, ctx, null));
      return;
    }
    const host = req.headers.host;
    const buffered = ctx === null ? null : ctx.req.buffered;
    const limit = ctx === null ? maxBody : smallestLimit(maxBody, ctx.req.bodyLimit);
    const declared = req.headers['content-length'];
    if (buffered === null && limit > 0 && declared !== undefined && Number(declared) > limit) {
      res.shouldKeepAlive = false;
      sendGatewayError(res, 'GW_ERR_BODY_TOO_LARGE', true);
      return;
    }
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const hasBody = buffered !== null ? buffered.length > 0 : chunked || (declared !== undefined && declared !== '0');
    // Plugins' changes first, then the gateway's rules over them: a plugin cannot forge X-Forwarded-For or identity.
    const headers = buildUpstreamHeaders(ctx === null ? req.rawHeaders : ctx.req.headers.list, {
      host: action.preserveHost && host !== undefined ? host : '',
      peer: x.peer,
      client: x.client,
      clientHost: host ?? '',
    });
    if (ctx !== null && ctx.identity !== null) appendIdentityHeaders(headers, ctx.identity);
    if (buffered !== null) setContentLength(headers, buffered.length, chunked || declared !== undefined);
    else if (hasBody) watchBodyIdle(req, res, conf.server.client_body_timeout);
    proxy({
      upstream: action.upstream,
      req,
      res,
      x,
      path: ctx !== null ? ctx.req.target() : query === '' ? m.upstreamPath : `${m.upstreamPath}?${query}`,
      headers,
      preserveHost: action.preserveHost && host !== undefined,
      hasBody,
      body: buffered,
      maxChunkedBody: chunked && buffered === null ? limit : 0,
      hashKey: undefined,
      ctx,
      log,
      lifecycle,
    });
  }

  return {
    handle,
    close: () => Promise.all([...upstreams.values()].map(closeUpstream).concat(pluginEnvs.close())),
  };
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

/** A header that may legitimately repeat (X-Forwarded-For): all copies, comma-joined as RFC 9110 allows. */
function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * client_body_timeout: nginx's is the idle time between two body reads, not a
 * deadline for the whole body. The socket's idle timer does exactly that while
 * the body streams, and is switched off once the body has arrived.
 */
const kResponse = Symbol('sluice.response');
type WithResponse = IncomingMessage & { [kResponse]?: ServerResponse | undefined };

function onBodyTimeout(this: WithResponse): void {
  if (this.complete) return;
  const res = this[kResponse];
  if (res !== undefined && !res.headersSent) sendGatewayError(res, 'GW_ERR_CLIENT_TIMEOUT', true);
  this.socket.destroySoon();
}

function onBodyEnd(this: WithResponse): void {
  this[kResponse] = undefined;
  this.socket.setTimeout(0);
}

function watchBodyIdle(req: WithResponse, res: ServerResponse, ms: number): void {
  req[kResponse] = res;
  req.setTimeout(ms, onBodyTimeout);
  req.once('end', onBodyEnd);
}
