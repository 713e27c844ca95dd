import { threadId } from 'node:worker_threads';
import { alloc, blockSize, free, initArena, shrink } from './alloc.ts';
import { type DictValue, EncodedValue, encodeValue, readValue, unpackValue, writeValue } from './codec.ts';
import { ShdictError } from './errors.ts';
import { stripeProblem } from './invariants.ts';
import { KeyProbe } from './key.ts';
import {
  B_FREE,
  B_NODE,
  B_SIZE_MASK,
  computeGeometry,
  END_SENTINEL_BYTES,
  EXPIRES_FLUSHED,
  type Geometry,
  H_ARENA_BASE,
  H_ARENA_BYTES,
  H_BUCKETS,
  H_CAPACITY,
  H_INDEX_BASE,
  H_MAGIC,
  H_STRIPES,
  H_VERSION,
  HEADER_BYTES,
  I_CHAIN,
  I_EXPIRES,
  I_FLAGS,
  I_HASH,
  I_KEY,
  I_META,
  I_STAMP,
  I_VLEN,
  L_HEAD,
  L_LEN,
  L_TAIL,
  LIST_VALUE_BYTES,
  MAGIC,
  MAX_CAPACITY,
  META_KEY_MASK,
  META_TYPE_SHIFT,
  MIN_CAPACITY,
  N_NEXT,
  N_PREV,
  N_TYPE,
  N_VALUE,
  N_VLEN,
  S_FREE_BYTES,
  S_ITEMS,
  S_LOCK,
  S_HAND,
  S_TICK,
  STRIPE_RECORD_WORDS,
  T_LIST,
  T_NUMBER,
  T_PACKED,
  VERSION,
  align8,
} from './layout.ts';
import { lock, RECOVERY_OWNER, unlock } from './lock.ts';

export type DictOptions = {
  /** Clock in ms; inject one in tests. Default Date.now. */
  readonly now?: () => number;
  /**
   * This thread's lock owner id, >= 1 and distinct per thread (the master numbers its
   * workers). Default DEFAULT_OWNER_BASE + threadId, out of the way of small assigned ids.
   */
  readonly owner?: number;
  /** Give up on a stripe lock after this long (a dead holder nobody released). Default 5000. */
  readonly lockTimeoutMs?: number;
};

export type CreateOptions = DictOptions & {
  /** Lock stripes (a power of two). Default: one per MiB, 1 to 64. */
  readonly stripes?: number;
};

export type WriteResult = {
  readonly ok: boolean;
  readonly err?: 'exists' | 'not found' | 'no memory';
  /** Valid items were evicted to make room. */
  readonly forcible: boolean;
};
export type IncrResult = {
  readonly value?: number;
  readonly err?: 'not found' | 'not a number' | 'no memory';
  readonly forcible: boolean;
};
export type PushResult = { readonly length?: number; readonly err?: 'value not a list' | 'no memory' };
export type ExpireResult = { readonly ok: boolean; readonly err?: 'not found' };
export type FlaggedValue = { readonly value: DictValue; readonly flags: number };
export type StaleValue = { readonly value: DictValue; readonly flags: number; readonly stale: boolean };
export type CasResult = {
  readonly ok: boolean;
  /** The number stored after the call (absent when the key is missing). */
  readonly value?: number;
  readonly err?: 'not a number' | 'no memory';
  readonly forcible: boolean;
};
export type UpdateResult = {
  /** Whether the callback's result was stored. */
  readonly ok: boolean;
  /** The value stored after the call (absent when the key is missing). */
  readonly value?: DictValue;
  readonly err?: 'no memory';
  readonly forcible: boolean;
};
export type DictStats = { readonly capacity: number; readonly freeSpace: number; readonly keys: number };
export type ListValue = string | number;

const M_SET = 0;
const M_ADD = 1;
const M_REPLACE = 2;

// A write that does not fit evicts at most this many items (OpenResty stops after 30
// passes): it bounds the time the stripe is held when one large value would need the
// space of thousands of small ones.
const MAX_EVICTIONS = 64;
// Items the eviction sweep compares to pick the least recently used one.
const EVICTION_SAMPLE = 16;

// Shared frozen results: the common outcomes allocate nothing.
const OK: WriteResult = Object.freeze({ ok: true, forcible: false });
const OK_FORCIBLE: WriteResult = Object.freeze({ ok: true, forcible: true });
const EXISTS: WriteResult = Object.freeze({ ok: false, err: 'exists', forcible: false });
const NOT_FOUND: WriteResult = Object.freeze({ ok: false, err: 'not found', forcible: false });
const NO_MEMORY: WriteResult = Object.freeze({ ok: false, err: 'no memory', forcible: false });
const NO_MEMORY_FORCIBLE: WriteResult = Object.freeze({ ok: false, err: 'no memory', forcible: true });
const INCR_NOT_FOUND: IncrResult = Object.freeze({ err: 'not found', forcible: false });
const INCR_NOT_A_NUMBER: IncrResult = Object.freeze({ err: 'not a number', forcible: false });
const PUSH_NOT_A_LIST: PushResult = Object.freeze({ err: 'value not a list' });
const PUSH_NO_MEMORY: PushResult = Object.freeze({ err: 'no memory' });
const EXPIRE_OK: ExpireResult = Object.freeze({ ok: true });
const EXPIRE_NOT_FOUND: ExpireResult = Object.freeze({ ok: false, err: 'not found' });
const CAS_MISSING: CasResult = Object.freeze({ ok: false, forcible: false });
const CAS_NOT_A_NUMBER: CasResult = Object.freeze({ ok: false, err: 'not a number', forcible: false });
const UNCHANGED_MISSING: UpdateResult = Object.freeze({ ok: false, forcible: false });

const DEFAULT_OWNER_BASE = 0x4000_0000;

const noMemory = (forcible: boolean): WriteResult => (forcible ? NO_MEMORY_FORCIBLE : NO_MEMORY);

function checkTtl(ttlMs: number): void {
  if (typeof ttlMs !== 'number' || !(ttlMs >= 0) || ttlMs === Infinity) {
    throw new ShdictError('SHDICT_ERR_BAD_TTL', `shdict ttl must be a finite number of ms >= 0, got ${ttlMs}`);
  }
}

function checkNumber(n: unknown, what: string): void {
  if (typeof n !== 'number') throw new ShdictError('SHDICT_ERR_BAD_VALUE', `shdict ${what} must be a number`);
}

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
 * Never call a dict method from inside an `update` callback (SHDICT_ERR_REENTRANT).
 */
export class SharedDict {
  readonly buffer: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Uint8Array;
  private readonly buf: Buffer;
  private readonly geometry: Geometry;
  private readonly stripeMask: number;
  private readonly stripeBits: number;
  private readonly bucketMask: number;
  private readonly owner: number;
  private readonly now: () => number;
  private readonly lockTimeoutMs: number;
  private readonly probe = new KeyProbe();
  private readonly enc = new EncodedValue();
  // Per-call scratch: set when the current write evicted a valid item.
  private forcible = false;
  /** This operation's clock reading, or -1 until it needs one (see `clock`). */
  private opNow = -1;
  private inCallback = false;

  private constructor(buffer: SharedArrayBuffer, opts: DictOptions) {
    const i32 = new Int32Array(buffer);
    if (i32.length < HEADER_BYTES >> 2 || i32[H_MAGIC] !== MAGIC || i32[H_VERSION] !== VERSION) {
      throw new ShdictError('SHDICT_ERR_BAD_ZONE', 'buffer is not a shdict zone (or another layout version)');
    }
    const owner = opts.owner ?? DEFAULT_OWNER_BASE + threadId;
    if (!Number.isInteger(owner) || owner < 1 || owner >= RECOVERY_OWNER) {
      throw new ShdictError('SHDICT_ERR_BAD_OWNER', `shdict owner must be an integer >= 1, got ${owner}`);
    }
    this.buffer = buffer;
    this.i32 = i32;
    this.f64 = new Float64Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.buf = Buffer.from(buffer);
    this.geometry = {
      capacity: i32[H_CAPACITY]!,
      stripes: i32[H_STRIPES]!,
      buckets: i32[H_BUCKETS]!,
      arenaBytes: i32[H_ARENA_BYTES]!,
      indexBase: i32[H_INDEX_BASE]!,
      arenaBase: i32[H_ARENA_BASE]!,
    };
    this.stripeMask = this.geometry.stripes - 1;
    this.stripeBits = Math.log2(this.geometry.stripes);
    this.bucketMask = this.geometry.buckets - 1;
    this.owner = owner;
    this.now = opts.now ?? Date.now;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
  }

  /** Allocates and formats a new zone of `size` bytes. */
  static create(size: number, opts: CreateOptions = {}): SharedDict {
    if (!Number.isInteger(size) || size < MIN_CAPACITY || size > MAX_CAPACITY) {
      throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict size must be an integer in [${MIN_CAPACITY}, ${MAX_CAPACITY}]`);
    }
    const s = opts.stripes;
    if (s !== undefined && (!Number.isInteger(s) || s < 1 || s > 1024 || (s & (s - 1)) !== 0)) {
      throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict stripes must be a power of two in [1, 1024], got ${s}`);
    }
    const g = computeGeometry(size, s);
    if (g.arenaBytes < 4096) {
      throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict size ${size} is too small for ${g.stripes} stripes`);
    }
    const buffer = new SharedArrayBuffer(size);
    const i32 = new Int32Array(buffer);
    i32[H_CAPACITY] = size;
    i32[H_STRIPES] = g.stripes;
    i32[H_BUCKETS] = g.buckets;
    i32[H_ARENA_BYTES] = g.arenaBytes;
    i32[H_INDEX_BASE] = g.indexBase;
    i32[H_ARENA_BASE] = g.arenaBase;
    for (let st = 0; st < g.stripes; st++) {
      initArena(i32, (HEADER_BYTES >> 2) + st * STRIPE_RECORD_WORDS, g.arenaBase + st * g.arenaBytes, g.arenaBytes);
    }
    i32[H_VERSION] = VERSION;
    // Written last: a zone is attachable only once fully formatted.
    Atomics.store(i32, H_MAGIC, MAGIC);
    return new SharedDict(buffer, opts);
  }

  /** The zone behind `buffer`, as seen from this thread. */
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
    const rec = this.enter(key);
    let v: DictValue | undefined;
    let type = 0;
    try {
      const it = this.find();
      if (it === 0 || this.expired(it)) return undefined;
      type = this.typeOf(it);
      if (type === T_LIST) return undefined;
      this.touch(rec, it);
      v = this.readItem(it, type);
    } finally {
      unlock(this.i32, rec);
    }
    return type === T_PACKED ? unpackValue(v as Uint8Array) : v;
  }

  /** `get` plus the item's flags. */
  getWithFlags(key: string): FlaggedValue | undefined {
    const s = this.lookup(key, false);
    return s === undefined || s.stale ? undefined : { value: s.value, flags: s.flags };
  }

  /** Like get, but also returns an expired item not yet reclaimed, marked `stale`. */
  getStale(key: string): StaleValue | undefined {
    return this.lookup(key, true);
  }

  /** Ms left to live; 0 = never expires; undefined = missing or expired. */
  ttl(key: string): number | undefined {
    const rec = this.enter(key);
    try {
      const it = this.find();
      if (it === 0) return undefined;
      const e = this.f64[(it + I_EXPIRES) >> 3]!;
      if (e === 0) return 0;
      const left = e - this.clock();
      return left > 0 ? left : undefined;
    } finally {
      unlock(this.i32, rec);
    }
  }

  // ---- writes ------------------------------------------------------------------------

  /** Stores unconditionally, evicting LRU items if needed. `undefined` deletes. */
  set(key: string, value: DictValue | undefined, ttlMs = 0, flags = 0): WriteResult {
    return this.write(key, value, ttlMs, flags, M_SET, true);
  }

  /** set without eviction: "no memory" instead. */
  safeSet(key: string, value: DictValue | undefined, ttlMs = 0, flags = 0): WriteResult {
    return this.write(key, value, ttlMs, flags, M_SET, false);
  }

  /** Stores only if the key is missing or expired, else "exists". */
  add(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return this.write(key, value, ttlMs, flags, M_ADD, true);
  }

  /** add without eviction. */
  safeAdd(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return this.write(key, value, ttlMs, flags, M_ADD, false);
  }

  /** Stores only if the key exists and is unexpired, else "not found". */
  replace(key: string, value: DictValue, ttlMs = 0, flags = 0): WriteResult {
    return this.write(key, value, ttlMs, flags, M_REPLACE, true);
  }

  /** Removes the key; true if a live item was removed. */
  delete(key: string): boolean {
    const rec = this.enter(key);
    try {
      const it = this.find();
      if (it === 0) return false;
      const live = !this.expired(it);
      this.removeItem(rec, it);
      return live;
    } finally {
      unlock(this.i32, rec);
    }
  }

  /**
   * Adds `by` to a number. A missing or expired key is "not found" unless `init` is given,
   * in which case it is created as init + by with `initTtlMs`; an existing key keeps its
   * expiry.
   */
  incr(key: string, by: number, init?: number, initTtlMs = 0): IncrResult {
    checkNumber(by, 'incr step');
    if (init !== undefined) checkNumber(init, 'incr init');
    checkTtl(initTtlMs);
    const rec = this.enter(key);
    try {
      const f64 = this.f64;
      const it = this.find();
      if (it !== 0 && !this.expired(it)) {
        const at = this.numberSlot(it);
        if (at < 0) return INCR_NOT_A_NUMBER;
        const value = f64[at]! + by;
        this.setNumberAt(rec, it, at, value);
        return { value, forcible: false };
      }
      if (init === undefined) return INCR_NOT_FOUND;
      if (it !== 0) this.removeItem(rec, it);
      const value = init + by;
      const enc = this.setNumber(value);
      if (this.insert(rec, enc, this.expiresAt(initTtlMs), 0, true) === 0) {
        return { err: 'no memory', forcible: this.forcible };
      }
      return { value, forcible: this.forcible };
    } finally {
      unlock(this.i32, rec);
    }
  }

  /** The Float64Array index of item `it`'s number value, or -1 when it holds another type. */
  private numberSlot(it: number): number {
    const meta = this.i32[(it + I_META) >> 2]!;
    if (meta >>> META_TYPE_SHIFT !== T_NUMBER) return -1;
    return (it + align8(I_KEY + (meta & META_KEY_MASK))) >> 3;
  }

  /** Stores `value` in item `it`'s number slot `at` (see numberSlot), with a new expiry when `ttlMs` is given. */
  private setNumberAt(rec: number, it: number, at: number, value: number, ttlMs?: number): void {
    this.f64[at] = value;
    if (ttlMs !== undefined) this.f64[(it + I_EXPIRES) >> 3] = this.expiresAt(ttlMs);
    this.touch(rec, it);
  }

  /** The expiry stored for a ttl: 0 (never) for 0, else that long after this operation's clock. */
  private expiresAt(ttlMs: number): number {
    return ttlMs > 0 ? this.clock() + ttlMs : 0;
  }

  /** Sets the ttl of a live key (0 = never expires). */
  expire(key: string, ttlMs: number): ExpireResult {
    checkTtl(ttlMs);
    const rec = this.enter(key);
    try {
      const it = this.find();
      if (it === 0 || this.expired(it)) return EXPIRE_NOT_FOUND;
      this.f64[(it + I_EXPIRES) >> 3] = this.expiresAt(ttlMs);
      return EXPIRE_OK;
    } finally {
      unlock(this.i32, rec);
    }
  }

  // ---- atomic read-modify-write ------------------------------------------------------

  /**
   * Compare-and-set on numbers: stores `next` only if the key holds exactly `expected`
   * (`expected === undefined`: only if the key is missing or expired, creating it with
   * `ttlMs`). `ttlMs` undefined keeps an existing key's expiry. `value` is what the key
   * holds afterwards, so a failed call hands the caller the number to retry from.
   */
  compareAndSet(key: string, expected: number | undefined, next: number, ttlMs?: number): CasResult {
    if (expected !== undefined) checkNumber(expected, 'expected value');
    checkNumber(next, 'next value');
    if (ttlMs !== undefined) checkTtl(ttlMs);
    const rec = this.enter(key);
    try {
      const f64 = this.f64;
      const it = this.find();
      if (it !== 0 && !this.expired(it)) {
        const at = this.numberSlot(it);
        if (at < 0) return CAS_NOT_A_NUMBER;
        const cur = f64[at]!;
        if (expected === undefined || cur !== expected) return { ok: false, value: cur, forcible: false };
        this.setNumberAt(rec, it, at, next, ttlMs);
        return { ok: true, value: next, forcible: false };
      }
      if (expected !== undefined) return CAS_MISSING;
      if (it !== 0) this.removeItem(rec, it);
      const enc = this.setNumber(next);
      const expires = ttlMs === undefined ? 0 : this.expiresAt(ttlMs);
      if (this.insert(rec, enc, expires, 0, true) === 0) return { ok: false, err: 'no memory', forcible: this.forcible };
      return { ok: true, value: next, forcible: this.forcible };
    } finally {
      unlock(this.i32, rec);
    }
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
    if (ttlMs !== undefined) checkTtl(ttlMs);
    const rec = this.enter(key);
    try {
      let it = this.find();
      if (it !== 0 && this.expired(it)) {
        this.removeItem(rec, it);
        it = 0;
      }
      let current: DictValue | undefined;
      // A number read and written in place, as incr does (counters are most updates).
      const at = it === 0 ? -1 : this.numberSlot(it);
      if (at >= 0) current = this.f64[at];
      else if (it !== 0) {
        const type = this.typeOf(it);
        current = type === T_LIST ? undefined : this.readItem(it, type);
        if (type === T_PACKED) current = unpackValue(current as Uint8Array);
      }
      this.inCallback = true;
      let next: DictValue | undefined;
      try {
        next = fn(current);
      } finally {
        this.inCallback = false;
      }
      if (next === undefined) return current === undefined ? UNCHANGED_MISSING : { ok: false, value: current, forcible: false };
      if (at >= 0 && typeof next === 'number') {
        this.setNumberAt(rec, it, at, next, ttlMs);
        return { ok: true, value: next, forcible: false };
      }
      encodeValue(next, this.enc);
      const expires = ttlMs === undefined ? (it === 0 ? 0 : this.f64[(it + I_EXPIRES) >> 3]!) : this.expiresAt(ttlMs);
      const flags = it === 0 ? 0 : this.i32[(it + I_FLAGS) >> 2]!;
      if (!this.store(rec, it, expires, flags, true)) return { ok: false, err: 'no memory', forcible: this.forcible };
      return { ok: true, value: next, forcible: this.forcible };
    } finally {
      unlock(this.i32, rec);
    }
  }

  // ---- lists -------------------------------------------------------------------------

  /** Pushes to the head of a list (created if missing). Never evicts. */
  lpush(key: string, value: ListValue): PushResult {
    return this.push(key, value, true);
  }

  /** Pushes to the tail of a list (created if missing). Never evicts. */
  rpush(key: string, value: ListValue): PushResult {
    return this.push(key, value, false);
  }

  /** Pops the head of a list; undefined if missing, expired or not a list. */
  lpop(key: string): ListValue | undefined {
    return this.pop(key, true);
  }

  /** Pops the tail of a list; undefined if missing, expired or not a list. */
  rpop(key: string): ListValue | undefined {
    return this.pop(key, false);
  }

  /** List length; 0 if missing, expired or not a list. */
  llen(key: string): number {
    const rec = this.enter(key);
    try {
      const it = this.find();
      if (it === 0 || this.expired(it) || this.typeOf(it) !== T_LIST) return 0;
      return this.i32[(this.valueOf(it) + L_LEN) >> 2]!;
    } finally {
      unlock(this.i32, rec);
    }
  }

  // ---- whole zone --------------------------------------------------------------------

  /** Marks every item expired (getStale still sees them); frees nothing, like OpenResty. */
  flushAll(): void {
    this.eachStripe((s) => {
      this.eachItem(s, (it) => {
        this.f64[(it + I_EXPIRES) >> 3] = EXPIRES_FLUSHED;
        return true;
      });
      return true;
    });
  }

  /** Frees up to `max` expired items (0 = all); returns how many. */
  flushExpired(max = 0): number {
    const t = this.now();
    let n = 0;
    this.eachStripe((s, rec) => {
      // Collected first: freeing while walking would merge blocks under the walk.
      const expired: number[] = [];
      this.eachItem(s, (it) => {
        const e = this.f64[(it + I_EXPIRES) >> 3]!;
        if (e !== 0 && e <= t) expired.push(it);
        return max === 0 || n + expired.length < max;
      });
      for (const it of expired) this.removeItem(rec, it);
      n += expired.length;
      return max === 0 || n < max;
    });
    return n;
  }

  /** Up to `max` live keys (0 = all; default 1024, as OpenResty), in no particular order. */
  getKeys(max = 1024): string[] {
    const t = this.now();
    const keys: string[] = [];
    this.eachStripe((s) => {
      this.eachItem(s, (it) => {
        const e = this.f64[(it + I_EXPIRES) >> 3]!;
        if (e !== 0 && e <= t) return true;
        const len = this.i32[(it + I_META) >> 2]! & META_KEY_MASK;
        keys.push(this.buf.toString('utf8', it + I_KEY, it + I_KEY + len));
        return max === 0 || keys.length < max;
      });
      return max === 0 || keys.length < max;
    });
    return keys;
  }

  /** Zone size in bytes. */
  capacity(): number {
    return this.geometry.capacity;
  }

  /** Bytes in free blocks (a lower bound on what fits: an item needs one contiguous block). */
  freeSpace(): number {
    let n = 0;
    for (let s = 0; s < this.geometry.stripes; s++) n += Atomics.load(this.i32, this.recOf(s) + S_FREE_BYTES);
    return n;
  }

  /** Number of items, lock-free; expired items not yet reclaimed are included. */
  count(): number {
    let keys = 0;
    for (let s = 0; s < this.geometry.stripes; s++) keys += Atomics.load(this.i32, this.recOf(s) + S_ITEMS);
    return keys;
  }

  /** Lock-free snapshot for status pages. */
  stats(): DictStats {
    return { capacity: this.geometry.capacity, freeSpace: this.freeSpace(), keys: this.count() };
  }

  /**
   * Releases every stripe lock held by `owner`, a thread the caller knows is dead. The dead
   * thread may have stopped half-way through a write, so each such stripe is checked and,
   * if its structure is damaged, wiped (losing that stripe's keys, never corrupting the
   * zone). Returns the number of locks released.
   */
  releaseLocksOwnedBy(owner: number): number {
    if (!Number.isInteger(owner) || owner < 1 || owner >= RECOVERY_OWNER) {
      throw new ShdictError('SHDICT_ERR_BAD_OWNER', `shdict owner must be an integer >= 1, got ${owner}`);
    }
    let released = 0;
    for (let s = 0; s < this.geometry.stripes; s++) {
      const rec = this.recOf(s);
      if (Atomics.compareExchange(this.i32, rec + S_LOCK, owner, RECOVERY_OWNER) !== owner) continue;
      if (stripeProblem(this.i32, this.geometry, s) !== undefined) this.resetStripe(s);
      unlock(this.i32, rec);
      released++;
    }
    return released;
  }

  /** Throws SHDICT_ERR_CORRUPT describing the first broken invariant (O(zone); tests). */
  checkInvariants(): void {
    for (let s = 0; s < this.geometry.stripes; s++) {
      const rec = this.recOf(s);
      this.lockStripe(rec);
      let problem: string | undefined;
      try {
        problem = stripeProblem(this.i32, this.geometry, s);
      } finally {
        unlock(this.i32, rec);
      }
      if (problem !== undefined) throw new ShdictError('SHDICT_ERR_CORRUPT', `shdict stripe ${s}: ${problem}`);
    }
  }

  // ---- internals ---------------------------------------------------------------------

  private recOf(stripe: number): number {
    return (HEADER_BYTES >> 2) + stripe * STRIPE_RECORD_WORDS;
  }

  private lockStripe(rec: number): void {
    if (this.inCallback) throw new ShdictError('SHDICT_ERR_REENTRANT', 'shdict called from inside an update callback');
    lock(this.i32, rec, this.owner, this.lockTimeoutMs);
  }

  /** Loads the key into the probe and locks its stripe; returns the stripe record. */
  private enter(key: string): number {
    this.opNow = -1;
    this.probe.load(key);
    const rec = this.recOf(this.probe.hash & this.stripeMask);
    this.lockStripe(rec);
    this.forcible = false;
    return rec;
  }

  private eachStripe(fn: (stripe: number, rec: number) => boolean): void {
    for (let s = 0; s < this.geometry.stripes; s++) {
      const rec = this.recOf(s);
      this.lockStripe(rec);
      let more: boolean;
      try {
        more = fn(s, rec);
      } finally {
        unlock(this.i32, rec);
      }
      if (!more) return;
    }
  }

  /** Calls `fn` on each item of stripe `s` in address order, while it returns true. */
  private eachItem(s: number, fn: (it: number) => boolean): void {
    const g = this.geometry;
    const end = g.arenaBase + (s + 1) * g.arenaBytes - END_SENTINEL_BYTES;
    for (let off = g.arenaBase + s * g.arenaBytes; off < end; ) {
      const h = this.i32[off >> 2]!;
      if ((h & (B_FREE | B_NODE)) === 0 && !fn(off)) return;
      off += h & B_SIZE_MASK;
    }
  }

  /** Int32Array index of the bucket for `hash`. */
  private bucketOf(hash: number): number {
    const g = this.geometry;
    return (g.indexBase >> 2) + (hash & this.stripeMask) * g.buckets + ((hash >>> this.stripeBits) & this.bucketMask);
  }

  /** The item holding the probe's key, or 0. */
  private find(): number {
    const { i32, probe } = this;
    const h = probe.hash;
    for (let it = i32[this.bucketOf(h)]!; it !== 0; it = i32[(it + I_CHAIN) >> 2]!) {
      if (i32[(it + I_HASH) >> 2] === h && probe.matches(i32, it + I_KEY, i32[(it + I_META) >> 2]! & META_KEY_MASK)) {
        return it;
      }
    }
    return 0;
  }

  private expired(it: number): boolean {
    const e = this.f64[(it + I_EXPIRES) >> 3]!;
    return e !== 0 && e <= this.clock();
  }

  /**
   * The time for expiry checks and new ttls, read once per keyed operation:
   * an update with a ttl needs it twice, and Date.now costs ~40 ns on a VM's
   * kvm-clock. An operation is microseconds long, so one reading serves it.
   */
  private clock(): number {
    if (this.opNow < 0) this.opNow = this.now();
    return this.opNow;
  }

  private typeOf(it: number): number {
    return this.i32[(it + I_META) >> 2]! >>> META_TYPE_SHIFT;
  }

  private valueOf(it: number): number {
    return it + align8(I_KEY + (this.i32[(it + I_META) >> 2]! & META_KEY_MASK));
  }

  private readItem(it: number, type: number): DictValue {
    return readValue(this.u8, this.f64, this.buf, this.valueOf(it), type, this.i32[(it + I_VLEN) >> 2]!);
  }

  private lookup(key: string, stale: boolean): StaleValue | undefined {
    const rec = this.enter(key);
    let v: DictValue;
    let type: number;
    let flags: number;
    let isStale: boolean;
    try {
      const it = this.find();
      if (it === 0) return undefined;
      isStale = this.expired(it);
      type = this.typeOf(it);
      if ((isStale && !stale) || type === T_LIST) return undefined;
      if (!isStale) this.touch(rec, it);
      flags = this.i32[(it + I_FLAGS) >> 2]! >>> 0;
      v = this.readItem(it, type);
    } finally {
      unlock(this.i32, rec);
    }
    return { value: type === T_PACKED ? unpackValue(v as Uint8Array) : v, flags, stale: isStale };
  }

  private write(key: string, value: DictValue | undefined, ttlMs: number, flags: number, mode: number, evict: boolean): WriteResult {
    if (value === undefined && mode === M_SET) {
      this.delete(key);
      return OK;
    }
    checkTtl(ttlMs);
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff_ffff) {
      throw new ShdictError('SHDICT_ERR_BAD_VALUE', `shdict flags must be a uint32, got ${flags}`);
    }
    encodeValue(value, this.enc);
    const expires = this.expiresAt(ttlMs);
    const rec = this.enter(key);
    try {
      let it = this.find();
      if (it !== 0 && this.expired(it)) {
        if (mode === M_REPLACE) return NOT_FOUND;
        this.removeItem(rec, it);
        it = 0;
      }
      if (mode === M_ADD && it !== 0) return EXISTS;
      if (mode === M_REPLACE && it === 0) return NOT_FOUND;
      if (!this.store(rec, it, expires, flags | 0, evict)) return noMemory(this.forcible);
      return this.forcible ? OK_FORCIBLE : OK;
    } finally {
      unlock(this.i32, rec);
    }
  }

  private setNumber(n: number): EncodedValue {
    const enc = this.enc;
    enc.type = T_NUMBER;
    enc.byteLength = 8;
    enc.num = n;
    return enc;
  }

  /**
   * Stores the encoded value under the probe's key: in place when it fits the existing
   * item's block (giving back any surplus), else as a new item. False = no memory.
   */
  private store(rec: number, it: number, expires: number, flags: number, evict: boolean): boolean {
    const enc = this.enc;
    if (it !== 0) {
      const meta = this.i32[(it + I_META) >> 2]!;
      const valueAt = align8(I_KEY + (meta & META_KEY_MASK));
      const need = align8(valueAt + enc.byteLength);
      if (meta >>> META_TYPE_SHIFT !== T_LIST && need <= blockSize(this.i32, it)) {
        shrink(this.i32, rec, it, need);
        this.fillItem(it, valueAt, expires, flags);
        this.touch(rec, it);
        return true;
      }
      this.removeItem(rec, it);
    }
    return this.insert(rec, enc, expires, flags, evict) !== 0;
  }

  /** Allocates and links a new item for the probe's key holding `enc`; 0 = no memory. */
  private insert(rec: number, enc: EncodedValue, expires: number, flags: number, evict: boolean): number {
    const valueAt = align8(I_KEY + this.probe.byteLength);
    const vlen = enc.type === T_LIST ? LIST_VALUE_BYTES : enc.byteLength;
    const it = this.allocate(rec, align8(valueAt + vlen), evict);
    if (it === 0) return 0;
    const i32 = this.i32;
    i32[(it + I_HASH) >> 2] = this.probe.hash;
    this.probe.write(i32, it + I_KEY);
    this.fillItem(it, valueAt, expires, flags);
    const bucket = this.bucketOf(this.probe.hash);
    i32[(it + I_CHAIN) >> 2] = i32[bucket]!;
    i32[bucket] = it;
    const tick = (i32[rec + S_TICK]! + 1) | 0;
    i32[rec + S_TICK] = tick;
    i32[(it + I_STAMP) >> 2] = tick;
    i32[rec + S_ITEMS]!++;
    return it;
  }

  private fillItem(it: number, valueAt: number, expires: number, flags: number): void {
    const enc = this.enc;
    const i32 = this.i32;
    this.f64[(it + I_EXPIRES) >> 3] = expires;
    i32[(it + I_FLAGS) >> 2] = flags;
    i32[(it + I_META) >> 2] = this.probe.byteLength | (enc.type << META_TYPE_SHIFT);
    if (enc.type === T_LIST) {
      i32[(it + valueAt + L_HEAD) >> 2] = 0;
      i32[(it + valueAt + L_TAIL) >> 2] = 0;
      i32[(it + valueAt + L_LEN) >> 2] = 0;
      i32[(it + I_VLEN) >> 2] = LIST_VALUE_BYTES;
    } else {
      i32[(it + I_VLEN) >> 2] = enc.byteLength;
      writeValue(this.u8, this.f64, this.buf, it + valueAt, enc);
    }
  }

  /** alloc, then (if allowed) evict until the block fits. */
  private allocate(rec: number, size: number, evict: boolean): number {
    let off = alloc(this.i32, rec, size);
    for (let n = 0; off === 0 && evict && n < MAX_EVICTIONS && this.i32[rec + S_ITEMS] !== 0; n++) {
      const victim = this.victim(rec);
      if (!this.expired(victim)) this.forcible = true;
      this.removeItem(rec, victim);
      off = alloc(this.i32, rec, size);
    }
    return off;
  }

  /*
   * LRU by stamps. S_TICK counts the items inserted into the stripe; a use stores it in the
   * item, so items used between two insertions tie, which cannot change which one the next
   * insertion evicts. A use writes nothing when the stamp is already current, so a read-
   * mostly item is not written at all. A linked-list move would instead write to the
   * neighbours' cache lines, which belong to whatever other threads used last: on 2 cores
   * that traffic made 2 threads on disjoint keys slower than one. Eviction sweeps the arena
   * from S_HAND and takes the oldest of the next EVICTION_SAMPLE items, or the first expired
   * one: exact LRU up to that many items per stripe, sampled LRU (as Redis does) beyond.
   * Ages compare modulo 2^32 insertions.
   */
  private touch(rec: number, it: number): void {
    const tick = this.i32[rec + S_TICK]!;
    if (this.i32[(it + I_STAMP) >> 2] !== tick) this.i32[(it + I_STAMP) >> 2] = tick;
  }

  /** The item to evict next (the stripe has at least one item). */
  private victim(rec: number): number {
    const i32 = this.i32;
    const g = this.geometry;
    const start = g.arenaBase + ((rec - (HEADER_BYTES >> 2)) / STRIPE_RECORD_WORDS) * g.arenaBytes;
    const end = start + g.arenaBytes - END_SENTINEL_BYTES;
    const tick = i32[rec + S_TICK]!;
    let hand = i32[rec + S_HAND]!;
    let best = 0;
    let bestAge = -1;
    for (let seen = 0; seen < EVICTION_SAMPLE; ) {
      if (hand >= end) hand = start;
      const h = i32[hand >> 2]!;
      if ((h & (B_FREE | B_NODE)) === 0) {
        if (this.expired(hand)) {
          best = hand;
          break;
        }
        const age = (tick - i32[(hand + I_STAMP) >> 2]!) >>> 0;
        if (age > bestAge) {
          best = hand;
          bestAge = age;
        }
        seen++;
      }
      hand += h & B_SIZE_MASK;
    }
    i32[rec + S_HAND] = hand;
    return best;
  }

  private removeItem(rec: number, it: number): void {
    const i32 = this.i32;
    let link = this.bucketOf(i32[(it + I_HASH) >> 2]!);
    while (i32[link] !== it) link = (i32[link]! + I_CHAIN) >> 2;
    i32[link] = i32[(it + I_CHAIN) >> 2]!;
    if (this.typeOf(it) === T_LIST) {
      for (let node = i32[(this.valueOf(it) + L_HEAD) >> 2]!; node !== 0; ) {
        const next = i32[(node + N_NEXT) >> 2]!;
        free(i32, rec, node);
        node = next;
      }
    }
    free(i32, rec, it);
    i32[rec + S_ITEMS]!--;
  }

  private push(key: string, value: ListValue, head: boolean): PushResult {
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new ShdictError('SHDICT_ERR_BAD_VALUE', 'shdict list values must be strings or numbers');
    }
    const rec = this.enter(key);
    try {
      const i32 = this.i32;
      let it = this.find();
      if (it !== 0 && this.expired(it)) {
        this.removeItem(rec, it);
        it = 0;
      }
      if (it !== 0 && this.typeOf(it) !== T_LIST) return PUSH_NOT_A_LIST;
      const created = it === 0;
      if (created) {
        this.enc.type = T_LIST;
        it = this.insert(rec, this.enc, 0, 0, false);
        if (it === 0) return PUSH_NO_MEMORY;
      }
      encodeValue(value, this.enc);
      const node = alloc(i32, rec, align8(N_VALUE + this.enc.byteLength));
      if (node === 0) {
        if (created) this.removeItem(rec, it);
        return PUSH_NO_MEMORY;
      }
      i32[node >> 2]! |= B_NODE;
      i32[(node + N_TYPE) >> 2] = this.enc.type;
      i32[(node + N_VLEN) >> 2] = this.enc.byteLength;
      writeValue(this.u8, this.f64, this.buf, node + N_VALUE, this.enc);
      const v = this.valueOf(it);
      const [near, far, toward, away] = head ? [L_HEAD, L_TAIL, N_PREV, N_NEXT] : [L_TAIL, L_HEAD, N_NEXT, N_PREV];
      const old = i32[(v + near) >> 2]!;
      i32[(node + away) >> 2] = old;
      i32[(node + toward) >> 2] = 0;
      if (old !== 0) i32[(old + toward) >> 2] = node;
      else i32[(v + far) >> 2] = node;
      i32[(v + near) >> 2] = node;
      const length = ++i32[(v + L_LEN) >> 2]!;
      this.touch(rec, it);
      return { length };
    } finally {
      unlock(this.i32, rec);
    }
  }

  private pop(key: string, head: boolean): ListValue | undefined {
    const rec = this.enter(key);
    try {
      const i32 = this.i32;
      const it = this.find();
      if (it === 0 || this.expired(it) || this.typeOf(it) !== T_LIST) return undefined;
      const v = this.valueOf(it);
      const [near, far, toward, away] = head ? [L_HEAD, L_TAIL, N_PREV, N_NEXT] : [L_TAIL, L_HEAD, N_NEXT, N_PREV];
      const node = i32[(v + near) >> 2]!;
      const type = i32[(node + N_TYPE) >> 2]!;
      const value = readValue(this.u8, this.f64, this.buf, node + N_VALUE, type, i32[(node + N_VLEN) >> 2]!);
      const rest = i32[(node + away) >> 2]!;
      i32[(v + near) >> 2] = rest;
      if (rest !== 0) i32[(rest + toward) >> 2] = 0;
      else i32[(v + far) >> 2] = 0;
      free(i32, rec, node);
      // OpenResty removes a list once it is empty.
      if (--i32[(v + L_LEN) >> 2]! === 0) this.removeItem(rec, it);
      else this.touch(rec, it);
      return value as ListValue;
    } finally {
      unlock(this.i32, rec);
    }
  }

  private resetStripe(s: number): void {
    const g = this.geometry;
    const rec = this.recOf(s);
    const index = (g.indexBase >> 2) + s * g.buckets;
    this.i32.fill(0, index, index + g.buckets);
    this.i32[rec + S_ITEMS] = 0;
    initArena(this.i32, rec, g.arenaBase + s * g.arenaBytes, g.arenaBytes);
  }
}
