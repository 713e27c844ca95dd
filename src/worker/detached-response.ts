import { Writable } from 'node:stream';

/**
 * The response of a request no client waits for (a plugin's
 * fetchInBackground): the part of a ServerResponse the response writer and
 * the proxy use, writing nowhere. It finishes, and emits 'close', like a
 * response whose client read it all, so backpressure and the close hooks
 * work unchanged.
 */
export class DetachedResponse extends Writable {
  headersSent = false;
  statusCode = 0;
  shouldKeepAlive = false;

  /** The head goes nowhere: only its status is kept, for the hooks that read it. */
  writeHead(status: number, _headers?: readonly string[]): this {
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }

  /** Nothing is sent: a header set ahead of writeHead (static-files' Allow) goes with the rest. */
  setHeader(): this {
    return this;
  }

  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    callback();
  }
}
