import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse, constants } from 'node:http2';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { ReadableOptions } from 'node:stream';

/**
 * An HTTP/2 request and its response (Node's compatibility API, which the
 * server builds from these classes), shaped so that the gateway serves them
 * as it serves HTTP/1.1: the same guard, routing, plugins, proxy and response
 * writer, with the protocol's differences kept here.
 *
 * - The request's head is the one HTTP/1.1 would have carried
 *   ({@link http1Head}): Host from `:authority`, no pseudo-headers, cookie
 *   crumbs joined, a body without Content-Length announced as chunked. So
 *   routing reads Host, plugins see no `:path`, and nothing starting with `:`
 *   can reach an upstream.
 * - The response drops the connection-specific headers HTTP/2 forbids (RFC
 *   9113 §8.2.2: Node throws on them, after the stream has begun), and a
 *   "close the connection" (`shouldKeepAlive = false`) means nothing: the
 *   response ends its stream only, and Node resets a stream whose request
 *   body is still coming once the response is done (RFC 9113 §8.1).
 */

/** Request, response or both use these: the gateway's two protocols. */
export type Incoming = IncomingMessage | H2Request;

/** RFC 9113 §8.2.2 connection-specific fields: a response carrying one is malformed (`te` is allowed only as `trailers`, never in a response). */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te',
]);

/**
 * The flat header list of an HTTP/2 request as an HTTP/1.1 request would
 * have it. `:authority` becomes the Host, first; a Host the client sent
 * besides is kept only when it names another authority, which the request
 * guard then refuses as a second Host (RFC 9113 §8.3.1: such a request is
 * malformed). Cookie crumbs become one Cookie (RFC 9113 §8.2.3), as HTTP/1.1
 * upstreams expect. `chunked`: the request has a body no Content-Length
 * announces (its HEADERS did not end the stream), which HTTP/1.1 frames as a
 * chunked body: the gateway then limits and forwards it as one.
 */
export function http1Head(raw: readonly string[], chunked: boolean): string[] {
  let authority: string | undefined;
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === ':authority') authority = raw[i + 1]!;
  }
  const out: string[] = [];
  if (authority !== undefined) out.push('host', authority);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (name === 'host') {
      if (authority === undefined || value.toLowerCase() !== authority.toLowerCase()) out.push(name, value);
    } else if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    } else out.push(name, value);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  if (chunked) out.push('transfer-encoding', 'chunked');
  return out;
}

const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = constants;

const kRequest = Symbol('sluice.h2Request');

/** See H2Request.abortBody. */
const ignoreAbort = (): void => {};
type Carrier = ServerHttp2Stream & { [kRequest]?: H2Request };

function onStreamEnd(this: Carrier): void {
  const req = this[kRequest];
  if (req !== undefined) req.bodyEnded = true;
}

/**
 * Ahead of Node's own listener, which ends the request body as if it were
 * whole. After a reset Node emits no 'end' of its own on the stream, so
 * `bodyEnded` then says exactly whether the client finished its body.
 */
function onStreamClose(this: Carrier): void {
  const req = this[kRequest];
  if (req !== undefined && this.rstCode !== NGHTTP2_NO_ERROR && !req.bodyEnded) req.abortBody();
}

export class H2Request extends Http2ServerRequest {
  /** The client ended the stream (END_STREAM): the body is whole. */
  bodyEnded: boolean;
  /** The header list's size as an HTTP/1.1 head would have it (`name: value` and CRLF per field), against maxHeaderSize. */
  readonly headBytes: number;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: ReadableOptions, rawHeaders: readonly string[]) {
    const chunked = !stream.endAfterHeaders && headers['content-length'] === undefined;
    super(stream, headers, options, http1Head(rawHeaders, chunked));
    // The parsed headers too (routing reads Host; the gateway reads the framing): the pseudo-headers stay, Node's getters read them.
    const authority = headers[':authority'];
    if (authority !== undefined) headers.host = authority;
    if (chunked) headers['transfer-encoding'] = 'chunked';
    this.bodyEnded = stream.endAfterHeaders;
    let bytes = 0;
    for (let i = 0; i < rawHeaders.length; i += 2) bytes += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + 4;
    this.headBytes = bytes;
    if (!this.bodyEnded) {
      (stream as Carrier)[kRequest] = this;
      stream.once('end', onStreamEnd);
      stream.prependOnceListener('close', onStreamClose);
    }
  }

  /**
   * A body that will never be whole (the stream was reset, or the gateway
   * gave up on it) fails as HTTP/1.1's does when its connection goes: Node's
   * compat layer would end it as if complete, and a chunked body would reach
   * the upstream cut short yet whole-looking. The error reaches whoever reads
   * the body; it is emitted a tick later, when the upstream client may have
   * let go of the body already (its request ended), so a listener of our own
   * keeps an error nobody hears from crashing the worker.
   */
  abortBody(): void {
    if (this.destroyed) return;
    this.on('error', ignoreAbort);
    this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  }
}

export class H2Response extends Http2ServerResponse<H2Request> {
  /** Body bytes written: the access log's `bytes` (the frames and compressed headers are the connection's, shared by its streams). */
  bodyBytes = 0;

  /** HTTP/2 ends streams, not connections: see the file's comment. Set by the response writer; nothing reads it. */
  get shouldKeepAlive(): boolean {
    return true;
  }

  set shouldKeepAlive(_keep: boolean) {}

  override writeHead(status: number, a?: string | OutgoingHttpHeaders | readonly string[], b?: OutgoingHttpHeaders | readonly string[]): this {
    const headers = typeof a === 'string' ? b : a;
    return super.writeHead(status, Array.isArray(headers) ? http2Fields(headers as readonly string[]) : headers);
  }

  override write(chunk: string | Uint8Array, encoding?: BufferEncoding | ((err: Error) => void), cb?: (err: Error) => void): boolean {
    this.bodyBytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  static {
    // Node's compat response has no `destroyed` (its types say it is a Writable); the writer asks whether the client is gone.
    Object.defineProperty(H2Response.prototype, 'destroyed', {
      get(this: H2Response) {
        return this.stream.destroyed;
      },
    });
    // Node's is the stream's, which a reset finishes too (it ends the stream's writable side): the proxy
    // would take a client's RST_STREAM for a response delivered, and never abort its upstream request.
    Object.defineProperty(H2Response.prototype, 'writableFinished', {
      get(this: H2Response) {
        const stream = this.stream;
        return stream.writableFinished && (stream.rstCode === undefined || stream.rstCode === NGHTTP2_NO_ERROR);
      },
    });
  }
}

/** A flat list without the fields HTTP/2 forbids; the list itself when it has none (the usual response). */
export function http2Fields(list: readonly string[]): readonly string[] {
  let i = 0;
  while (i < list.length && !CONNECTION_SPECIFIC.has(list[i]!.toLowerCase())) i += 2;
  if (i >= list.length) return list;
  const out = list.slice(0, i);
  for (; i < list.length; i += 2) {
    if (!CONNECTION_SPECIFIC.has(list[i]!.toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  return out;
}

/**
 * Ends what carries a request whose body stopped coming, once its response
 * is written: an HTTP/1.1 connection, or only the HTTP/2 stream (its session
 * serves the other streams on). A response still being written is cut
 * (RST_STREAM INTERNAL_ERROR), so the client cannot take it for complete.
 */
export function closeAfterResponse(req: Incoming): void {
  if (req instanceof H2Request) {
    // First: closing a stream with NO_ERROR, Node ends its body as if whole, and a proxied one would go upstream cut short.
    req.abortBody();
    const stream = req.stream;
    stream.close(stream.writableEnded ? NGHTTP2_NO_ERROR : NGHTTP2_INTERNAL_ERROR);
  } else req.socket.destroySoon();
}
