import { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { GATEWAY_ERRORS, errorBody, errorStatus } from '../plugins/pdk/errors.ts';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { prepareExit } from '../plugins/pdk/prepared-exit.ts';
import type { PreparedExit } from '../plugins/pdk/prepared-exit.ts';
import type { Exit, ResponseSource } from '../plugins/pdk/types.ts';
import type { Exchange } from './exchange.ts';
import { lingerOnClose } from './lingering-close.ts';
import { PLUGIN_FAILED, runBodyFilter, runHeaderFilter, runLog } from './pipeline/run.ts';
import { recordRequest } from './stats.ts';

/**
 * The one way a response leaves the gateway, whatever made it: the proxy, a
 * `return:` route, a static file, a plugin's exit, a gateway error (and, next,
 * a cache hit). The head passes the exchange's header filters, the body its
 * body filters, and when the response is done the access log, the stats and
 * the log phase see it once (nginx: every response passes header_filter, and
 * the log phase runs for every request). A new kind of response calls these
 * functions; there is no other path to Node's writeHead.
 *
 *   sendHead ─► [sendChunk …] ─► sendEnd        streamed bodies (proxy, files)
 *   sendWhole = sendHead + the body in one end() (return:, exits, errors)
 *   sendUpgrade: a WebSocket's 101, then the socket is the tunnel's
 *   track: on the response's 'close' ─► access log, stats, log phase
 */

const EMPTY = new Uint8Array(0);

/** Status and head of a response: header filters run here, Connection: close once the worker drains. */
export function sendHead(x: Exchange, status: number, list: readonly string[], source: ResponseSource): void {
  const out = x.out;
  if (x.site.lifecycle.draining) out.shouldKeepAlive = false;
  out.writeHead(status, filtered(x, status, list, source) as string[]);
}

/** The head as the header filters leave it. */
function filtered(x: Exchange, status: number, list: readonly string[], source: ResponseSource): readonly string[] {
  const chain = x.chain;
  if (chain.headerFilter === null && chain.log === null) return list;
  // The list is borrowed (Node's, the upstream parser's or a prebuilt one) and copied only if a filter changes it.
  const headers = x.startResponse(status, list, source);
  runHeaderFilter(x);
  return headers.list;
}

const UPGRADE_HEADERS: readonly string[] = ['connection', 'upgrade', 'upgrade', 'websocket'];

/**
 * The upstream's 101 to a WebSocket handshake (websocket.ts): its head passes
 * the header filters like any other (correlation id, CORS), then gets back the
 * hop-by-hop Connection and Upgrade no filter may drop, and the HTTP response
 * is over. What follows on the socket is the tunnel's; the response's 'close'
 * is the socket's, so the access log, stats and log phase (limit-conn's
 * release) run when the WebSocket ends.
 */
export function sendUpgrade(x: Exchange, list: readonly string[]): void {
  x.out.writeHead(101, [...filtered(x, 101, list, 'upstream'), ...UPGRADE_HEADERS]);
  x.out.end();
}

/** One chunk of a streamed body; false when the client's socket wants the producer to pause. */
export function sendChunk(x: Exchange, chunk: Uint8Array): boolean {
  return x.out.write(x.chain.bodyFilter === null ? chunk : runBodyFilter(x, chunk, false));
}

/** The end of a streamed body: the body filters' last word, then end(). */
export function sendEnd(x: Exchange): void {
  if (x.chain.bodyFilter !== null) {
    const tail = runBodyFilter(x, EMPTY, true);
    if (tail.length > 0) x.out.write(tail);
  }
  x.out.end();
}

/** A response whose body is all here: one end(), and none for HEAD. */
export function sendWhole(x: Exchange, status: number, list: readonly string[], body: Uint8Array, source: ResponseSource): void {
  sendHead(x, status, list, source);
  if (x.method === 'HEAD') {
    x.out.end();
    return;
  }
  if (x.chain.bodyFilter === null) {
    x.out.end(body);
    return;
  }
  const head = runBodyFilter(x, body, false);
  const tail = runBodyFilter(x, EMPTY, true);
  x.out.end(tail.length === 0 ? head : Buffer.concat([head, tail]));
}

const noop = (): void => {};

/** A readable body (a file): piped as is when no body filter is configured, else chunk by chunk with backpressure. */
export function sendStream(x: Exchange, body: Readable): void {
  if (x.chain.bodyFilter === null) {
    pipeline(body, x.out, noop); // errors end the response; the access log records it
    return;
  }
  const resume = (): void => void body.resume();
  body.on('data', (chunk: Buffer) => {
    if (!sendChunk(x, chunk)) {
      body.pause();
      x.out.once('drain', resume);
    }
  });
  body.once('end', () => sendEnd(x));
  body.once('error', () => x.out.destroy());
  x.out.once('close', () => body.destroy());
}

/** Prebuilt heads per code, with and without Connection: close; nothing is formatted per request. */
const errorHeads = new Map<GatewayErrorCode, { open: readonly string[]; close: readonly string[] }>();

function errorHead(code: GatewayErrorCode, close: boolean): readonly string[] {
  let h = errorHeads.get(code);
  if (h === undefined) {
    const open = ['content-type', 'application/json', 'content-length', String(errorBody(code).length)];
    h = { open, close: [...open, 'connection', 'close'] };
    errorHeads.set(code, h);
  }
  return close ? h.close : h.open;
}

/** What the caller knows of why it answers a 5xx (the proxy: upstream, target, error), for its log line. */
export type ErrorCause = Readonly<Record<string, unknown>>;

/**
 * The gateway's own JSON error (`{ code, message }`); `close` also ends the
 * connection (bad framing, timeouts, a body left unread). Once a head went
 * out, all that can be said is to cut the connection, unless the response is
 * whole already.
 *
 * Every 5xx of the gateway's own passes here, so here is its error-log line,
 * one per answer, with the request and the `cause` the caller passes instead
 * of logging it separately (the line is written even when the client is gone:
 * the failure happened all the same).
 */
export function sendError(x: Exchange, code: GatewayErrorCode, close = false, cause?: ErrorCause): void {
  const status = errorStatus(code);
  if (status >= 500) logGatewayError(x, code, cause);
  const out = x.out;
  if (out.headersSent) {
    // A response already whole (a 408 the body's failure follows) is left to finish.
    if (!out.writableEnded) out.destroy();
    return;
  }
  if (out.destroyed) return;
  if (close) {
    out.shouldKeepAlive = false;
    // A body still coming (HTTP/1.1): read it away after the answer, so that the client gets to read the answer.
    if (x.incoming instanceof IncomingMessage && !x.incoming.complete) lingerOnClose(x.socket);
  }
  sendWhole(x, status, errorHead(code, close), errorBody(code), 'error');
}

/** The error-log line of a gateway 5xx: sendError's, or the proxy's when a plugin answered in its place (onUpstreamAnswer). */
export function logGatewayError(x: Exchange, code: GatewayErrorCode, cause?: ErrorCause): void {
  x.site.log.error({ ...cause, code, status: errorStatus(code), route: x.route.name, method: x.method, path: x.path, client: x.client, request_id: x.requestId ?? undefined },
    GATEWAY_ERRORS[code].message);
}

/**
 * A plugin's Exit. Its headers are checked like any plugin-set header; a bad
 * one turns the answer into the plugin-failure 500. A PreparedExit was
 * checked when it was made and goes as it is.
 */
export function sendExit(x: Exchange, exit: Exit): void {
  if (x.out.headersSent || x.out.destroyed) return;
  let ready: PreparedExit;
  try {
    ready = prepareExit(exit);
  } catch (err) {
    x.site.log.error({ err, route: x.route.name }, 'plugin exit has an invalid header');
    if (exit !== PLUGIN_FAILED) sendExit(x, PLUGIN_FAILED);
    return;
  }
  sendWhole(x, ready.status, ready.list, ready.body, 'exit');
}

const kExchange = Symbol('sluice.exchange');
type Tracked = { [kExchange]?: Exchange | undefined };

/** Hoisted so a request allocates no listener closure; `this` is the response. */
function onResponseClose(this: Tracked & Exchange['out']): void {
  const x = this[kExchange];
  if (x === undefined) return;
  this[kExchange] = undefined;
  const end = performance.now();
  // nginx's 499: the client went away before any response head was sent.
  const status = this.headersSent ? this.statusCode : 499;
  const site = x.site;
  site.accessLog?.write(x, status, x.sentBytes(), end);
  recordRequest(site.stats, x.routeIndex < 0 ? site.routes : x.routeIndex, status, end - x.start, x.upstreamTime);
  if (x.chain.log !== null) runLog(x, status, end);
}

/** Accounts for the exchange once its response is done, however it ended. */
export function track(x: Exchange): void {
  (x.out as Tracked & Exchange['out'])[kExchange] = x;
  x.out.on('close', onResponseClose);
}
