import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import type { UpstreamConf } from '../config/types.ts';
import { createBalancer, triedBit } from './balancer.ts';
import type { Balancer, HashKey, TargetState } from './balancer.ts';
import type { Exchange } from './exchange.ts';
import { upstreamHashKey } from './hash-key.ts';
import type { HashKeyFn } from './hash-key.ts';
import type { ErrorCode, GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { sendChunk, sendEnd, sendError, sendHead } from './response-writer.ts';
import { buildDownstreamHeaders, UPSTREAM_HOST_INDEX } from './upstream-headers.ts';

/**
 * The streaming proxy on undici's dispatch API (the fastest client Node has:
 * no promise, no stream object per request). Request and response bodies flow
 * through with backpressure in both directions and are never buffered (unless
 * a plugin read the request body with ctx.req.body(): those bytes go instead).
 *
 * One `ProxyCall` per request doubles as undici's handler; the listeners it
 * needs on the request and response are module-level functions that find the
 * call through a symbol, so a request allocates no closures.
 */
export interface Upstream {
  readonly conf: UpstreamConf;
  readonly balancer: Balancer;
  readonly pools: readonly Pool[];
  /** Host header per target when the route does not preserve the client's. */
  readonly hostHeaders: readonly string[];
  /** `hash_on` for a consistent-hash upstream; null for every other algorithm. */
  readonly hashKey: HashKeyFn | null;
}

/** `health`: the master's active-health buffer for this upstream (none in a conf without it, e.g. tests). */
export function createUpstream(conf: UpstreamConf, health?: SharedArrayBuffer): Upstream {
  const pools = conf.targets.map((t) => new Pool(`http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`, {
    connections: conf.keepalive,
    pipelining: 1,
    connectTimeout: conf.connect_timeout,
    headersTimeout: conf.read_timeout,
    bodyTimeout: conf.read_timeout,
  }));
  return {
    conf,
    balancer: createBalancer(conf, health),
    pools,
    hostHeaders: conf.targets.map((t) => conf.host_header ?? t.address),
    hashKey: upstreamHashKey(conf),
  };
}

export const closeUpstream = (u: Upstream): Promise<unknown> => Promise.all(u.pools.map((p) => p.close()));

/** RFC 9110 §9.2.2: safe to send twice. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'GW_ERR_SEND_TIMEOUT',
]);

/** Errors raised before the upstream could have acted on the request: always safe to move on. */
const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL',
]);

/** A pooled socket the upstream closed under us (keep-alive race). */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);

const kCall = Symbol('sluice.proxyCall');
type WithCall = { [kCall]?: ProxyCall | undefined };

class GatewayAbort extends Error {
  readonly code: ErrorCode;
  constructor(code: GatewayAbort['code']) {
    super(code);
    this.code = code;
  }
}

function onClientClose(this: ServerResponse & WithCall): void {
  const call = this[kCall];
  if (call !== undefined && !this.writableFinished) call.abort(new GatewayAbort('GW_ERR_CLIENT_GONE'));
}

function onClientDrain(this: ServerResponse & WithCall): void {
  this[kCall]?.controller?.resume();
}

/**
 * client_max_body_size for a chunked body, whose size is known only as it
 * arrives (a Content-Length body was checked before proxying, and Node's parser
 * holds the client to it). Counting inside the body's own iteration, rather
 * than with a second 'data' listener, keeps a single consumer on the stream.
 */
async function* limitedBody(call: ProxyCall, body: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > max) {
      const reason = new GatewayAbort('GW_ERR_BODY_TOO_LARGE');
      call.aborted = reason;
      throw reason;
    }
    yield chunk;
  }
}

function onSendTimeout(call: ProxyCall): void {
  call.abort(new GatewayAbort('GW_ERR_SEND_TIMEOUT'));
}

export interface ProxyRequest {
  /** The request: its method, path and query (as plugins left them) go upstream; the response goes out through its writer. */
  readonly x: Exchange;
  readonly upstream: Upstream;
  /** Built by buildUpstreamHeaders; Host is swapped per target unless `preserveHost`. */
  readonly headers: string[];
  readonly preserveHost: boolean;
  readonly hasBody: boolean;
  /** The body a plugin read (ctx.req.body) and the gateway sends instead of the client stream; null = stream it. */
  readonly body: Buffer | null;
  /** client_max_body_size for a chunked body (0 = unlimited); a Content-Length body was checked already. */
  readonly maxChunkedBody: number;
  /** Read after the access phase (identity comes from auth plugins), once for every attempt. */
  readonly hashKey: HashKey;
}

class ProxyCall implements Dispatcher.DispatchHandler {
  readonly p: ProxyRequest;
  readonly opts: Dispatcher.DispatchOptions;
  controller: Dispatcher.DispatchController | null = null;
  target: TargetState | null = null;
  tried = 0;
  attempts = 0;
  resetRetried = false;
  attemptStart = 0;
  aborted: GatewayAbort | null = null;
  sendTimer: NodeJS.Timeout | null = null;
  done = false;

  constructor(p: ProxyRequest) {
    this.p = p;
    const incoming = p.x.incoming;
    this.opts = {
      path: p.x.req.target(),
      method: p.x.method as Dispatcher.HttpMethod,
      headers: p.headers,
      body: p.body !== null ? p.body : !p.hasBody ? null : p.maxChunkedBody > 0 ? Readable.from(limitedBody(this, incoming, p.maxChunkedBody), { objectMode: false }) : incoming,
    };
  }

  start(): void {
    const res = this.p.x.out;
    (res as WithCall)[kCall] = this;
    res.on('close', onClientClose);
    res.on('drain', onClientDrain);
    if (this.p.hasBody) {
      this.sendTimer = setTimeout(onSendTimeout, this.p.upstream.conf.send_timeout, this);
    }
    this.attempt();
  }

  attempt(): void {
    const { upstream, x } = this.p;
    const now = performance.now();
    const t = upstream.balancer.pick(this.tried, this.p.hashKey, now);
    if (t === null) {
      this.fail('GW_ERR_NO_HEALTHY_UPSTREAM');
      return;
    }
    this.target = t;
    this.tried |= triedBit(t.index);
    this.attempts++;
    t.active++;
    this.attemptStart = now;
    x.upstreamAddr = t.address;
    if (!this.p.preserveHost) this.p.headers[UPSTREAM_HOST_INDEX] = upstream.hostHeaders[t.index]!;
    upstream.pools[t.index]!.dispatch(this.opts, this);
  }

  abort(reason: GatewayAbort): void {
    if (this.done || this.aborted !== null) return;
    this.aborted = reason;
    if (this.controller !== null) this.controller.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted !== null) controller.abort(this.aborted);
  }

  onBodySent(): void {
    this.sendTimer?.refresh();
  }

  onRequestSent(): void {
    this.clearSendTimer();
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return; // 100 Continue and friends: the client already got its own
    sendHead(this.p.x, status, buildDownstreamHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!sendChunk(this.p.x, chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.settle(true);
    sendEnd(this.p.x);
    this.finish();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    const code = (err as { code?: string }).code ?? '';
    const clientGone = this.aborted?.code === 'GW_ERR_CLIENT_GONE';
    const bodyTooLarge = this.aborted?.code === 'GW_ERR_BODY_TOO_LARGE';
    // A client that went away, or a body we refused, says nothing about the upstream's health.
    this.settle(clientGone || bodyTooLarge);
    if (clientGone) {
      this.finish();
      return;
    }
    if (bodyTooLarge) {
      this.fail('GW_ERR_BODY_TOO_LARGE');
      return;
    }
    const timeout = TIMEOUT_CODES.has(code);
    if (!this.p.x.out.headersSent && this.canRetry(code)) {
      this.controller = null;
      this.attempt();
      return;
    }
    const x = this.p.x;
    x.site.log.error({ err: { code, message: err.message }, upstream: this.p.upstream.conf.name, target: this.target?.address,
      method: x.method, path: x.path }, timeout ? 'upstream timed out' : 'upstream failed');
    this.fail(timeout ? 'GW_ERR_UPSTREAM_TIMEOUT' : 'GW_ERR_UPSTREAM');
  }

  /** nginx proxy_next_upstream "error timeout", idempotent requests only, never once a byte went back. */
  canRetry(code: string): boolean {
    if (this.p.hasBody || !IDEMPOTENT.has(this.opts.method)) return false;
    if (this.attempts <= this.p.upstream.conf.retries && (CONNECT_CODES.has(code) || TIMEOUT_CODES.has(code) || RESET_CODES.has(code))) return true;
    // A reused keep-alive socket the upstream had just closed: one more try even with retries: 0.
    if (RESET_CODES.has(code) && !this.resetRetried) {
      this.resetRetried = true;
      this.tried = 0;
      return true;
    }
    return false;
  }

  settle(ok: boolean): void {
    const t = this.target;
    if (t === null) return;
    this.target = null;
    t.active--;
    const now = performance.now();
    const ms = now - this.attemptStart;
    const x = this.p.x;
    x.upstreamTime = (x.upstreamTime < 0 ? 0 : x.upstreamTime) + ms;
    this.p.upstream.balancer.report(t, ok, ms, now);
  }

  fail(code: GatewayErrorCode): void {
    sendError(this.p.x, code, code === 'GW_ERR_BODY_TOO_LARGE');
    this.finish();
  }

  clearSendTimer(): void {
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.clearSendTimer();
    const res = this.p.x.out;
    (res as WithCall)[kCall] = undefined;
    res.off('close', onClientClose);
    res.off('drain', onClientDrain);
  }
}

export function proxy(p: ProxyRequest): void {
  new ProxyCall(p).start();
}
