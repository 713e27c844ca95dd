import { threadId } from 'node:worker_threads';
import { ArgumentChecks, checkOwner } from './checks.ts';
import { EncodedValue } from './codec.ts';
import { ShdictError } from './errors.ts';
import { KeyProbe } from './key.ts';
import { B_FREE, B_NODE, B_SIZE_MASK, END_SENTINEL_BYTES, type Geometry, HEADER_BYTES, STRIPE_RECORD_WORDS } from './layout.ts';
import { lock, unlock } from './lock.ts';
import type { DictOptions } from './results.ts';

const DEFAULT_OWNER_BASE = 0x4000_0000;

/**
 * One thread's view of a zone: typed arrays over the buffer, the geometry read from its
 * header, the per-operation scratch, and the stripe locking every operation starts with
 * (`enter` hashes the key into `probe` and locks the key's stripe; the operation ends by
 * unlocking the stripe it returned).
 *
 * The zone's mechanics are layered as classes, one concern per file, each extending the
 * one before: ArgumentChecks (checks.ts) <- DictState (this file) <- HashIndex (hash-index.ts) <- ExpiryEviction
 * (expiry-eviction.ts) <- ItemStore (items.ts). The operations (reads.ts, writes.ts,
 * read-modify-write.ts, lists.ts, zone-ops.ts, recovery.ts) are functions on an ItemStore,
 * and SharedDict (shared-dict.ts) is the public facade over them. Methods rather than
 * imported functions on the hot paths: V8 folds a method of a stable class into a constant,
 * while every call of an imported function reloads it from its module cell (measured:
 * imported free functions cost incr 3-8% of its throughput).
 */
export class DictState extends ArgumentChecks {
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly buf: Buffer;
  readonly geometry: Geometry;
  readonly stripeMask: number;
  readonly stripeBits: number;
  readonly bucketMask: number;
  readonly owner: number;
  readonly now: () => number;
  readonly lockTimeoutMs: number;
  readonly probe = new KeyProbe();
  readonly enc = new EncodedValue();
  /** Per-call scratch: set when the current write evicted a valid item. */
  forcible = false;
  /** This operation's clock reading, or -1 until it needs one (ExpiryEviction.clock). */
  opNow = -1;
  inCallback = false;

  constructor(buffer: SharedArrayBuffer, geometry: Geometry, opts: DictOptions) {
    super();
    const owner = opts.owner ?? DEFAULT_OWNER_BASE + threadId;
    checkOwner(owner);
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u8 = new Uint8Array(buffer);
    this.buf = Buffer.from(buffer);
    this.geometry = geometry;
    this.stripeMask = geometry.stripes - 1;
    this.stripeBits = Math.log2(geometry.stripes);
    this.bucketMask = geometry.buckets - 1;
    this.owner = owner;
    this.now = opts.now ?? Date.now;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 5000;
  }

  /** Int32Array index of stripe `stripe`'s record. */
  recOf(stripe: number): number {
    return (HEADER_BYTES >> 2) + stripe * STRIPE_RECORD_WORDS;
  }

  lockStripe(rec: number): void {
    if (this.inCallback) throw new ShdictError('SHDICT_ERR_REENTRANT', 'shdict called from inside an update callback');
    lock(this.i32, rec, this.owner, this.lockTimeoutMs);
  }

  /** Loads the key into the probe and locks its stripe; returns the stripe record. */
  enter(key: string): number {
    this.opNow = -1;
    this.probe.load(key);
    const rec = this.recOf(this.probe.hash & this.stripeMask);
    this.lockStripe(rec);
    this.forcible = false;
    return rec;
  }

  /** Calls `fn` on each stripe in turn with that stripe locked, while it returns true. */
  eachStripe(fn: (stripe: number, rec: number) => boolean): void {
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
  eachItem(s: number, fn: (it: number) => boolean): void {
    const g = this.geometry;
    const end = g.arenaBase + (s + 1) * g.arenaBytes - END_SENTINEL_BYTES;
    for (let off = g.arenaBase + s * g.arenaBytes; off < end; ) {
      const h = this.i32[off >> 2]!;
      if ((h & (B_FREE | B_NODE)) === 0 && !fn(off)) return;
      off += h & B_SIZE_MASK;
    }
  }
}
