import { HashIndex } from './hash-index.ts';
import { B_FREE, B_NODE, B_SIZE_MASK, END_SENTINEL_BYTES, HEADER_BYTES, I_EXPIRES, I_STAMP, S_HAND, S_TICK, STRIPE_RECORD_WORDS } from './layout.ts';

// A write that does not fit evicts at most this many items (OpenResty stops after 30
// passes): it bounds the time the stripe is held when one large value would need the
// space of thousands of small ones.
export const MAX_EVICTIONS = 64;
// Items the eviction sweep compares to pick the least recently used one.
const EVICTION_SAMPLE = 16;

/**
 * Expiry and LRU eviction.
 *
 * Expiry is lazy: an item stores when it expires (I_EXPIRES, 0 = never); an expired item is
 * invisible to reads and reclaimed when it is next written, when an eviction sweep meets
 * it, or by flushExpired (zone-ops.ts).
 *
 * LRU by stamps. S_TICK counts the items inserted into the stripe; a use stores it in the
 * item, so items used between two insertions tie, which cannot change which one the next
 * insertion evicts. A use writes nothing when the stamp is already current, so a read-
 * mostly item is not written at all. A linked-list move would instead write to the
 * neighbours' cache lines, which belong to whatever other threads used last: on 2 cores
 * that traffic made 2 threads on disjoint keys slower than one. Eviction sweeps the arena
 * from S_HAND and takes the oldest of the next EVICTION_SAMPLE items, or the first expired
 * one: exact LRU up to that many items per stripe, sampled LRU (as Redis does) beyond.
 * Ages compare modulo 2^32 insertions. Per-stripe arenas make eviction LRU per stripe, an
 * approximation of global LRU. (The allocation loop that evicts is ItemStore.allocate.)
 */
export class ExpiryEviction extends HashIndex {
  /**
   * The time for expiry checks and new ttls, read once per keyed operation:
   * an update with a ttl needs it twice, and Date.now costs ~40 ns on a VM's
   * kvm-clock. An operation is microseconds long, so one reading serves it.
   */
  clock(): number {
    if (this.opNow < 0) this.opNow = this.now();
    return this.opNow;
  }

  expired(it: number): boolean {
    const e = this.f64[(it + I_EXPIRES) >> 3]!;
    return e !== 0 && e <= this.clock();
  }

  /** The expiry stored for a ttl: 0 (never) for 0, else that long after this operation's clock. */
  expiresAt(ttlMs: number): number {
    return ttlMs > 0 ? this.clock() + ttlMs : 0;
  }

  /** Marks item `it` as used now. */
  touch(rec: number, it: number): void {
    const tick = this.i32[rec + S_TICK]!;
    if (this.i32[(it + I_STAMP) >> 2] !== tick) this.i32[(it + I_STAMP) >> 2] = tick;
  }

  /** Stamps a newly inserted item: one more insertion on the stripe's clock. */
  stampNew(rec: number, it: number): void {
    const i32 = this.i32;
    const tick = (i32[rec + S_TICK]! + 1) | 0;
    i32[rec + S_TICK] = tick;
    i32[(it + I_STAMP) >> 2] = tick;
  }

  /** The item to evict next (the stripe has at least one item). */
  victim(rec: number): number {
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
}
