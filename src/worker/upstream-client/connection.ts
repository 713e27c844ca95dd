import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ErrorCode } from '../../plugins/pdk/errors.ts';
import { COMPLETE, ResponseParser, UPGRADE } from './response-parser.ts';
import type { ResponseEvents } from './response-parser.ts';
import { requestHead } from './request-head.ts';
import type { UpstreamRequest } from './request-head.ts';

/**
 * One connection to a target, carrying one request at a time (no pipelining).
 *
 *            new socket
 *                │ dispatch(req)              connect_timeout ─► GW_ERR_UPSTREAM_CONNECT_TIMEOUT
 *                ▼
 *           CONNECTING ── 'connect' / 'secureConnect' ──┐
 *                                                       ▼
 *     ┌─────► IDLE ──── dispatch(req) ──────────────► BUSY: head (+ body) written, response parsed
 *     │        │  upstream closes, sends a byte,       │   read_timeout from the request's end,
 *     │        │  or idles (IDLE_TIMEOUT): closed,     │   paused while the client is slow
 *     │        ▼  out of the pool                      │
 *     │     CLOSED ◄── error, reset, timeout, abort, ──┤
 *     │              bad framing, not reusable         │
 *     └──── complete, framed, keep-alive, nothing ─────┤
 *           extra, body all sent, pool has room        └── 101 to an upgrade: the socket is handed over
 *
 * Every way out of BUSY calls the handler once: onEnd, onError or onUpgrade.
 */
export interface UpstreamHandler {
  /** The final response head; names lower-cased. */
  onHead(status: number, headers: string[]): void;
  /** A piece of the body; false asks for a pause (resume() resumes). */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  /** The connection failed, or abort() was called: `err.code` says which (a Node code such as ECONNRESET, or a GW_ERR_ one). */
  onError(err: Error & { code?: string }): void;
  /** A 101 to an upgrade request: the socket is the handler's now (bytes read past the head are unshifted onto it). */
  onUpgrade(headers: string[], socket: Socket): void;
  /** A piece of `bytes` of the streamed body is about to go out: abort() from here keeps it back. */
  onBodySent(bytes: number): void;
  /** The whole request went out. */
  onRequestSent(): void;
}

/** Where a connection goes when its response is done, or when it closes. */
export interface ConnectionOwner {
  /** A reusable connection, idle now: keep it or close it. */
  release(c: Connection): void;
  /** A connection that closed: forget it. */
  drop(c: Connection): void;
}

export interface ConnectionTimeouts {
  readonly connect: number;
  readonly read: number;
}

/** A failure the client names itself (the others are Node's: ECONNRESET, ECONNREFUSED, TLS codes). */
export class UpstreamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * How long an idle connection is kept, as undici (which this client replaced)
 * keeps it: 2 s less than the upstream says in `Keep-Alive: timeout=N` (at
 * most 10 minutes; not at all when that leaves nothing), else 4 s. Dropping
 * it before the upstream does makes a reuse that races the upstream's close
 * rare (a POST cannot be sent again).
 */
const IDLE_TIMEOUT = 4000;
const IDLE_MARGIN = 2000;
const IDLE_MAX = 600_000;

const idleTimeout = (hint: number): number => hint < 0 ? IDLE_TIMEOUT : Math.min(hint - IDLE_MARGIN, IDLE_MAX);

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;

export class Connection implements ResponseEvents {
  private readonly socket: Socket;
  private readonly owner: ConnectionOwner;
  private readonly timeouts: ConnectionTimeouts;
  /** Send `Connection: close`: this connection carries one request. */
  private readonly once: boolean;
  private readonly parser: ResponseParser;
  private state = CONNECTING;
  private handler: UpstreamHandler | null = null;
  private request: UpstreamRequest | null = null;
  /** The client's body while it streams upstream. */
  private body: Readable | null = null;
  private chunked = false;
  /** The whole request went out (a response before then leaves the connection unusable). */
  private sent = false;
  private paused = false;
  private upgradeHeaders: string[] | null = null;
  /**
   * The final head and the body pieces parsed from the same read, held until
   * the read's parse ends: framing that breaks in the read that brought the
   * head fails the request before the client got a byte (a 502), rather than
   * after a head that could only be followed by a cut.
   */
  private heldStatus = 0;
  private heldHeaders: string[] = [];
  private readonly heldBody: Buffer[] = [];

  constructor(owner: ConnectionOwner, socket: Socket, connected: 'connect' | 'secureConnect', timeouts: ConnectionTimeouts, once: boolean) {
    this.owner = owner;
    this.socket = socket;
    this.timeouts = timeouts;
    this.once = once;
    this.parser = new ResponseParser(this);
    socket.setTimeout(timeouts.connect);
    socket.once(connected, this.onConnect);
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    socket.on('timeout', this.onSocketTimeout);
    socket.on('drain', this.onSocketDrain);
  }

  /** Sends `req` now, or once connected. */
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
    this.handler = handler;
    this.request = req;
    if (this.state === IDLE) {
      this.state = BUSY;
      this.send();
    }
  }

  pause(): void {
    if (this.state !== BUSY || this.paused) return;
    this.paused = true;
    this.socket.pause();
    // read_timeout measures the upstream, not a slow client (undici's body timeout did not run while paused either).
    if (this.sent) this.socket.setTimeout(0);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
    if (this.state === BUSY && this.sent) this.socket.setTimeout(this.timeouts.read);
  }

  /** Ends the request in flight: the socket is destroyed and the handler gets `reason` through onError. */
  abort(reason: Error): void {
    if (this.state === BUSY || this.state === CONNECTING) this.fail(reason);
  }

  /** Closes an idle connection. */
  close(): void {
    if (this.state === IDLE) {
      this.state = CLOSED;
      this.socket.destroy();
    }
  }

  // ResponseEvents, from the parser.

  onHead(status: number, headers: string[]): void {
    if (status === 101) this.upgradeHeaders = headers;
    else {
      this.heldStatus = status;
      this.heldHeaders = headers;
    }
  }

  onBody(chunk: Buffer): void {
    if (this.heldStatus !== 0) this.heldBody.push(chunk);
    else if (this.handler !== null && !this.handler.onData(chunk)) this.pause();
  }

  /** Hands what the read's parse held to the handler: the head, then the body pieces in order. */
  private releaseHeld(): void {
    const status = this.heldStatus;
    if (status === 0) return;
    this.heldStatus = 0;
    const body = this.heldBody;
    this.handler!.onHead(status, this.heldHeaders);
    for (let i = 0; i < body.length && this.handler !== null; i++) {
      if (!this.handler.onData(body[i]!)) this.pause();
    }
    body.length = 0;
  }

  private send(): void {
    const req = this.request!;
    this.request = null;
    this.sent = false;
    this.parser.start(req.method === 'HEAD', req.upgrade);
    const { head, chunked } = requestHead(req, this.once);
    const s = this.socket;
    const body = req.body;
    if (body === null) {
      s.write(head, 'latin1');
      this.requestSent();
    } else if (Buffer.isBuffer(body)) {
      s.cork();
      s.write(head, 'latin1');
      s.write(body);
      s.uncork();
      this.requestSent();
    } else {
      // Neither the connect nor the idle timeout runs while the body streams: send_timeout (the caller's) does.
      s.setTimeout(0);
      s.write(head, 'latin1');
      this.chunked = chunked;
      this.body = body;
      body.on('data', this.onBodyData);
      body.on('end', this.onBodyEnd);
      body.on('error', this.onBodyError);
    }
  }

  private requestSent(): void {
    this.sent = true;
    this.socket.setTimeout(this.paused ? 0 : this.timeouts.read);
    this.handler!.onRequestSent();
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    this.handler!.onBodySent(chunk.length);
    const body = this.body;
    if (body === null) return; // aborted from onBodySent
    const s = this.socket;
    let ok: boolean;
    if (this.chunked) {
      s.cork();
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write('\r\n', 'latin1');
      s.uncork();
    } else ok = s.write(chunk);
    if (!ok) body.pause();
  };

  private readonly onBodyEnd = (): void => {
    if (this.chunked) this.socket.write('0\r\n\r\n', 'latin1');
    this.detachBody();
    this.requestSent();
  };

  private readonly onBodyError = (err: Error): void => {
    this.fail(err);
  };

  private readonly onSocketDrain = (): void => {
    this.body?.resume();
  };

  /** Stops streaming the client's body; what is left of it is read away by the client's side (or closes with it). */
  private detachBody(): void {
    const body = this.body;
    if (body === null) return;
    this.body = null;
    body.off('data', this.onBodyData);
    body.off('end', this.onBodyEnd);
    body.off('error', this.onBodyError);
    body.resume();
  }

  private readonly onConnect = (): void => {
    if (this.state !== CONNECTING) return;
    this.state = BUSY;
    this.send();
  };

  private readonly onSocketData = (data: Buffer): void => {
    if (this.state !== BUSY) {
      // A response nobody asked for: the connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    let result;
    try {
      result = this.parser.execute(data);
      this.releaseHeld();
    } catch (err) {
      this.heldStatus = 0;
      this.heldBody.length = 0;
      this.fail(err as Error);
      return;
    }
    if (this.state !== BUSY) return; // aborted by the handler meanwhile
    if (result === COMPLETE) this.complete(this.parser.keepAlive && this.parser.offset === data.length && this.sent && idleTimeout(this.parser.keepAliveTimeout) > 0);
    else if (result === UPGRADE) this.upgrade(data.subarray(this.parser.offset));
  };

  private readonly onSocketEnd = (): void => {
    if (this.state === BUSY && this.parser.finish()) this.complete(false);
    else this.fail(new UpstreamError('GW_ERR_UPSTREAM_CLOSED', this.parser.idle ? 'upstream closed the connection before responding' : 'upstream closed the connection in the middle of the response'));
  };

  private readonly onSocketError = (err: Error): void => {
    this.fail(err);
  };

  private readonly onSocketClose = (): void => {
    this.fail(new UpstreamError('GW_ERR_UPSTREAM_CLOSED', 'upstream connection closed'));
  };

  private readonly onSocketTimeout = (): void => {
    if (this.state === CONNECTING) this.fail(new UpstreamError('GW_ERR_UPSTREAM_CONNECT_TIMEOUT', 'connecting to the upstream timed out'));
    else if (this.state === BUSY) {
      this.fail(this.parser.status === 0
        ? new UpstreamError('GW_ERR_UPSTREAM_HEADERS_TIMEOUT', 'the upstream sent nothing for read_timeout before its response head was complete')
        : new UpstreamError('GW_ERR_UPSTREAM_BODY_TIMEOUT', 'the upstream body stalled for read_timeout'));
    } else this.destroy(); // idle for IDLE_TIMEOUT
  };

  private complete(reusable: boolean): void {
    const handler = this.handler!;
    this.handler = null;
    this.detachBody();
    if (reusable && !this.once) {
      this.state = IDLE;
      this.socket.setTimeout(idleTimeout(this.parser.keepAliveTimeout));
      this.resume(); // a paused socket would not see the upstream's close while idle
      this.owner.release(this);
    } else this.destroy();
    handler.onEnd();
  }

  private upgrade(rest: Buffer): void {
    const handler = this.handler!;
    const s = this.socket;
    this.handler = null;
    this.state = CLOSED;
    this.detachBody();
    s.setTimeout(0);
    s.off('data', this.onSocketData);
    s.off('end', this.onSocketEnd);
    s.off('error', this.onSocketError);
    s.off('close', this.onSocketClose);
    s.off('timeout', this.onSocketTimeout);
    s.off('drain', this.onSocketDrain);
    // Paused until the new owner reads (pipe() resumes it); bytes that came with the head are read first.
    s.pause();
    if (rest.length > 0) s.unshift(rest);
    this.owner.drop(this);
    handler.onUpgrade(this.upgradeHeaders!, s);
  }

  /** The connection is done for: the request in flight (if any) fails with `err`. */
  private fail(err: Error): void {
    const handler = this.handler;
    this.handler = null;
    this.destroy();
    handler?.onError(err);
  }

  private destroy(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.request = null;
    this.detachBody();
    this.socket.destroy();
    this.owner.drop(this);
  }
}
