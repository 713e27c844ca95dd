import { setTimeout as sleep } from 'node:timers/promises';
import type { SharedDict } from '../pdk/index.ts';

/**
 * Single flight across workers (nginx's proxy_cache_lock, in the shared
 * dict): the first miss of a key takes its lock, `add(<key>|lock, token,
 * lock_timeout)`, and goes upstream; the other misses, on any worker, wait
 * for the entry without blocking their event loop, polling the dict with a
 * backoff (5 ms doubling to 50 ms: a handful of reads per waiter, where a
 * wake-up word would need the dict to expose one).
 *
 * The holder gives the lock up as soon as its outcome is known:
 * - stored: deleted (`deleteIf` its own token: a lock that expired and was
 *   taken by another stays theirs); the waiters find the entry, HIT;
 * - the upstream answered something not storable (Set-Cookie, no-store, a
 *   status not listed, too large): the lock becomes PASS for lock_timeout,
 *   and every waiter, and every miss meanwhile, goes upstream at once
 *   (Varnish's hit-for-miss), rather than one after another;
 * - failed (no upstream answer, a 5xx, the client gone before the body
 *   ended): deleted, and the first waiter to poll takes the lock over.
 * A worker that dies holding a lock runs no hook: a token names its worker,
 * and the first waiter to poll after the master saw that worker exit
 * (env.workerAlive) deletes the lock and takes it over, as after a failed
 * fetch. A worker that exits releases its locks in `dispose`.
 *
 * A waiter that reaches lock_timeout goes upstream without storing (nginx
 * since 1.7.8): the holder is still fetching and will store; a copy from
 * every waiter would only rewrite the same entry.
 */

/** What a lock key holds after its holder's response turned out not storable. */
const PASS = 'pass';
const FIRST_POLL_MS = 5;
const LAST_POLL_MS = 50;

/** A miss may: go upstream holding the lock (`token`), wait for the holder (whose token is `holder`), or go without the lock. */
export type Claim = { readonly kind: 'lock'; readonly token: string } | { readonly kind: 'wait'; readonly holder: string | undefined } | { readonly kind: 'pass' };

/** How a wait ended: the entry (`value`, what `ready` made of it), the lock, a pass, or lock_timeout. */
export type WaitEnd<T> = { readonly kind: 'hit'; readonly value: T } | Claim | { readonly kind: 'timeout' };

export const lockKey = (key: string): string => `${key}|lock`;

export class Flights {
  /** Locks this instance holds, lock key -> token: released by `releaseAll` when the worker exits. */
  private readonly held = new Map<string, string>();
  private seq = 0;
  private readonly dict: SharedDict;
  private readonly timeoutMs: number;
  private readonly owner: string;
  private readonly alive: (worker: number) => boolean;

  /** Tokens start with `worker` (base 36), whom `alive` says still runs or not. */
  constructor(dict: SharedDict, timeoutMs: number, worker: number, alive: (worker: number) => boolean) {
    this.dict = dict;
    this.timeoutMs = timeoutMs;
    this.owner = worker.toString(36);
    this.alive = alive;
  }

  /**
   * The lock of `key` for a miss that would store (`take`), or what the
   * holder's state asks of it. A HEAD (no `take`) never holds the lock: it
   * waits for the GET's entry or goes.
   */
  claim(key: string, take: boolean): Claim {
    const lk = lockKey(key);
    if (take) {
      const token = `${this.owner}.${(++this.seq).toString(36)}`;
      const r = this.dict.add(lk, token, this.timeoutMs);
      if (r.ok) {
        this.held.set(lk, token);
        return { kind: 'lock', token };
      }
      // No room even after eviction: fetch unlocked rather than fail the request.
      if (r.err !== 'exists') return { kind: 'pass' };
    }
    const v = this.dict.get(lk);
    if (v === PASS || (v === undefined && !take)) return { kind: 'pass' };
    return { kind: 'wait', holder: typeof v === 'string' ? v : undefined };
  }

  /** A holder whose worker exited will never release: its lock goes now (only that token: a new holder's stays). */
  private dropDead(key: string, holder: string | undefined): boolean {
    if (holder === undefined) return false;
    const worker = parseInt(holder.slice(0, holder.indexOf('.')), 36);
    if (Number.isNaN(worker) || this.alive(worker)) return false;
    return this.dict.deleteIf(lockKey(key), holder);
  }

  /**
   * Waits for the holder of `key`: `ready` is asked for the entry at each
   * poll, and once more after taking over the lock (the holder may have
   * stored and released between the two reads).
   */
  async wait<T>(key: string, take: boolean, ready: () => T | null): Promise<WaitEnd<T>> {
    const deadline = performance.now() + this.timeoutMs;
    for (let delay = FIRST_POLL_MS; ; delay = Math.min(delay * 2, LAST_POLL_MS)) {
      const left = deadline - performance.now();
      await sleep(Math.max(0, Math.min(delay, left)));
      const value = ready();
      if (value !== null) return { kind: 'hit', value };
      let claim = this.claim(key, take);
      if (claim.kind === 'wait' && this.dropDead(key, claim.holder)) claim = this.claim(key, take);
      if (claim.kind === 'lock') {
        const late = ready();
        if (late === null) return claim;
        this.release(key, claim.token);
        return { kind: 'hit', value: late };
      }
      if (claim.kind === 'pass') return claim;
      if (performance.now() >= deadline) return { kind: 'timeout' };
    }
  }

  /** Stored, or failed: the lock goes; a waiter finds the entry or takes the lock over. */
  release(key: string, token: string): void {
    const lk = lockKey(key);
    this.held.delete(lk);
    this.dict.deleteIf(lk, token);
  }

  /** Not storable: the waiters, and the misses for lock_timeout, go upstream at once. */
  pass(key: string, token: string): void {
    const lk = lockKey(key);
    this.held.delete(lk);
    this.dict.update(lk, (cur) => (cur === token ? PASS : undefined), this.timeoutMs);
  }

  /** The worker is exiting: its locks must not make other workers wait for their expiry. */
  releaseAll(): void {
    for (const [lk, token] of this.held) this.dict.deleteIf(lk, token);
    this.held.clear();
  }
}
