import type { Socket } from 'node:net';
import type { PluginCtx } from './pipeline/ctx.ts';

/**
 * One request/response as the gateway saw it: filled in as the request moves
 * through routing and proxying, read once by the access log when it ends. Every
 * field is set in the constructor so all instances share one hidden class.
 */
export class Exchange {
  /** performance.now() at arrival, for request_time. */
  readonly start: number;
  readonly method: string;
  readonly peer: string;
  /** The resolved client address (server.real_ip). */
  client: string;
  /** The normalised path, or the raw target when it could not be normalised. */
  path: string;
  route: string | null;
  /** The route's index in the conf (its metrics block); -1 until routed. */
  routeIndex: number;
  upstreamAddr: string | null;
  /** ms spent waiting on upstreams, summed over attempts; -1 = none. */
  upstreamTime: number;
  /** The correlation id a plugin set (correlation-id), for the access log; null = none. */
  requestId: string | null;
  /** The plugin context, on routes that have plugins; the log phase runs from it. */
  ctx: PluginCtx | null;
  /** Kept because Node detaches `req.socket` before the response's 'close' event. */
  readonly socket: Socket;
  /** Socket bytes written before this response, to count this response's bytes. */
  readonly bytesBefore: number;

  constructor(start: number, method: string, socket: Socket, path: string) {
    this.start = start;
    this.method = method;
    this.socket = socket;
    this.peer = socket.remoteAddress ?? '';
    this.client = this.peer;
    this.path = path;
    this.route = null;
    this.routeIndex = -1;
    this.upstreamAddr = null;
    this.upstreamTime = -1;
    this.requestId = null;
    this.ctx = null;
    this.bytesBefore = socket.bytesWritten;
  }
}
