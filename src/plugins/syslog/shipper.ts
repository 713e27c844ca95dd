import type { Logger } from 'pino';
import { Ring } from './ring.ts';
import type { Transport } from './transport.ts';

/** One log entry waiting to be sent: formatted only when its batch goes out, off the request path. */
export interface Pending {
  readonly pri: number;
  /** ms since the epoch: when the request arrived. */
  readonly time: number;
  readonly entry: object;
}

export interface ShipperOptions {
  readonly queueSize: number;
  readonly batchSize: number;
  readonly flushMs: number;
  /** Turns an entry into one syslog message (RFC 5424 or 3164). */
  readonly format: (p: Pending) => string;
  readonly log: Logger;
  readonly now: () => number;
}

/** Drops are logged at most this often (with the count since the last line), however many there are. */
export const DROP_LOG_EVERY_MS = 10_000;

/**
 * Batches log entries to a syslog transport without ever making a request
 * wait: `enqueue` (the `log` phase) only pushes into a bounded ring; a timer,
 * or a full batch (via setImmediate), flushes. When the server is slow or gone
 * the ring fills and new entries are dropped and counted, so memory never
 * grows past `queueSize` entries plus the one batch the transport holds.
 */
export class Shipper {
  readonly queue: Ring<Pending>;
  /** Entries dropped since the last drop line. */
  dropped = 0;
  /** Entries dropped since start, for tests and the drop line. */
  droppedTotal = 0;
  private lastDropLog = -Infinity;
  private scheduled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly opts: ShipperOptions;
  private transport: Transport | null = null;
  readonly flush = (): void => this.flushNow();

  constructor(opts: ShipperOptions) {
    this.opts = opts;
    this.queue = new Ring(opts.queueSize);
    this.timer = setInterval(this.flush, opts.flushMs);
    this.timer.unref();
  }

  /** Set once: the transport calls `flush` back when it becomes writable. */
  attach(t: Transport): void {
    this.transport = t;
  }

  enqueue(p: Pending): void {
    if (!this.queue.push(p)) {
      this.dropped++;
      this.droppedTotal++;
      return;
    }
    if (this.queue.size >= this.opts.batchSize && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private flushNow(): void {
    this.scheduled = false;
    this.reportDrops();
    const t = this.transport!;
    while (this.queue.size > 0 && t.writable()) t.send(this.queue.take(this.opts.batchSize).map(this.opts.format));
  }

  private reportDrops(): void {
    if (this.dropped === 0) return;
    const now = this.opts.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.lastDropLog = now;
    this.opts.log.warn({ dropped: this.dropped, dropped_total: this.droppedTotal, queue_size: this.opts.queueSize }, 'syslog entries dropped: queue full');
    this.dropped = 0;
  }

  close(): void {
    clearInterval(this.timer);
    this.transport?.close();
  }
}
