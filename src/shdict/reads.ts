import { type DictValue, unpackValue } from './codec.ts';
import type { ItemStore } from './items.ts';
import { I_EXPIRES, I_FLAGS, T_LIST, T_PACKED } from './layout.ts';
import { unlock } from './lock.ts';
import type { StaleValue } from './results.ts';

/*
 * Keyed reads. A value is copied out under the stripe lock; msgpack is decoded after the
 * lock is released (codec.ts).
 */

/** The value, or undefined when missing, expired or a list. */
export function get(d: ItemStore, key: string): DictValue | undefined {
  const rec = d.enter(key);
  let v: DictValue | undefined;
  let type = 0;
  try {
    const it = d.find();
    if (it === 0 || d.expired(it)) return undefined;
    type = d.typeOf(it);
    if (type === T_LIST) return undefined;
    d.touch(rec, it);
    v = d.readItem(it, type);
  } finally {
    unlock(d.i32, rec);
  }
  return type === T_PACKED ? unpackValue(v as Uint8Array) : v;
}

/** The value with its flags; an expired item not yet reclaimed only when `stale`, then marked so. */
export function lookup(d: ItemStore, key: string, stale: boolean): StaleValue | undefined {
  const rec = d.enter(key);
  let v: DictValue;
  let type: number;
  let flags: number;
  let isStale: boolean;
  try {
    const it = d.find();
    if (it === 0) return undefined;
    isStale = d.expired(it);
    type = d.typeOf(it);
    if ((isStale && !stale) || type === T_LIST) return undefined;
    if (!isStale) d.touch(rec, it);
    flags = d.i32[(it + I_FLAGS) >> 2]! >>> 0;
    v = d.readItem(it, type);
  } finally {
    unlock(d.i32, rec);
  }
  return { value: type === T_PACKED ? unpackValue(v as Uint8Array) : v, flags, stale: isStale };
}

/** Ms left to live; 0 = never expires; undefined = missing or expired. */
export function ttl(d: ItemStore, key: string): number | undefined {
  const rec = d.enter(key);
  try {
    const it = d.find();
    if (it === 0) return undefined;
    const e = d.f64[(it + I_EXPIRES) >> 3]!;
    if (e === 0) return 0;
    const left = e - d.clock();
    return left > 0 ? left : undefined;
  } finally {
    unlock(d.i32, rec);
  }
}
