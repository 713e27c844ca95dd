import { type DictValue, encodeValue, unpackValue } from './codec.ts';
import type { ItemStore } from './items.ts';
import { I_EXPIRES, I_FLAGS, T_LIST, T_PACKED } from './layout.ts';
import { unlock } from './lock.ts';
import { CAS_MISSING, CAS_NOT_A_NUMBER, type CasResult, INCR_NOT_A_NUMBER, INCR_NOT_FOUND, type IncrResult, UNCHANGED_MISSING, type UpdateResult } from './results.ts';

/*
 * Atomic read-modify-write: incr, compare-and-set and update each read and write a key
 * under one hold of its stripe lock. A number is read and written in place (numberSlot),
 * which is what counters, the bulk of these calls, need.
 */

/** SharedDict.incr */
export function incr(d: ItemStore, key: string, by: number, init: number | undefined, initTtlMs: number): IncrResult {
  d.checkNumber(by, 'incr step');
  if (init !== undefined) d.checkNumber(init, 'incr init');
  d.checkTtl(initTtlMs);
  const rec = d.enter(key);
  try {
    const f64 = d.f64;
    const it = d.find();
    if (it !== 0 && !d.expired(it)) {
      const at = d.numberSlot(it);
      if (at < 0) return INCR_NOT_A_NUMBER;
      const value = f64[at]! + by;
      d.setNumberAt(rec, it, at, value);
      return { value, forcible: false };
    }
    if (init === undefined) return INCR_NOT_FOUND;
    if (it !== 0) d.removeItem(rec, it);
    const value = init + by;
    const enc = d.encodeNumber(value);
    if (d.insert(rec, enc, d.expiresAt(initTtlMs), 0, true) === 0) {
      return { err: 'no memory', forcible: d.forcible };
    }
    return { value, forcible: d.forcible };
  } finally {
    unlock(d.i32, rec);
  }
}

/** SharedDict.compareAndSet */
export function compareAndSet(d: ItemStore, key: string, expected: number | undefined, next: number, ttlMs?: number): CasResult {
  if (expected !== undefined) d.checkNumber(expected, 'expected value');
  d.checkNumber(next, 'next value');
  if (ttlMs !== undefined) d.checkTtl(ttlMs);
  const rec = d.enter(key);
  try {
    const f64 = d.f64;
    const it = d.find();
    if (it !== 0 && !d.expired(it)) {
      const at = d.numberSlot(it);
      if (at < 0) return CAS_NOT_A_NUMBER;
      const cur = f64[at]!;
      if (expected === undefined || cur !== expected) return { ok: false, value: cur, forcible: false };
      d.setNumberAt(rec, it, at, next, ttlMs);
      return { ok: true, value: next, forcible: false };
    }
    if (expected !== undefined) return CAS_MISSING;
    if (it !== 0) d.removeItem(rec, it);
    const enc = d.encodeNumber(next);
    const expires = ttlMs === undefined ? 0 : d.expiresAt(ttlMs);
    if (d.insert(rec, enc, expires, 0, true) === 0) return { ok: false, err: 'no memory', forcible: d.forcible };
    return { ok: true, value: next, forcible: d.forcible };
  } finally {
    unlock(d.i32, rec);
  }
}

/** SharedDict.update */
export function update(d: ItemStore, key: string, fn: (current: DictValue | undefined) => DictValue | undefined, ttlMs?: number): UpdateResult {
  if (ttlMs !== undefined) d.checkTtl(ttlMs);
  const rec = d.enter(key);
  try {
    let it = d.find();
    if (it !== 0 && d.expired(it)) {
      d.removeItem(rec, it);
      it = 0;
    }
    let current: DictValue | undefined;
    // A number read and written in place, as incr does (counters are most updates).
    const at = it === 0 ? -1 : d.numberSlot(it);
    if (at >= 0) current = d.f64[at];
    else if (it !== 0) {
      const type = d.typeOf(it);
      current = type === T_LIST ? undefined : d.readItem(it, type);
      if (type === T_PACKED) current = unpackValue(current as Uint8Array);
    }
    d.inCallback = true;
    let next: DictValue | undefined;
    try {
      next = fn(current);
    } finally {
      d.inCallback = false;
    }
    if (next === undefined) return current === undefined ? UNCHANGED_MISSING : { ok: false, value: current, forcible: false };
    if (at >= 0 && typeof next === 'number') {
      d.setNumberAt(rec, it, at, next, ttlMs);
      return { ok: true, value: next, forcible: false };
    }
    encodeValue(next, d.enc);
    const expires = ttlMs === undefined ? (it === 0 ? 0 : d.f64[(it + I_EXPIRES) >> 3]!) : d.expiresAt(ttlMs);
    const flags = it === 0 ? 0 : d.i32[(it + I_FLAGS) >> 2]!;
    if (!d.store(rec, it, expires, flags, true)) return { ok: false, err: 'no memory', forcible: d.forcible };
    return { ok: true, value: next, forcible: d.forcible };
  } finally {
    unlock(d.i32, rec);
  }
}
