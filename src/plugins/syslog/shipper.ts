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
  /** `dispose` gives up on a transport that makes no progress (connects, drains, sends) for this long. */
  readonly stallMs: number;
}

/** Drops are logged at most this often (with the count since the last line), however many there are. */
export const DROP_LOG_EVERY_MS = 10_000;

/**
 * How long `dispose` waits for a transport that neither takes a batch nor
 * fails: a connect to a host that never answers, a server that stopped
 * reading. A server that is merely slow makes progress and gets the
 * worker's whole `worker_shutdown_timeout`.
 */
export const DISPOSE_STALL_MS = 2_000;

/**
 * Batches log entries to a syslog transport without ever making a request
 * wait: `enqueue` (the `log` phase) only pushes into a bounded ring; a timer,
 * or a full batch (via setImmediate), flushes. When the server is slow or gone
 * the ring fills and new entries are dropped and counted, so memory never
 * grows past `queueSize` entries plus the one batch the transport holds.
 * `dispose` sends what is still queued before the worker exits.
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
  private closed = false;
  /** Set while `dispose` waits for the transport's next change. */
  private wake: (() => void) | null = null;
  readonly flush = (): void => {
    this.flushNow();
    this.wake?.();
  };

  constructor(opts: ShipperOptions) {
    this.opts = opts;
    this.queue = new Ring(opts.queueSize);
    this.timer = setInterval(this.flush, opts.flushMs);
    this.timer.unref();
  }

  /** Set once: the transport calls `flush` back when it may have become writable. */
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
    if (this.closed) return;
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

  /**
   * The worker is exiting: sends every queued entry, then ends the transport
   * gracefully (TCP FIN once the server has read it all; the lines handed to
   * the worker's logger, which the plugin's dispose ends). Gives up when the transport fails (refused, lost) or stalls for
   * `stallMs`: what is left is counted as dropped and logged, and the
   * transport is closed, so an unreachable server never holds the worker.
   */
  async dispose(): Promise<void> {
    clearInterval(this.timer);
    const t = this.transport!;
    this.flushNow();
    // Each change of the transport flushes (see `flush`): wait for them until the queue is empty.
    while (this.queue.size > 0 && !t.down()) {
      if (!(await this.changed())) break;
    }
    const lost = this.queue.take(this.queue.size).length;
    if (lost > 0 || this.dropped > 0) {
      this.droppedTotal += lost;
      this.opts.log.warn({ dropped: this.dropped + lost, dropped_total: this.droppedTotal }, 'syslog entries dropped at shutdown: server unreachable');
      this.dropped = 0;
    }
    this.closed = true;
    if (!(await this.within(t.end()))) t.close();
  }

  /** Stops at once; whatever is queued is lost. */
  close(): void {
    clearInterval(this.timer);
    this.closed = true;
    this.transport?.close();
  }

  /** true at the transport's next change, false after `stallMs` without one. */
  private changed(): Promise<boolean> {
    return this.within(new Promise<void>((resolve) => { this.wake = resolve; })).finally(() => { this.wake = null; });
  }

  private within(p: Promise<void>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const stall = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, this.opts.stallMs, false); });
    return Promise.race([p.then(() => true), stall]).finally(() => clearTimeout(timer));
  }
}
