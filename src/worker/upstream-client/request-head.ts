import type { Readable } from 'node:stream';

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly target: string;
  /** Flat [name, value, …], hop-by-hop fields already gone (upstream-headers.ts): written as they are. */
  readonly headers: readonly string[];
  /** null: no body; a Buffer; or the client's body stream (chunked unless `headers` has its Content-Length). */
  readonly body: Buffer | Readable | null;
  /** A WebSocket handshake: a 101 may answer it, and the socket is handed over. */
  readonly upgrade: boolean;
}

/** RFC 9110 §8.6: methods whose requests are expected to carry content get `Content-Length: 0` when they have none (as undici did). */
const EXPECTS_BODY: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The request head as one latin1 string, written in one go: the request
 * line, the gateway's field list, then the fields only the client knows.
 * Returns whether a streamed body must be chunked (it has no Content-Length).
 *
 * `close`: the connection carries this request only (the extra try after a
 * reset). A keep-alive connection sends no Connection field: persistence is
 * HTTP/1.1's default.
 */
export function requestHead(req: UpstreamRequest, close: boolean): { head: string; chunked: boolean } {
  let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
  let length = false;
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = true;
    head += `${name}: ${h[i + 1]!}\r\n`;
  }
  let chunked = false;
  if (req.body === null) {
    if (!length && EXPECTS_BODY.has(req.method)) head += 'content-length: 0\r\n';
  } else if (!length) {
    if (Buffer.isBuffer(req.body)) head += `content-length: ${req.body.length}\r\n`;
    else {
      head += 'transfer-encoding: chunked\r\n';
      chunked = true;
    }
  }
  if (req.upgrade) head += 'connection: upgrade\r\nupgrade: websocket\r\n';
  else if (close) head += 'connection: close\r\n';
  return { head: `${head}\r\n`, chunked };
}
