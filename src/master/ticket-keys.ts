import { randomFillSync } from 'node:crypto';
import { TICKET_KEY_BYTES } from '../contracts/tls.ts';

/**
 * TLS session ticket keys: made by the master, held by every worker through
 * one SharedArrayBuffer (so a worker of any generation, a replacement too,
 * starts on the current key), and replaced every `session_ticket_rotation`
 * for forward secrecy: a key that leaks opens only the sessions of its own
 * period, as with nginx's ssl_session_ticket_key files rotated by cron.
 *
 * Node holds one ticket key per server (setTicketKeys), not a list of old
 * ones to decrypt with, so a rotation ends the tickets of the period before:
 * a client resuming across it makes one full handshake. Tickets live
 * sessionTimeout (5 min, tls-context.ts), so against a 12 h period that is
 * under 1% of resumptions.
 *
 * The master writes the new key, then tells every worker to load it
 * (`onRotate`). A worker that starts meanwhile may read the buffer mid-write;
 * the message reaches it too, after, so no worker keeps a torn or old key.
 */
export class TicketKeys {
  /** Node's 48-byte ticket key (contracts/tls.ts), shared with the workers. */
  readonly shared = new Uint8Array(new SharedArrayBuffer(TICKET_KEY_BYTES));
  private timer: NodeJS.Timeout | null = null;
  private period = 0;
  private readonly onRotate: () => void;

  constructor(onRotate: () => void) {
    this.onRotate = onRotate;
    randomFillSync(this.shared);
  }

  rotate(): void {
    randomFillSync(this.shared);
    this.onRotate();
  }

  /** The conf's period, on start and on each reload (ms; 0 = never). The same period keeps its schedule. */
  schedule(periodMs: number): void {
    if (periodMs === this.period) return;
    this.stop();
    this.period = periodMs;
    if (periodMs > 0) this.timer = setInterval(() => this.rotate(), periodMs).unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.period = 0;
  }
}
