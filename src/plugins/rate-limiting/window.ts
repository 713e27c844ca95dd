import type { SharedDict } from '../pdk/index.ts';

export const WINDOWS = { second: 1_000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type WindowName = keyof typeof WINDOWS;

/**
 * Largest limit per window. A counter is one float64 in the shared dict
 * holding (window tag, previous count, current count) in base limit+1, so the
 * check, the count and the window roll are one `update` under the stripe
 * lock (no read-then-increment, and no second key to race with). Two counts
 * of up to 2^25 leave room for a tag of at least 4 windows (see `tagMod`).
 */
export const MAX_LIMIT = 2 ** 25;

const TWO53 = 2 ** 53;

/**
 * One window of one limit (`minute: 100` of `limits[0]`), kept in the local
 * shared dict. Not reentrant by design: `check` sets the inputs, runs the
 * dict's `update` with a callback bound once here (no closure per request),
 * and leaves the outcome in the fields below until the next call. A worker
 * is one thread and `update` is synchronous, so nothing interleaves.
 */
export class LocalWindow {
  readonly limit: number;
  readonly ms: number;
  private readonly base: number;
  private readonly base2: number;
  /**
   * The tag is the window number modulo this. A counter lives 2 windows after
   * its last write (its ttl), so a stored tag is at most 2 behind the current
   * one: 4 tags tell "this window", "the previous one" and "older" apart, and
   * small limits get millions.
   */
  private readonly tagMod: number;
  private readonly sliding: boolean;
  // Inputs of the callbacks.
  private tag = 0;
  private weight = 0;
  /** The previous window's count as stored (the fixed window ignores it, and keeps it). */
  private storedPrev = 0;
  // Outcome of the last check.
  admitted = false;
  cur = 0;
  prev = 0;
  /** Window start of the last check (ms). */
  start = 0;

  constructor(limit: number, ms: number, sliding: boolean) {
    this.limit = limit;
    this.ms = ms;
    this.sliding = sliding;
    this.base = limit + 1;
    this.base2 = this.base * this.base;
    this.tagMod = Math.floor(TWO53 / this.base2);
  }

  /** Checks and, when under the limit, counts one request for `key` at `now`. */
  check(dict: SharedDict, key: string, now: number): boolean {
    this.at(now);
    this.admitted = false;
    this.cur = 0;
    this.prev = 0;
    dict.update(key, this.take, this.ms * 2);
    return this.admitted;
  }

  /** Takes counts read elsewhere (the Redis script's) for the window of `now`, so `retryIn` and `resetIn` read them. */
  observe(cur: number, prev: number, now: number): void {
    this.at(now);
    this.cur = cur;
    this.prev = this.sliding ? prev : 0;
  }

  /** Whether a request for `key` would pass at `now`, counting nothing; `retryIn` then says when one would. */
  wouldPass(dict: SharedDict, key: string, now: number): boolean {
    this.at(now);
    return this.read(dict.get(key));
  }

  /** The window `now` falls in: its start, its tag, and the weight of the previous one. */
  private at(now: number): void {
    const n = Math.floor(now / this.ms);
    this.start = n * this.ms;
    this.tag = n % this.tagMod;
    this.weight = this.sliding ? (this.ms - (now - this.start)) / this.ms : 0;
  }

  /** The counts a stored value holds for the current window (cur, prev as weighted, storedPrev as stored); whether one more fits. */
  private read(v: unknown): boolean {
    let cur = 0;
    let prev = 0;
    if (typeof v === 'number') {
      const t = Math.floor(v / this.base2);
      const rest = v - t * this.base2;
      const p = Math.floor(rest / this.base);
      const c = rest - p * this.base;
      if (t === this.tag) {
        cur = c;
        prev = p;
      } else if (t === (this.tag + this.tagMod - 1) % this.tagMod) prev = c;
    }
    this.storedPrev = prev;
    this.prev = this.sliding ? prev : 0;
    this.cur = cur;
    return this.prev * this.weight + cur + 1 <= this.limit;
  }

  /**
   * Gives back the request `check` counted (a later limit refused it), in
   * whichever window the count now sits: rejected requests never use quota.
   */
  undo(dict: SharedDict, key: string): void {
    dict.update(key, this.give);
  }

  /** Requests left after this one, by the same estimate the check used. */
  remaining(): number {
    return Math.max(0, Math.floor(this.limit - this.prev * this.weight - this.cur));
  }

  /** ms until the current window ends. */
  resetIn(now: number): number {
    return this.start + this.ms - now;
  }

  /**
   * ms until a request would pass, after a refusal. Fixed window: the next
   * window. Sliding: until the weighted previous count has decayed enough,
   * in this window if the current count leaves room, else in the next one
   * (where this window's count becomes the previous one).
   */
  retryIn(now: number): number {
    const left = this.start + this.ms - now;
    if (!this.sliding) return left;
    const room = this.limit - this.cur - 1;
    if (room >= 0 && this.prev > 0) return Math.max(0, left - (room * this.ms) / this.prev);
    if (this.cur <= 0) return left;
    return left + Math.max(0, this.ms * (1 - (this.limit - 1) / this.cur));
  }

  private readonly take = (v: unknown): number | undefined => {
    if (!this.read(v)) return undefined;
    this.admitted = true;
    this.cur++;
    return (this.tag * this.base + this.storedPrev) * this.base + this.cur;
  };

  private readonly give = (v: unknown): number | undefined => {
    if (typeof v !== 'number') return undefined;
    const t = Math.floor(v / this.base2);
    const rest = v - t * this.base2;
    const p = Math.floor(rest / this.base);
    const c = rest - p * this.base;
    if (t === this.tag && c > 0) return v - 1;
    // The window rolled between check and undo: the count is now the previous one.
    if (t === (this.tag + 1) % this.tagMod && p > 0) return v - this.base;
    return undefined;
  };
}
