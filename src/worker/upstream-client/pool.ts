import type { Connector } from '../../contracts/upstream-connect.ts';
import { Connection } from './connection.ts';
import type { ConnectionOwner, ConnectionTimeouts, UpstreamHandler } from './connection.ts';
import type { UpstreamRequest } from './request-head.ts';

export interface PoolOptions extends ConnectionTimeouts {
  /** Idle connections kept for reuse (nginx's upstream `keepalive`); 0 = each connection carries one request, with `Connection: close`. */
  readonly keepalive: number;
}

/**
 * The connections of one target. A request takes the idle connection used
 * last (its socket is the warmest, and the ones below it age out) or opens a
 * new one: requests never queue behind a limit, as with nginx, which caps
 * idle connections only.
 */
export class UpstreamPool implements ConnectionOwner {
  private readonly connector: Connector;
  private readonly connected: 'connect' | 'secureConnect';
  private readonly options: PoolOptions;
  private readonly idle: Connection[] = [];
  private closed = false;

  constructor(connector: Connector, connected: 'connect' | 'secureConnect', options: PoolOptions) {
    this.connector = connector;
    this.connected = connected;
    this.options = options;
  }

  /** Sends `req`; the handler hears of its outcome. Returns the connection, for pause/resume/abort. */
  request(req: UpstreamRequest, handler: UpstreamHandler): Connection {
    const c = this.idle.pop() ?? new Connection(this, this.connector(), this.connected, this.options, this.options.keepalive === 0);
    c.dispatch(req, handler);
    return c;
  }

  release(c: Connection): void {
    if (this.closed || this.idle.length >= this.options.keepalive) c.close();
    else this.idle.push(c);
  }

  drop(c: Connection): void {
    const i = this.idle.lastIndexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Closes the idle connections; one in use closes when its response is done. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.close();
  }
}
