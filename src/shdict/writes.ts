import { type DictValue, encodeValue } from './codec.ts';
import type { ItemStore } from './items.ts';
import { I_EXPIRES, T_LIST, T_PACKED } from './layout.ts';
import { unlock } from './lock.ts';
import { EXISTS, EXPIRE_NOT_FOUND, EXPIRE_OK, type ExpireResult, noMemory, NOT_FOUND, OK, OK_FORCIBLE, type WriteResult } from './results.ts';

/*
 * Keyed writes: set / add / replace (with or without eviction), delete and expire. A value
 * is encoded before the stripe lock is taken, so the critical section only copies bytes.
 */

export const M_SET = 0;
export const M_ADD = 1;
export const M_REPLACE = 2;

/** set (M_SET), add (M_ADD) or replace (M_REPLACE) `key`; `evict` = may evict LRU items to make room. */
export function write(d: ItemStore, key: string, value: DictValue | undefined, ttlMs: number, flags: number, mode: number, evict: boolean): WriteResult {
  if (value === undefined && mode === M_SET) {
    del(d, key);
    return OK;
  }
  d.checkTtl(ttlMs);
  d.checkFlags(flags);
  encodeValue(value, d.enc);
  // Read the clock afresh: until `enter`, it holds the previous operation's reading, which
  // may be long past (a ttl counted from it could expire the item before it is written).
  d.opNow = -1;
  const expires = d.expiresAt(ttlMs);
  const rec = d.enter(key);
  try {
    let it = d.find();
    if (it !== 0 && d.expired(it)) {
      if (mode === M_REPLACE) return NOT_FOUND;
      d.removeItem(rec, it);
      it = 0;
    }
    if (mode === M_ADD && it !== 0) return EXISTS;
    if (mode === M_REPLACE && it === 0) return NOT_FOUND;
    if (!d.store(rec, it, expires, flags | 0, evict)) return noMemory(d.forcible);
    return d.forcible ? OK_FORCIBLE : OK;
  } finally {
    unlock(d.i32, rec);
  }
}

/** Removes the key; true if a live item was removed. */
export function del(d: ItemStore, key: string): boolean {
  const rec = d.enter(key);
  try {
    const it = d.find();
    if (it === 0) return false;
    const live = !d.expired(it);
    d.removeItem(rec, it);
    return live;
  } finally {
    unlock(d.i32, rec);
  }
}

/** Removes the key only while it holds exactly `expected`; true if it did. */
export function deleteIf(d: ItemStore, key: string, expected: string | number): boolean {
  const rec = d.enter(key);
  try {
    const it = d.find();
    if (it === 0 || d.expired(it)) return false;
    const type = d.typeOf(it);
    if (type === T_LIST || type === T_PACKED || d.readItem(it, type) !== expected) return false;
    d.removeItem(rec, it);
    return true;
  } finally {
    unlock(d.i32, rec);
  }
}

/** Sets the ttl of a live key (0 = never expires). */
export function expire(d: ItemStore, key: string, ttlMs: number): ExpireResult {
  d.checkTtl(ttlMs);
  const rec = d.enter(key);
  try {
    const it = d.find();
    if (it === 0 || d.expired(it)) return EXPIRE_NOT_FOUND;
    d.f64[(it + I_EXPIRES) >> 3] = d.expiresAt(ttlMs);
    return EXPIRE_OK;
  } finally {
    unlock(d.i32, rec);
  }
}
