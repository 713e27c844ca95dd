import { GatewayError } from '../plugins/pdk/errors.ts';
import { HeaderList } from '../plugins/pdk/headers.ts';
import { QueryArgs } from '../plugins/pdk/query.ts';
import type { MutableRequestHead } from '../plugins/pdk/types.ts';
import type { Incoming } from './http2-exchange.ts';
import { BodyReadError, readBody } from './pipeline/body.ts';
import { clientHeaders } from './upstream-headers.ts';
import type { BodyLimits } from './pipeline/body.ts';

/** An origin-form path: nothing that could end the request line or start a query or fragment. */
const ORIGIN_PATH = /^\/[^\x00-\x20\x7f?#]*$/;

/** The smaller non-zero limit (0 = none). */
export const smallestLimit = (a: number, b: number): number => (a === 0 ? b : b === 0 ? a : Math.min(a, b));

/**
 * The request as plugins see and change it, and as it goes upstream: the
 * client's header list (borrowed from Node's rawHeaders until a plugin changes
 * it), the path after `strip_path`, the query (parsed on first use), and the
 * body once a plugin reads it. Nothing here is copied unless a plugin asks.
 */
export class RequestView implements MutableRequestHead {
  readonly method: string;
  readonly headers: HeaderList;
  query: QueryArgs;
  bodyLimit: number;
  private upstreamPath: string;
  private readonly source: Incoming;
  /** The client's fields: `headers` copies them before its first change (HeaderList), so this list stays as sent. */
  private readonly sent: readonly string[];
  private readonly limits: BodyLimits;
  /** The read in progress or done; null while no plugin asked for the body, which then streams. */
  reading: Promise<Buffer> | null;
  /** The bytes to send upstream once a plugin read (or set) the body. */
  buffered: Buffer | null;
  /** Set when the read failed: the gateway answers with its code. */
  bodyFailure: BodyReadError | null;

  constructor(source: Incoming, limits: BodyLimits) {
    this.method = source.method!;
    // Before any plugin runs: the client's Connection tokens can then remove only the client's own headers.
    this.sent = clientHeaders(source.rawHeaders);
    this.headers = new HeaderList(this.sent);
    this.query = new QueryArgs('');
    this.bodyLimit = 0;
    this.upstreamPath = '/';
    this.source = source;
    this.limits = limits;
    this.reading = null;
    this.buffered = null;
    this.bodyFailure = null;
  }

  get clientHeaders(): HeaderList {
    return new HeaderList(this.sent);
  }

  /** Set by the gateway once the route is known: the path to send upstream and the client's query. */
  routeTo(path: string, query: string): void {
    this.upstreamPath = path;
    if (query !== '') this.query = new QueryArgs(query);
  }

  body(limit = 0): Promise<Buffer> {
    if (this.reading !== null) return this.reading;
    const max = smallestLimit(smallestLimit(this.limits.maxBody, this.bodyLimit), limit);
    this.reading = readBody(this.source, max, this.limits.idleMs).then(
      (buf) => (this.buffered ??= buf),
      (err: unknown) => {
        if (err instanceof BodyReadError) this.bodyFailure = err;
        throw err;
      },
    );
    return this.reading;
  }

  setBody(body: Uint8Array | string): void {
    this.buffered = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  get path(): string {
    return this.upstreamPath;
  }

  set path(p: string) {
    if (!ORIGIN_PATH.test(p)) throw new GatewayError('GW_ERR_BAD_PATH', `invalid upstream path ${JSON.stringify(p)}`);
    this.upstreamPath = p;
  }

  /** Path and query as sent upstream. */
  target(): string {
    const q = this.query.toString();
    return q === '' ? this.upstreamPath : `${this.upstreamPath}?${q}`;
  }
}
