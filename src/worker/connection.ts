import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';

/**
 * One client connection's requests, in order (RFC 9112 §9.3.2), as nginx
 * serves them: a pipelined request is served only once the response before it
 * is complete, and only if that response left the connection open.
 *
 * Node parses every pipelined request as it arrives and emits 'request' for
 * each at once, queueing their responses behind the first. Served as they are
 * emitted, a request after one the gateway refused with `Connection: close`
 * would still reach the upstream, its response then thrown away. So a request
 * whose response is queued waits: Node hands the connection to that response
 * ('socket') when the previous one finished on a connection that stays open,
 * and never when the previous one closed it, so the request is then never
 * served at all.
 *
 * A request Node cannot parse arrives as 'clientError' with a socket and no
 * response. Node's own answer is written at once, ahead of the responses still
 * owed to the requests before it (whose upstream calls already ran). Here it is
 * written after them, as a response of its own: a request and a response made
 * for it go through the gateway's `reject` (global plugins, the response
 * writer, the access log and the stats), and the connection is closed.
 *
 *   'request'      ─► serve now, or when the response before it is done
 *   'upgrade'      ─► a WebSocket handshake (gateway.upgrades): served in its turn, on a response of our own
 *   'clientError'  ─► in the body of a request still waiting: that request is answered with it in its turn
 *                  ─► in the body of a request being or already answered: the connection is cut
 *                  ─► otherwise: once every response owed is done, answer it and close
 */

export interface RequestHandlers {
  /** Serves a request (gateway.handle). */
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** Answers `code` to a request that must not be served, and closes the connection (gateway.reject). */
  reject(req: IncomingMessage, res: ServerResponse, code: GatewayErrorCode): void;
  /** Serves a WebSocket handshake, `head` the bytes behind it (gateway.upgrade). */
  upgrade(req: IncomingMessage, res: ServerResponse, head: Buffer): void;
  /** A request being proxied sent a body its parser refused: true when it will still be answered `code` (proxy.refuseBody). */
  refuseBody(res: ServerResponse, code: 'GW_ERR_BAD_REQUEST'): boolean;
}

export interface ConnectionHandlers {
  /** The server's 'request' listener. */
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  /** The server's 'clientError' listener. */
  onClientError(err: NodeJS.ErrnoException, socket: Socket): void;
  /** The server's 'connect' listener: CONNECT is never proxied (Traefik CVE-2026-71324), it is a 405. */
  onConnect(req: IncomingMessage, socket: Socket): void;
  /** The server's 'upgrade' listener. */
  onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
}

const kLatest = Symbol('sluice.latestResponse');
const kFailed = Symbol('sluice.clientError');
const kBroken = Symbol('sluice.brokenBody');

type Connection = Socket & { [kLatest]?: ServerResponse; [kFailed]?: true };
type Received = IncomingMessage & { [kBroken]?: GatewayErrorCode };

/** Node's statuses for its parse and timeout errors (lib/_http_server.js socketOnError), as catalogue codes. */
function answerFor(code: string | undefined): GatewayErrorCode | null {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'GW_ERR_HEADERS_TOO_LARGE';
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 'GW_ERR_BODY_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'GW_ERR_CLIENT_TIMEOUT';
    default:
      // Any other parser error is a bad request; a socket error (ECONNRESET, EPIPE) has nobody to answer.
      return code?.startsWith('HPE_') === true ? 'GW_ERR_BAD_REQUEST' : null;
  }
}

/** Nothing of the request could be read: the access log shows `-`, as nginx shows an empty $request_method. */
const UNKNOWN = '-';

/** After a 101 the connection is a WebSocket tunnel's (websocket.ts); after anything else it is done. */
function onAnswered(this: ServerResponse): void {
  if (this.statusCode !== 101) this.socket?.destroySoon();
}

/** Node drops its own error listener from a socket it hands over (CONNECT, upgrade): a reset then must not be an uncaught error. */
function onHandedOverError(this: Socket): void {
  this.destroy();
}

/** A response of our own on a socket Node no longer parses: the connection's last. */
function lastResponse(socket: Socket, req: IncomingMessage): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  // Node's server closes after a last response only for the responses it made itself.
  res.once('finish', onAnswered);
  return res;
}

function unparsed(socket: Socket): IncomingMessage {
  const req = new IncomingMessage(socket);
  req.method = UNKNOWN;
  req.url = UNKNOWN;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.complete = true;
  req.push(null);
  return req;
}

/** After the response still owed on the connection, if any. */
function afterLatest(socket: Socket, then: () => void): void {
  const latest = (socket as Connection)[kLatest];
  if (latest === undefined || latest.writableFinished) then();
  else latest.once('finish', then);
}

export function createConnectionHandlers(h: RequestHandlers, log: Logger): ConnectionHandlers {
  /** The request's turn has come: its response owns the connection. */
  const turn = (req: Received, res: ServerResponse): void => {
    const broken = req[kBroken];
    if (broken === undefined) h.serve(req, res);
    else h.reject(req, res, broken);
  };

  /**
   * An answer, once the responses before it are done, for bytes that never
   * became a request (`received` undefined) or for a request Node hands over
   * with the socket instead of a response (CONNECT).
   */
  const answer = (socket: Socket, code: GatewayErrorCode, received?: IncomingMessage): void => {
    // The response before it closed the connection: nothing more may be said on it.
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const req = received ?? unparsed(socket);
    h.reject(req, lastResponse(socket, req), code);
  };

  return {
    onRequest(req, res) {
      const socket = req.socket as Connection;
      socket[kLatest] = res;
      if (res.socket !== null) h.serve(req, res);
      else res.once('socket', () => turn(req, res));
    },

    onClientError(err, socket) {
      const conn = socket as Connection;
      // A parser in error fails again on every later read: one answer per connection.
      if (conn[kFailed] === true) return;
      conn[kFailed] = true;
      const code = answerFor(err.code);
      if (code === null || !socket.writable) {
        socket.destroy();
        return;
      }
      log.info({ code: err.code, answer: code }, 'client sent an invalid request');
      const latest = conn[kLatest];
      if (latest !== undefined && !latest.req.complete) {
        // The bad bytes are in the body of a request already received. Waiting for its turn: it is
        // answered with the error then. Being proxied with no answer begun: the proxy gives up its
        // upstream request and answers it. Otherwise (answered, or its response begun) nothing more
        // can be said: the connection is cut as Node does.
        if (latest.socket === null && !latest.writableFinished) (latest.req as Received)[kBroken] = code;
        else if (code !== 'GW_ERR_BAD_REQUEST' || !h.refuseBody(latest, code)) socket.destroy();
        return;
      }
      afterLatest(socket, () => answer(socket, code));
    },

    onConnect(req, socket) {
      // Node has stopped parsing this connection: the 405 is its last response.
      socket.on('error', onHandedOverError);
      req.complete = true;
      afterLatest(socket, () => answer(socket, 'GW_ERR_METHOD_NOT_ALLOWED', req));
    },

    onUpgrade(req, socket, head) {
      // Node has stopped parsing this connection too: the handshake's answer is its last response, or a 101 and the tunnel.
      socket.on('error', onHandedOverError);
      afterLatest(socket, () => {
        if (!socket.writable) socket.destroy();
        else h.upgrade(req, lastResponse(socket, req), head);
      });
    },
  };
}
