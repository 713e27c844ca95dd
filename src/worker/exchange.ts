import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { HeaderList } from '../plugins/pdk/headers.ts';
import type {
  CtxVars, Exit, Identity, LogCtx, MutableResponseHead, RequestCtx, ResponseCtx, ResponseSource, RouteInfo, Timing, UpstreamAnswerHook,
} from '../plugins/pdk/types.ts';
import type { AccessLog } from './access-log.ts';
import type { DetachedResponse } from './detached-response.ts';
import type { HashSource } from './hash-key.ts';
import { H2Response } from './http2-exchange.ts';
import type { Incoming } from './http2-exchange.ts';
import type { Chain } from './pipeline/chain.ts';
import type { BodyLimits } from './pipeline/body.ts';
import type { Upstream } from './proxy.ts';
import { RequestView } from './request-view.ts';
import type { Tunnels } from './websocket.ts';

/** Set when the worker drains: every response from then on carries `Connection: close`. */
export interface Lifecycle {
  draining: boolean;
}

/** What every exchange of one worker shares: where the response writer accounts for it. */
export interface Site {
  readonly log: Logger;
  readonly accessLog: AccessLog | null;
  /** The conf's route count: the stats block of requests no route matched. */
  readonly routes: number;
  readonly stats: Float64Array;
  readonly lifecycle: Lifecycle;
  readonly bodyLimits: BodyLimits;
  /** The conf's upstreams by name: what `useUpstream` may choose. */
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** The worker's open WebSockets. */
  readonly tunnels: Tunnels;
}

class ResponseView implements MutableResponseHead {
  readonly status: number;
  readonly headers: HeaderList;
  readonly source: ResponseSource;
  /** The list the head started from: a HeaderList copies on its first change, so this stays as the source made it. */
  private readonly origin: readonly string[];
  constructor(status: number, origin: readonly string[], source: ResponseSource) {
    this.status = status;
    this.headers = new HeaderList(origin);
    this.source = source;
    this.origin = origin;
  }

  get sourceHeaders(): HeaderList {
    return new HeaderList(this.origin);
  }
}

class LogTiming implements Timing {
  readonly start: number;
  readonly total: number;
  readonly upstream: number | null;
  constructor(x: Exchange, end: number) {
    this.start = performance.timeOrigin + x.start;
    this.total = end - x.start;
    this.upstream = x.upstreamTime < 0 ? null : x.upstreamTime;
  }
}

/** A fetchInBackground request of a plugin: the vars of the exchange that will make it, and its end hook. */
export interface Background {
  readonly vars: CtxVars;
  readonly done: () => void;
}

/** A client's response, over HTTP/1.1 or HTTP/2. */
export type ClientResponse = ServerResponse | H2Response;

/** Where the response goes: a client, or nowhere (a background request). */
export type ResponseOut = ClientResponse | DetachedResponse;

const NO_HEADERS: readonly string[] = [];
/** Placeholders until the response exists, so the fields keep one type and the class one shape. */
const PENDING_RESPONSE = new ResponseView(0, NO_HEADERS, 'error');
const PENDING_TIMING: Timing = Object.freeze({ start: 0, total: 0, upstream: null });

/**
 * One request and its response, from arrival to the access log line: what
 * routing, the plugins of every phase, the proxy and the response writer read
 * and write. It is the plugins' ctx too: the pdk types (RequestCtx,
 * ResponseCtx, LogCtx) decide what each phase may touch, so a wrong-phase call
 * is a type error rather than Kong's runtime check.
 *
 * `chain` is never null: before a route is chosen it is the global plugins'
 * chain (a no-route 404 passes their header filters and log phase), and a
 * route without plugins has a chain whose phases are all null, which the hot
 * path tests field by field. Every field is set in the constructor so all
 * exchanges share one hidden class.
 */
export class Exchange implements RequestCtx, ResponseCtx, LogCtx, HashSource {
  readonly site: Site;
  /** Node's request and response: only the gateway, the proxy and the response writer use them. */
  readonly incoming: Incoming;
  readonly out: ResponseOut;
  /** Kept because Node detaches `req.socket` before the response's 'close' event (HTTP/2: Node's stand-in for the session's socket). */
  readonly socket: Socket;
  /** performance.now() at arrival, for request_time. */
  readonly start: number;
  readonly method: string;
  readonly peer: string;
  /** Socket bytes written before this response, to count this response's bytes (HTTP/1.1). */
  readonly bytesBefore: number;
  /** The resolved client address (server.real_ip). */
  client: string;
  /** The normalised path, or the raw target when it could not be normalised. */
  path: string;
  chain: Chain;
  /** The route's index in the conf (its metrics block); -1 until routed. */
  routeIndex: number;
  /** Where a proxy route sends this request: its own upstream once routed, or the one a plugin chose; null otherwise. */
  proxyTo: Upstream | null;
  upstreamAddr: string | null;
  /** ms spent waiting on upstreams, summed over attempts; -1 = none. */
  upstreamTime: number;
  requestId: string | null;
  identity: Identity | null;
  readonly vars: CtxVars;
  readonly req: RequestView;
  /** Set when the response head is built, or for the log phase. */
  res: ResponseView;
  timing: Timing;
  /** The Exit a plugin made with `ctx.exit()`, even if it did not return it. */
  exited: Exit | null;
  upstreamAnswer: UpstreamAnswerHook | null;
  background: Background | null;
  /** A WebSocket handshake (websocket.ts): the bytes the client sent behind it; null for every other request. */
  handshake: Buffer | null;

  /** `from`: a background request's, the request as its plugins left it and the vars it starts with. */
  constructor(site: Site, incoming: Incoming, out: ResponseOut, chain: Chain, start: number, from?: { readonly req: RequestView; readonly vars: CtxVars }) {
    const socket = incoming.socket;
    this.site = site;
    this.incoming = incoming;
    this.out = out;
    this.socket = socket;
    this.start = start;
    this.method = incoming.method!;
    this.peer = socket.remoteAddress ?? '';
    this.bytesBefore = out instanceof H2Response ? 0 : socket.bytesWritten;
    this.client = this.peer;
    this.path = incoming.url!;
    this.chain = chain;
    this.routeIndex = -1;
    this.proxyTo = null;
    this.upstreamAddr = null;
    this.upstreamTime = -1;
    this.requestId = null;
    this.identity = null;
    this.vars = from?.vars ?? {};
    this.req = from?.req ?? new RequestView(incoming, site.bodyLimits);
    this.res = PENDING_RESPONSE;
    this.timing = PENDING_TIMING;
    this.exited = null;
    this.upstreamAnswer = null;
    this.background = null;
    this.handshake = null;
  }

  /** Bytes the response put on the wire; over HTTP/2 its body's (the session's frames are shared by its streams). */
  sentBytes(): number {
    const out = this.out;
    return out instanceof H2Response ? out.bodyBytes : this.socket.bytesWritten - this.bytesBefore;
  }

  /** A request header as Node joins repeats (`hash_on: header:NAME | cookie:NAME`); `name` in lower case. */
  header(name: string): string | undefined {
    const v = this.incoming.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  get route(): RouteInfo {
    return this.chain.route;
  }

  get upstream(): string | null {
    return this.proxyTo === null ? null : this.proxyTo.conf.name;
  }

  useUpstream(name: string): boolean {
    if (this.proxyTo === null) return false;
    const u = this.site.upstreams.get(name);
    if (u === undefined) return false;
    this.proxyTo = u;
    return true;
  }

  exit(status: number, body?: Exit['body'], headers?: Exit['headers']): Exit {
    const e: Exit = { status, body, headers };
    this.exited = e;
    return e;
  }

  onUpstreamAnswer(hook: UpstreamAnswerHook): void {
    this.upstreamAnswer = hook;
  }

  fetchInBackground(vars: CtxVars, done: () => void): void {
    this.background = { vars, done };
  }

  /** The response head plugins will see and may change; `list` is borrowed until changed. */
  startResponse(status: number, list: readonly string[], source: ResponseSource): HeaderList {
    this.res = new ResponseView(status, list, source);
    return this.res.headers;
  }

  /** For the log phase: the response as sent (a bare one if no head was built) and the timing. */
  finish(status: number, end: number): void {
    // No head was built (the client left first, or no plugin needed one): what the log phase can know.
    if (this.res === PENDING_RESPONSE) this.res = new ResponseView(status, NO_HEADERS, 'error');
    this.timing = new LogTiming(this, end);
  }
}
