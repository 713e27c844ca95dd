const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 30_000;

/**
 * Reconnect pacing shared by the stream transport and the logger process:
 * after a failure wait 100 ms, doubling to 30 s, until a success resets it;
 * `quiet` says whether this outage was already logged (one line per outage).
 */
export class Backoff {
  private delay = RETRY_FIRST_MS;
  private timer: NodeJS.Timeout | null = null;

  get waiting(): boolean {
    return this.timer !== null;
  }

  get quiet(): boolean {
    return this.delay !== RETRY_FIRST_MS;
  }

  succeeded(): void {
    this.delay = RETRY_FIRST_MS;
  }

  /** Calls `retry` after the current delay, then doubles it. */
  schedule(retry: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      retry();
    }, this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
  }
}
