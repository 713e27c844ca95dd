import type { Incoming } from '../http2-exchange.ts';

/** Why a plugin's `ctx.req.body()` failed: the gateway answers with this code, not the plugin. */
export type BodyFailureCode = 'GW_ERR_BODY_TOO_LARGE' | 'GW_ERR_CLIENT_TIMEOUT' | 'GW_ERR_CLIENT_GONE';

export class BodyReadError extends Error {
  readonly code: BodyFailureCode;
  constructor(code: BodyFailureCode) {
    super(code);
    this.name = 'BodyReadError';
    this.code = code;
  }
}

/** The gateway's limits on a buffered body, one object per conf. */
export interface BodyLimits {
  /** client_max_body_size (0 = none). */
  readonly maxBody: number;
  /** client_body_timeout: idle ms between two reads, as nginx's. */
  readonly idleMs: number;
}

export const EMPTY_BODY: Buffer = Buffer.alloc(0);

/**
 * Reads a request body into one Buffer, refusing it as soon as it goes over
 * `limit` (a declared Content-Length over it is refused before any read).
 * On a failure the stream is paused and left: the gateway answers with
 * `Connection: close`, so the rest of the body is never read.
 */
export function readBody(req: Incoming, limit: number, idleMs: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (limit > 0 && declared !== undefined && Number(declared) > limit) return Promise.reject(new BodyReadError('GW_ERR_BODY_TOO_LARGE'));
  if (req.complete && req.readableEnded) return Promise.resolve(EMPTY_BODY);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('timeout', onIdle);
      // The request's own (HTTP/2: its stream's; its socket's would be the whole session's idle timer).
      req.setTimeout(0);
    };
    const fail = (code: BodyFailureCode): void => {
      stop();
      req.pause();
      reject(new BodyReadError(code));
    };
    function onData(chunk: Buffer): void {
      size += chunk.length;
      if (limit > 0 && size > limit) fail('GW_ERR_BODY_TOO_LARGE');
      else chunks.push(chunk);
    }
    function onEnd(): void {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    }
    function onClose(): void {
      if (!req.complete) fail('GW_ERR_CLIENT_GONE');
    }
    function onIdle(): void {
      fail('GW_ERR_CLIENT_TIMEOUT');
    }
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
    // The listener on the request itself: HTTP/2's setTimeout(ms, cb) would put it on the stream, where off() above misses it.
    req.on('timeout', onIdle);
    req.setTimeout(idleMs);
  });
}
