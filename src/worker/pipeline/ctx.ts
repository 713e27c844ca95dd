import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../../plugins/pdk/errors.ts';
import { HeaderList } from '../../plugins/pdk/headers.ts';
import { QueryArgs } from '../../plugins/pdk/query.ts';
import type { CtxVars, Exit, Identity, LogCtx, MutableRequestHead, MutableResponseHead, RequestCtx, ResponseCtx, RouteInfo, Timing } from '../../plugins/pdk/types.ts';
import type { Exchange } from '../exchange.ts';
import { BodyReadError, EMPTY_BODY, readBody } from './body.ts';
import type { BodyLimits } from './body.ts';
import type { Chain } from './chain.ts';

/** An origin-form path: nothing that could end the request line or start a query or fragment. */
const ORIGIN_PATH = /^\/[^\x00-\x20\x7f?#]*$/;

class RequestView implements MutableRequestHead {
  readonly method: string;
  readonly query: QueryArgs;
  readonly headers: HeaderList;
  bodyLimit: number;
  private upstreamPath: string;
  /** Where body() reads from; null when there is no client stream (the in-process harness). */
  private readonly source: IncomingMessage | null;
  private readonly limits: BodyLimits;
  /** The read in progress or done; null while no plugin asked for the body, which then streams. */
  reading: Promise<Buffer> | null;
  /** The bytes to send upstream once a plugin read (or set) the body. */
  buffered: Buffer | null;
  /** Set when the read failed: the gateway answers with its code. */
  bodyFailure: BodyReadError | null;

  constructor(method: string, rawHeaders: readonly string[], path: string, query: string, source: IncomingMessage | null, limits: BodyLimits) {
    this.method = method;
    this.headers = new HeaderList(rawHeaders);
    this.query = new QueryArgs(query);
    this.bodyLimit = 0;
    this.upstreamPath = path;
    this.source = source;
    this.limits = limits;
    this.reading = null;
    this.buffered = null;
    this.bodyFailure = null;
  }

  body(limit = 0): Promise<Buffer> {
    if (this.reading !== null) return this.reading;
    if (this.source === null) {
      this.buffered = EMPTY_BODY;
      return (this.reading = Promise.resolve(EMPTY_BODY));
    }
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

class ResponseView implements MutableResponseHead {
  readonly status: number;
  readonly headers: HeaderList;
  constructor(status: number, headers: HeaderList) {
    this.status = status;
    this.headers = headers;
  }
}

class LogTiming implements Timing {
  readonly start: number;
  readonly total: number;
  readonly upstream: number | null;
  constructor(x: Exchange, end: number) {
    this.start = performance.timeOrigin + x.start;
    this.total = end - x.start;
    this.upstream = x.upstreamTime < 0 ? null : x.upstreamTime;
  }
}

/** The smaller non-zero limit (0 = none). */
export const smallestLimit = (a: number, b: number): number => (a === 0 ? b : b === 0 ? a : Math.min(a, b));

const NO_HEADERS: readonly string[] = [];
/** For contexts without a client stream: body() is empty and never fails. */
const NO_LIMITS: BodyLimits = Object.freeze({ maxBody: 0, idleMs: 0 });

/**
 * One request's plugin context, created only on routes that have plugins. A
 * single object serves every phase; the pdk types (RequestCtx, ResponseCtx,
 * LogCtx) decide what each phase may touch, so a wrong-phase call is a type
 * error rather than Kong's runtime check. Every field is set in the
 * constructor, so all contexts share one hidden class.
 */
export class PluginCtx implements RequestCtx, ResponseCtx, LogCtx {
  readonly chain: Chain;
  readonly x: Exchange;
  readonly client: string;
  readonly route: RouteInfo;
  readonly vars: CtxVars;
  readonly req: RequestView;
  /** Set when the response head is built (proxied, `return:`, exit) or, failing that, for the log phase. */
  res: ResponseView;
  timing: Timing;
  /** The Exit a plugin made with `ctx.exit()`, even if it did not return it. */
  exited: Exit | null;
  identity: Identity | null;

  constructor(chain: Chain, x: Exchange, rawHeaders: readonly string[], path: string, query: string, source: IncomingMessage | null = null, limits: BodyLimits = NO_LIMITS) {
    this.chain = chain;
    this.x = x;
    this.client = x.client;
    this.route = chain.route;
    this.vars = {};
    this.req = new RequestView(x.method, rawHeaders, path, query, source, limits);
    this.res = PENDING_RESPONSE;
    this.timing = PENDING_TIMING;
    this.exited = null;
    this.identity = null;
  }

  get requestId(): string | null {
    return this.x.requestId;
  }

  set requestId(id: string | null) {
    this.x.requestId = id;
  }

  get upstreamAddr(): string | null {
    return this.x.upstreamAddr;
  }

  exit(status: number, body?: Exit['body'], headers?: Exit['headers']): Exit {
    const e: Exit = { status, body, headers };
    this.exited = e;
    return e;
  }

  /** The response head plugins will see and may change; `list` is borrowed until changed. */
  startResponse(status: number, list: readonly string[]): HeaderList {
    const headers = new HeaderList(list);
    this.res = new ResponseView(status, headers);
    return headers;
  }

  finish(status: number, end: number): void {
    if (this.res === PENDING_RESPONSE) this.res = new ResponseView(status, new HeaderList(NO_HEADERS));
    this.timing = new LogTiming(this.x, end);
  }
}

/** Placeholders until the response exists, so the fields keep one type and the class one shape. */
const PENDING_RESPONSE = new ResponseView(0, new HeaderList(NO_HEADERS));
const PENDING_TIMING: Timing = Object.freeze({ start: 0, total: 0, upstream: null });
