import { isHeaderName, isHeaderValue, listsToken } from '../../plugins/pdk/headers.ts';

/**
 * A strict, incremental HTTP/1.1 response parser for the upstream client
 * (RFC 9112). Strict because the gateway forwards what it parses: a response
 * whose framing two parsers could read differently is refused (502), never
 * guessed at, and the connection is not reused after it.
 *
 * Refused: a status line that is not `HTTP/1.0|1.1 NNN reason`, a head over
 * {@link MAX_HEAD} bytes or {@link MAX_HEADERS} fields, a line not ended by
 * CRLF, a field name that is not a token, whitespace before the colon,
 * obs-fold (a line starting with SP/HTAB), a control character in a value, a
 * second Content-Length (even an equal one) or a value that is not digits,
 * Transfer-Encoding other than one `chunked`, Transfer-Encoding with
 * Content-Length, a bad chunk-size line or chunk extension, a chunk not
 * followed by CRLF, bad trailer fields, a 101 nobody asked for.
 *
 * Framing (RFC 9112 §6.3): no body for a HEAD request, 1xx, 204 and 304;
 * else chunked, else Content-Length, else the body runs to the close (and the
 * connection is not reused). 1xx other than an expected 101 are interim
 * (100 Continue, 103 Early Hints): skipped, and the next head is read.
 *
 * Names come out lower-cased (the form the response writer and HTTP/2 take),
 * values with surrounding whitespace trimmed; both latin1, as Node's own parser
 * gives them.
 */

/** Bytes of a head (status line and fields) or of a chunked body's trailers (Node's default --max-http-header-size). */
export const MAX_HEAD = 16 * 1024;
/** Fields in a head. */
const MAX_HEADERS = 256;
/** A chunk-size line with its extensions. */
const MAX_CHUNK_LINE = 4096;

/** What execute() reached. */
export const NEED_MORE = 0;
/** The response is complete; `offset` bytes of the last buffer were its own (more would be bytes nobody asked for). */
export const COMPLETE = 1;
/** The 101 of an upgrade: `offset` bytes of the last buffer were the head; the rest belongs to the new protocol. */
export const UPGRADE = 2;
export type ExecuteResult = typeof NEED_MORE | typeof COMPLETE | typeof UPGRADE;

export interface ResponseEvents {
  /** The final head (status >= 200, or the 101 of an upgrade). `headers` is flat: [name, value, …]. */
  onHead(status: number, headers: string[]): void;
  /** A piece of the body (a view into the socket's buffer: copy it to keep it). */
  onBody(chunk: Buffer): void;
}

/** Bad framing: the upstream's response cannot be trusted, nor the connection it came on. */
class ResponseParseError extends Error {
  readonly code = 'GW_ERR_UPSTREAM_BAD_RESPONSE';
}

const fail = (reason: string): never => {
  throw new ResponseParseError(reason);
};

// States.
const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_END = 4;
const TRAILERS = 5;
const BODY_CLOSE = 6;
const DONE = 7;

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LF = 0x0a;

const STATUS_LINE = /^HTTP\/1\.([01]) ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[\s,])timeout=([0-9]{1,9})(?:$|[\s,])/i;
// RFC 9112 §7.1.1 without BWS: chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] ).
const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]+)(;.*)?$/;
const CHUNK_EXTENSIONS = /^(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:=(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*$/;

export class ResponseParser {
  private readonly events: ResponseEvents;
  private state: number = DONE;
  /** A head, chunk-size line or trailer section that spans reads. */
  private partial: Buffer | null = null;
  /** Bytes left in the current Content-Length body or chunk; CRLF bytes left after a chunk. */
  private remaining = 0;
  private noBody = false;
  private upgradeExpected = false;
  /** After COMPLETE: may the connection carry another request (HTTP/1.1, no `Connection: close`, framed body). */
  keepAlive = false;
  /** After COMPLETE or UPGRADE: how many bytes of the last buffer execute() used. */
  offset = 0;
  /** The response's status once its final head is parsed (0 before): what tells a headers timeout from a body timeout. */
  status = 0;
  /** The `timeout=` of the response's Keep-Alive field, in ms: how long the upstream keeps the connection idle; -1 if it did not say. */
  keepAliveTimeout = -1;

  constructor(events: ResponseEvents) {
    this.events = events;
  }

  /** Gets ready for the response to a request. `head`: a HEAD request (no body); `upgrade`: a 101 may answer it. */
  start(head: boolean, upgrade: boolean): void {
    this.state = HEAD;
    this.partial = null;
    this.noBody = head;
    this.upgradeExpected = upgrade;
    this.keepAlive = false;
    this.status = 0;
    this.offset = 0;
    this.keepAliveTimeout = -1;
  }

  /** Nothing read yet for this response: a close now is a connection that died before answering. */
  get idle(): boolean {
    return this.state === HEAD && this.partial === null;
  }

  /** Parses the next bytes from the socket. Throws ResponseParseError on bad framing. */
  execute(data: Buffer): ExecuteResult {
    let at = 0;
    const end = data.length;
    while (at < end) {
      const state: number = this.state;
      switch (state) {
        case HEAD: {
          const next = this.head(data, at);
          if (next < 0) return NEED_MORE;
          at = next;
          if (this.state === DONE) return this.complete(at);
          if (this.status === 101) {
            this.offset = at;
            return UPGRADE;
          }
          break;
        }
        case BODY_LENGTH: {
          const n = Math.min(this.remaining, end - at);
          this.events.onBody(at === 0 && n === end ? data : data.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) return this.complete(at);
          break;
        }
        case BODY_CLOSE:
          this.events.onBody(at === 0 ? data : data.subarray(at));
          return NEED_MORE;
        case CHUNK_SIZE: {
          const line = this.line(data, at, MAX_CHUNK_LINE);
          if (line === null) return NEED_MORE;
          at = this.offset;
          const m = CHUNK_SIZE_LINE.exec(line) ?? fail('bad chunk-size line');
          // Extensions are dropped (nobody forwards them), but one that breaks the grammar says the framing is broken.
          if (m[2] !== undefined && !CHUNK_EXTENSIONS.test(m[2])) fail('bad chunk extension');
          const hex = m[1]!.replace(/^0+(?=.)/, '');
          if (hex.length > 13) fail('chunk size too large');
          const size = parseInt(hex, 16);
          if (size === 0) {
            this.state = TRAILERS;
            this.remaining = 0; // trailer bytes so far
          } else {
            this.state = CHUNK_DATA;
            this.remaining = size;
          }
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.remaining, end - at);
          this.events.onBody(data.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = CHUNK_END;
            this.remaining = 2;
          }
          break;
        }
        case CHUNK_END: {
          // The CRLF after a chunk's data, which may arrive split.
          if (data[at] !== (this.remaining === 2 ? 0x0d : LF)) fail('chunk data not followed by CRLF');
          at++;
          if (--this.remaining === 0) this.state = CHUNK_SIZE;
          break;
        }
        case TRAILERS: {
          const line = this.line(data, at, MAX_HEAD - this.remaining);
          if (line === null) return NEED_MORE;
          this.remaining += this.offset - at;
          at = this.offset;
          if (line.length === 0) {
            this.state = DONE;
            return this.complete(at);
          }
          // Trailers are checked as fields are, and dropped: they are not forwarded (nginx does not either).
          field(line, 0, line.length);
          break;
        }
        default:
          fail('bytes after the response');
      }
    }
    return NEED_MORE;
  }

  /** The upstream closed the connection: the end of a close-delimited body, or a response cut short. */
  finish(): boolean {
    if (this.state !== BODY_CLOSE) return false;
    this.state = DONE;
    return true;
  }

  private complete(at: number): ExecuteResult {
    this.state = DONE;
    this.offset = at;
    return COMPLETE;
  }

  /**
   * One CRLF-ended line from `at` (joined with what an earlier read left),
   * without its CRLF; null if it is not all here. Sets `offset` past it.
   */
  private line(data: Buffer, at: number, max: number): string | null {
    const lf = data.indexOf(LF, at);
    if (lf < 0) {
      const have = (this.partial?.length ?? 0) + data.length - at;
      if (have > max) fail('line too long');
      this.partial = this.partial === null ? Buffer.from(data.subarray(at)) : Buffer.concat([this.partial, data.subarray(at)]);
      return null;
    }
    let text: string;
    if (this.partial === null) text = data.toString('latin1', at, lf);
    else {
      text = this.partial.toString('latin1') + data.toString('latin1', at, lf);
      this.partial = null;
    }
    if (text.length > max) fail('line too long');
    if (text.charCodeAt(text.length - 1) !== 0x0d) fail('line not ended by CRLF');
    this.offset = lf + 1;
    return text.slice(0, -1);
  }

  /** Parses a head if it is all here; returns the offset past it, or -1. */
  private head(data: Buffer, at: number): number {
    let buf = data;
    let from = at;
    let carried = 0;
    if (this.partial !== null) {
      carried = this.partial.length;
      buf = Buffer.concat([this.partial, data.subarray(at)]);
      from = 0;
    }
    // Search from just before the new bytes: the CRLFCRLF may straddle the two reads.
    const end = buf.indexOf(CRLFCRLF, carried > 3 ? carried - 3 : from);
    if (end < 0) {
      if (buf.length - from > MAX_HEAD) fail('response head too large');
      this.partial = carried > 0 ? buf : Buffer.from(data.subarray(at));
      return -1;
    }
    if (end - from > MAX_HEAD) fail('response head too large');
    this.partial = null;
    this.parseHead(buf.toString('latin1', from, end));
    return carried > 0 ? at + end + 4 - carried : end + 4;
  }

  private parseHead(text: string): void {
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    const line = text.slice(0, eol);
    const m = STATUS_LINE.exec(line) ?? fail(badStatusLine(line));
    const status = Number(m[2]);
    if (status < 100) fail('status code below 100');
    let keepAlive = m[1] === '1';
    let length = -1;
    let chunked = false;
    let transferEncoding = false;
    const headers: string[] = [];
    let pos = eol + 2;
    while (pos < text.length) {
      eol = text.indexOf('\r\n', pos);
      if (eol < 0) eol = text.length;
      const lower = field(text, pos, eol);
      const value = lastValue;
      headers.push(lower, value);
      if (headers.length > MAX_HEADERS * 2) fail('too many header fields');
      if (lower === 'content-length') {
        if (length !== -1 || !CONTENT_LENGTH.test(value)) fail('bad or repeated Content-Length');
        length = Number(value);
      } else if (lower === 'transfer-encoding') {
        if (transferEncoding || value.toLowerCase() !== 'chunked') fail('Transfer-Encoding other than one chunked');
        transferEncoding = true;
        chunked = true;
      } else if (lower === 'connection') {
        if (listsToken(value, 'close')) keepAlive = false;
      } else if (lower === 'keep-alive') {
        const t = KEEP_ALIVE_TIMEOUT.exec(value);
        if (t !== null) this.keepAliveTimeout = Number(t[1]) * 1000;
      }
      pos = eol + 2;
    }
    if (chunked && length !== -1) fail('Transfer-Encoding with Content-Length');
    if (status < 200) {
      if (status === 101) {
        if (!this.upgradeExpected) fail('101 without an upgrade request');
        this.status = 101;
        this.events.onHead(101, headers);
      }
      return; // interim: the next head follows (state stays HEAD)
    }
    this.status = status;
    this.events.onHead(status, headers);
    if (this.noBody || status === 204 || status === 304 || (!chunked && length === 0)) {
      this.keepAlive = keepAlive;
      this.state = DONE;
    } else if (chunked) {
      this.keepAlive = keepAlive;
      this.state = CHUNK_SIZE;
    } else if (length > 0) {
      this.keepAlive = keepAlive;
      this.remaining = length;
      this.state = BODY_LENGTH;
    } else {
      this.keepAlive = false;
      this.state = BODY_CLOSE;
    }
  }
}

/** Why a status line failed, for the log (the error path only). */
function badStatusLine(line: string): string {
  if (/^HTTP\/[0-9]\.[0-9] /.test(line) && !/^HTTP\/1\.[01] /.test(line)) return 'HTTP version other than 1.0 and 1.1';
  if (/^HTTP\/1\.[01] [0-9]{3} /.test(line)) return 'control character in the reason phrase';
  return 'bad status line';
}

/** The value field() parsed last (a second return value without an allocation). */
let lastValue = '';

/** Parses the field line text[pos, eol): returns its lower-cased name, leaves its value in lastValue. */
function field(text: string, pos: number, eol: number): string {
  if (isOws(text.charCodeAt(pos))) fail('obs-fold (a field line starting with whitespace)');
  const colon = text.indexOf(':', pos);
  if (colon < 0 || colon >= eol) fail('header line without a colon');
  const name = text.slice(pos, colon);
  // An empty name and whitespace before the colon fail here.
  if (!isHeaderName(name)) fail('bad header name');
  let from = colon + 1;
  let to = eol;
  while (from < to && isOws(text.charCodeAt(from))) from++;
  while (to > from && isOws(text.charCodeAt(to - 1))) to--;
  const value = text.slice(from, to);
  if (!isHeaderValue(value)) fail('control character in a header value');
  lastValue = value;
  return name.toLowerCase();
}

const isOws = (c: number): boolean => c === 0x20 || c === 0x09;
