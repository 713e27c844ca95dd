import { Server, maxHeaderSize } from 'node:http';
import type { ServerOptions, ServerResponse } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ConnectionHandlers } from './connection.ts';
import type { ClientResponse } from './exchange.ts';
import type { Gateway } from './gateway.ts';
import { H2Request, H2Response } from './http2-exchange.ts';
import type { Incoming } from './http2-exchange.ts';
import type { TlsSetup } from './tls-context.ts';

/**
 * A tls listener with `http2: true`: HTTP/2 and HTTP/1.1 on one port, chosen
 * by ALPN (`h2`, then `http/1.1`). HTTP/1.1 connections are Node's HTTP/1.1
 * server, with the same options and the same connection handlers as every
 * other listener (connection.ts); HTTP/2 streams go to the gateway as
 * requests of their own (http2-exchange.ts).
 *
 * Hardening, nginx's http2 defaults where it has them:
 * - 128 concurrent streams per connection (http2_max_concurrent_streams);
 * - a header list of the size HTTP/1.1 heads may have (Node's 16 KB
 *   maxHeaderSize, counted as the HTTP/1.1 head would be): the stream gets
 *   the gateway's 431 and nothing goes upstream. nghttp2 only advertises
 *   SETTINGS_MAX_HEADER_LIST_SIZE, it does not hold a client to it. As many
 *   fields as HTTP/1.1 allows (Node's 2,000), which Node enforces;
 * - "rapid reset" (CVE-2023-44487): a client that resets streams faster than
 *   {@link RESET_RATE} a second after a burst of {@link RESET_BURST} gets a
 *   GOAWAY and its connection is closed (nghttp2's limiter, tighter than its
 *   default burst of 1,000: a connection costs at most about two windows of
 *   streams the gateway served for nothing);
 * - an idle session (no frame either way for keepalive_timeout) gets a
 *   GOAWAY, its open streams finishing; idle again, it is cut. A stream's own
 *   waits are bounded as over HTTP/1.1: client_body_timeout between body
 *   reads, the upstream's timeouts, and Node resets a stream whose body is
 *   still coming once its response is done.
 *
 * Drain (a reload): the server's close() sends every session a GOAWAY and
 * lets open streams finish; worker_shutdown_timeout cuts what remains
 * ({@link Http2Listener.closeAllConnections}).
 */

/** nginx's http2_max_concurrent_streams default. */
export const MAX_CONCURRENT_STREAMS = 128;
/** Node's HTTP/1.1 maxHeadersCount default: the same requests pass over both protocols. */
const MAX_HEADER_FIELDS = 2000;
/** Resets a client may send at once before the rate applies: two windows of streams. */
export const RESET_BURST = 2 * MAX_CONCURRENT_STREAMS;
/** Resets a second a client may keep sending (nghttp2's default). */
export const RESET_RATE = 33;

/** What the worker does with a listener that Node's HTTP/2 server lacks in name (its HTTP/1.1 part has them). */
export type Http2Listener = Http2SecureServer & {
  keepAliveTimeout: number;
  closeIdleConnections(): void;
  closeAllConnections(): void;
};

export interface Http2ListenerEnv {
  /** The HTTP/1.1 server options every listener has. */
  readonly http1: ServerOptions;
  readonly tls: TlsSetup;
  readonly keepaliveMs: number;
  readonly gateway: Gateway;
  /** HTTP/1.1 connections' handlers, shared with the other listeners. */
  readonly requests: ConnectionHandlers;
  readonly log: Logger;
}

export function createHttp2Listener(env: Http2ListenerEnv): Http2Listener {
  const { gateway, requests, log } = env;
  const server = createSecureServer({
    ...env.http1,
    ...env.tls.options,
    allowHTTP1: true,
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: maxHeaderSize },
    maxHeaderListPairs: MAX_HEADER_FIELDS,
    streamResetBurst: RESET_BURST,
    streamResetRate: RESET_RATE,
  }) as Http2Listener;
  env.tls.attach(server);

  server.on('request', (req: Incoming, res: ClientResponse) => {
    if (!(req instanceof H2Request)) requests.onRequest(req, res as ServerResponse);
    else if (req.headBytes > maxHeaderSize) gateway.reject(req, res as H2Response, 'GW_ERR_HEADERS_TOO_LARGE');
    else gateway.handle(req, res);
  });
  // HTTP/2's CONNECT comes with a response, HTTP/1.1's with the socket: a 405 either way (connection.ts).
  server.on('connect', (req: Incoming, resOrSocket: H2Response | Socket) => {
    if (req instanceof H2Request) gateway.reject(req, resOrSocket as H2Response, 'GW_ERR_METHOD_NOT_ALLOWED');
    else requests.onConnect(req, resOrSocket as Socket);
  });
  // HTTP/1.1 parse errors, and TLS handshakes that failed (no HPE_ code: the socket is closed).
  server.on('clientError', requests.onClientError);

  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.setTimeout(env.keepaliveMs, () => {
      if (session.closed) session.destroy();
      else session.close();
    });
  });
  // A session nghttp2 ended (a reset flood, a protocol error): the client's doing, worth a line.
  server.on('sessionError', (err: NodeJS.ErrnoException, session: ServerHttp2Session) => {
    log.info({ code: err.code, message: err.message, client: session.socket?.remoteAddress }, 'HTTP/2 session closed on error');
  });

  server.closeAllConnections = () => {
    for (const s of sessions) s.destroy();
    // The HTTP/1.1 connections, which Node's HTTP/1.1 server code tracks on this server too.
    Server.prototype.closeAllConnections.call(server as unknown as Server);
  };
  return server;
}
