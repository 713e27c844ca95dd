import type { DictValue } from './codec.ts';
import { ItemStore } from './items.ts';
import { llen, pop, push } from './lists.ts';
import { compareAndSet, incr, update } from './read-modify-write.ts';
import { get, lookup, ttl } from './reads.ts';
import { checkInvariants, releaseLocksOwnedBy } from './recovery.ts';
import type {
  CasResult,
  CreateOptions,
  DictOptions,
  DictStats,
  ExpireResult,
  FlaggedValue,
  IncrResult,
  ListValue,
  PushResult,
  StaleValue,
  UpdateResult,
  WriteResult,
} from './results.ts';
import { del, deleteIf, expire, M_ADD, M_REPLACE, M_SET, write } from './writes.ts';
import { formatZone, openZone } from './zone-header.ts';
import { count, flushAll, flushExpired, freeSpace, getKeys } from './zone-ops.ts';

/**
 * A fixed-size key/value zone in one SharedArrayBuffer, shared by every thread that
 * attaches to it: the equivalent of OpenResty's ngx.shared.DICT.
 *
 * Each key hashes to one of `stripes` partitions with its own spin lock, hash index, LRU
 * clock and arena, so every operation takes exactly one stripe lock for O(1) work (the
 * whole-zone walks flushAll / flushExpired / getKeys take the stripes one after another).
 * Per-stripe arenas make eviction LRU per stripe, an approximation of global LRU, and cap
 * an item at one stripe's arena (capacity / stripes).
 *
 * Expiry is lazy: an expired item is invisible to reads and reclaimed when it is next
 * written, when an eviction sweep meets it, or by flushExpired.
 *
 * A zone is stamped with the layout identity of the code that formatted it (identity.ts)
 * and only code of that very layout attaches to it (SHDICT_ERR_BAD_ZONE otherwise).
 *
 * Never call a dict method from inside an `update` callback (SHDICT_ERR_REENTRANT).
 *
 * This class is the facade: the work is done by the modules beside it (reads.ts,
 * writes.ts, read-modify-write.ts, lists.ts, zone-ops.ts, recovery.ts) on this thread's
 * DictState.
 */
export class SharedDict {
  readonly buffer: SharedArrayBuffer;
  private readonly s: ItemStore;

  private constructor(buffer: SharedArrayBuffer, opts: DictOptions) {
    this.s = new ItemStore(buffer, openZone(buffer), opts);
    this.buffer = buffer;
  }

  /** Allocates and formats a new zone of `size` bytes. */
  static create(size: number, opts: CreateOptions = {}): SharedDict {
    return new SharedDict(formatZone(size, opts.stripes), opts);
  }

  /** The zone behind `buffer`, as seen from this thread. SHDICT_ERR_BAD_ZONE unless it was formatted by code of this layout. */
  static attach(buffer: SharedArrayBuffer, opts: DictOptions = {}): SharedDict {
    return new SharedDict(buffer, opts);
  }

  /** `releaseLocksOwnedBy` without an attached dict in hand (for the master). */
  static releaseLocksOwnedBy(buffer: SharedArrayBuffer, owner: number): number {
    return new SharedDict(buffer, {}).releaseLocksOwnedBy(owner);
  }

  // ---- reads -------------------------------------------------------------------------

  /** The value, or undefined when missing, expired or a list. */
  get(key: string): DictValue | undefined {
    return get(this.s, key);
  }

  /** `get` plus the item's flags. */
  getWithFlags(key: string): FlaggedValue | undefined {
    const s = lookup(this.s, key, false);
    return s === undefined || s.stale ? undefined : { value: s.value, flags: s.flags };
  }

  /** Like get, but also returns an expired item not yet reclaimed, marked `stale`. */
  getStale(key: string): StaleValue | undefined {
    return lookup(this.s, key, true);
  }

  /** Ms left to live; 0 = never expires; undefined = missing or expired. */
  ttl(key: string): number | undefined {
    return ttl(this.s, key);
  }

  // ---- writes ------------------------------------------------------------------------

  /** Stores unconditionally, evicting LRU items if needed. `undefined` deletes. */
  set(key: string, value: DictValue | undefined, ttlMs = 0, flags = 0): WriteResult {
    return write(this.s, key, value, ttlMs, flags, M_SET, true);
  }

  /** set without eviction: "no memory" instead. */
  safeSet(key: string, value: DictValue | undefined, ttlMs = 0, flags = 0): WriteResult {
    return write(this.s, key, value, ttlMs, flags, M_SET, false);
  }

  /** Stores only if the key is missing or expired, else "exists". */
  add(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return write(this.s, key, value, ttlMs, flags, M_ADD, true);
  }

  /** add without eviction. */
  safeAdd(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return write(this.s, key, value, ttlMs, flags, M_ADD, false);
  }

  /** Stores only if the key exists and is unexpired, else "not found". */
  replace(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return write(this.s, key, value, ttlMs, flags, M_REPLACE, true);
  }

  /** Removes the key; true if a live item was removed. */
  delete(key: string): boolean {
    return del(this.s, key);
  }

  /**
   * Compare-and-delete: removes the key only while it holds exactly `expected` (a string or
   * a number), so a lock taken with `add(key, token, ttl)` is released by its holder alone,
   * never after it expired and another thread took it. True if the key was removed.
   */
  deleteIf(key: string, expected: string | number): boolean {
    return deleteIf(this.s, key, expected);
  }

  /**
   * Adds `by` to a number. A missing or expired key is "not found" unless `init` is given,
   * in which case it is created as init + by with `initTtlMs`; an existing key keeps its
   * expiry.
   */
  incr(key: string, by: number, init?: number, initTtlMs = 0): IncrResult {
    return incr(this.s, key, by, init, initTtlMs);
  }

  /** Sets the ttl of a live key (0 = never expires). */
  expire(key: string, ttlMs: number): ExpireResult {
    return expire(this.s, key, ttlMs);
  }

  // ---- atomic read-modify-write ------------------------------------------------------

  /**
   * Compare-and-set on numbers: stores `next` only if the key holds exactly `expected`
   * (`expected === undefined`: only if the key is missing or expired, creating it with
   * `ttlMs`). `ttlMs` undefined keeps an existing key's expiry. `value` is what the key
   * holds afterwards, so a failed call hands the caller the number to retry from.
   */
  compareAndSet(key: string, expected: number | undefined, next: number, ttlMs?: number): CasResult {
    return compareAndSet(this.s, key, expected, next, ttlMs);
  }

  /**
   * Atomic read-modify-write of any value: `fn` receives the current value (undefined if
   * missing or expired) and returns the value to store, or undefined to leave the key as
   * it is. `fn` runs synchronously while the key's stripe is locked, so it must be O(1) and
   * pure: no I/O, no await, no dict calls (SHDICT_ERR_REENTRANT), no heavy work: every
   * thread touching that stripe spins until it returns. If `fn` throws, nothing is stored.
   * `ttlMs` undefined keeps the existing expiry (never, for a new key); flags are kept.
   *
   * @example
   *   // token bucket: take one token if any is left
   *   dict.update('tb:client', (b) => {
   *     const s = (b ?? { tokens: 10, at: now }) as { tokens: number; at: number };
   *     const tokens = Math.min(10, s.tokens + (now - s.at) * rate);
   *     return tokens >= 1 ? { tokens: tokens - 1, at: now } : undefined;
   *   }, 60_000);
   */
  update(key: string, fn: (current: DictValue | undefined) => DictValue | undefined, ttlMs?: number): UpdateResult {
    return update(this.s, key, fn, ttlMs);
  }

  // ---- lists -------------------------------------------------------------------------

  /** Pushes to the head of a list (created if missing). Never evicts. */
  lpush(key: string, value: ListValue): PushResult {
    return push(this.s, key, value, true);
  }

  /** Pushes to the tail of a list (created if missing). Never evicts. */
  rpush(key: string, value: ListValue): PushResult {
    return push(this.s, key, value, false);
  }

  /** Pops the head of a list; undefined if missing, expired or not a list. */
  lpop(key: string): ListValue | undefined {
    return pop(this.s, key, true);
  }

  /** Pops the tail of a list; undefined if missing, expired or not a list. */
  rpop(key: string): ListValue | undefined {
    return pop(this.s, key, false);
  }

  /** List length; 0 if missing, expired or not a list. */
  llen(key: string): number {
    return llen(this.s, key);
  }

  // ---- whole zone --------------------------------------------------------------------

  /** Marks every item expired (getStale still sees them); frees nothing, like OpenResty. */
  flushAll(): void {
    flushAll(this.s);
  }

  /** Frees up to `max` expired items (0 = all); returns how many. */
  flushExpired(max = 0): number {
    return flushExpired(this.s, max);
  }

  /** Up to `max` live keys (0 = all; default 1024, as OpenResty), in no particular order. */
  getKeys(max = 1024): string[] {
    return getKeys(this.s, max);
  }

  /** Zone size in bytes. */
  capacity(): number {
    return this.s.geometry.capacity;
  }

  /** Bytes in free blocks (a lower bound on what fits: an item needs one contiguous block). */
  freeSpace(): number {
    return freeSpace(this.s);
  }

  /** Number of items, lock-free; expired items not yet reclaimed are included. */
  count(): number {
    return count(this.s);
  }

  /** Lock-free snapshot for status pages. */
  stats(): DictStats {
    return { capacity: this.s.geometry.capacity, freeSpace: freeSpace(this.s), keys: count(this.s) };
  }

  /**
   * Releases every stripe lock held by `owner`, a thread the caller knows is dead. The dead
   * thread may have stopped half-way through a write, so each such stripe is checked and,
   * if its structure is damaged, wiped (losing that stripe's keys, never corrupting the
   * zone). Returns the number of locks released.
   */
  releaseLocksOwnedBy(owner: number): number {
    return releaseLocksOwnedBy(this.s, owner);
  }

  /** Throws SHDICT_ERR_CORRUPT describing the first broken invariant (O(zone); tests). */
  checkInvariants(): void {
    checkInvariants(this.s);
  }
}
