import type { ItemStore } from './items.ts';
import { EXPIRES_FLUSHED, I_EXPIRES, I_KEY, I_META, META_KEY_MASK, S_FREE_BYTES, S_ITEMS } from './layout.ts';

/*
 * Whole-zone operations: walks that take the stripes one after another (flushAll,
 * flushExpired, getKeys) and lock-free counters for status pages.
 */

/** Marks every item expired (getStale still sees them); frees nothing, like OpenResty. */
export function flushAll(d: ItemStore): void {
  d.eachStripe((s) => {
    d.eachItem(s, (it) => {
      d.f64[(it + I_EXPIRES) >> 3] = EXPIRES_FLUSHED;
      return true;
    });
    return true;
  });
}

/** Frees up to `max` expired items (0 = all); returns how many. */
export function flushExpired(d: ItemStore, max: number): number {
  const t = d.now();
  let n = 0;
  d.eachStripe((s, rec) => {
    // Collected first: freeing while walking would merge blocks under the walk.
    const expired: number[] = [];
    d.eachItem(s, (it) => {
      const e = d.f64[(it + I_EXPIRES) >> 3]!;
      if (e !== 0 && e <= t) expired.push(it);
      return max === 0 || n + expired.length < max;
    });
    for (const it of expired) d.removeItem(rec, it);
    n += expired.length;
    return max === 0 || n < max;
  });
  return n;
}

/** Up to `max` live keys (0 = all), in no particular order. */
export function getKeys(d: ItemStore, max: number): string[] {
  const t = d.now();
  const keys: string[] = [];
  d.eachStripe((s) => {
    d.eachItem(s, (it) => {
      const e = d.f64[(it + I_EXPIRES) >> 3]!;
      if (e !== 0 && e <= t) return true;
      const len = d.i32[(it + I_META) >> 2]! & META_KEY_MASK;
      keys.push(d.buf.toString('utf8', it + I_KEY, it + I_KEY + len));
      return max === 0 || keys.length < max;
    });
    return max === 0 || keys.length < max;
  });
  return keys;
}

/** Bytes in free blocks (a lower bound on what fits: an item needs one contiguous block). */
export function freeSpace(d: ItemStore): number {
  let n = 0;
  for (let s = 0; s < d.geometry.stripes; s++) n += Atomics.load(d.i32, d.recOf(s) + S_FREE_BYTES);
  return n;
}

/** Number of items, lock-free; expired items not yet reclaimed are included. */
export function count(d: ItemStore): number {
  let keys = 0;
  for (let s = 0; s < d.geometry.stripes; s++) keys += Atomics.load(d.i32, d.recOf(s) + S_ITEMS);
  return keys;
}
