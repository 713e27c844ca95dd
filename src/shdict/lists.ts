import { alloc, free } from './alloc.ts';
import { encodeValue, readValue, writeValue } from './codec.ts';
import { ShdictError } from './errors.ts';
import type { ItemStore } from './items.ts';
import { align8, B_NODE, L_HEAD, L_LEN, L_TAIL, N_NEXT, N_PREV, N_TYPE, N_VALUE, N_VLEN, T_LIST } from './layout.ts';
import { unlock } from './lock.ts';
import { PUSH_NO_MEMORY, PUSH_NOT_A_LIST, type ListValue, type PushResult } from './results.ts';

/*
 * Lists: an item of type T_LIST holds head, tail and length (LIST_VALUE); each element is a
 * node block of its own (B_NODE), doubly linked. Pushes never evict; a list is removed once
 * its last element is popped, as in OpenResty. (Removing a list item frees its nodes:
 * items.ts `removeItem`.)
 */

/** Pushes to the head (`head`) or the tail of a list, created if missing. */
export function push(d: ItemStore, key: string, value: ListValue, head: boolean): PushResult {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new ShdictError('SHDICT_ERR_BAD_VALUE', 'shdict list values must be strings or numbers');
  }
  const rec = d.enter(key);
  try {
    const i32 = d.i32;
    let it = d.find();
    if (it !== 0 && d.expired(it)) {
      d.removeItem(rec, it);
      it = 0;
    }
    if (it !== 0 && d.typeOf(it) !== T_LIST) return PUSH_NOT_A_LIST;
    const created = it === 0;
    if (created) {
      d.enc.type = T_LIST;
      it = d.insert(rec, d.enc, 0, 0, false);
      if (it === 0) return PUSH_NO_MEMORY;
    }
    encodeValue(value, d.enc);
    const node = alloc(i32, rec, align8(N_VALUE + d.enc.byteLength));
    if (node === 0) {
      if (created) d.removeItem(rec, it);
      return PUSH_NO_MEMORY;
    }
    i32[node >> 2]! |= B_NODE;
    i32[(node + N_TYPE) >> 2] = d.enc.type;
    i32[(node + N_VLEN) >> 2] = d.enc.byteLength;
    writeValue(d.u8, d.f64, d.buf, node + N_VALUE, d.enc);
    const v = d.valueOf(it);
    const [near, far, toward, away] = head ? [L_HEAD, L_TAIL, N_PREV, N_NEXT] : [L_TAIL, L_HEAD, N_NEXT, N_PREV];
    const old = i32[(v + near) >> 2]!;
    i32[(node + away) >> 2] = old;
    i32[(node + toward) >> 2] = 0;
    if (old !== 0) i32[(old + toward) >> 2] = node;
    else i32[(v + far) >> 2] = node;
    i32[(v + near) >> 2] = node;
    const length = ++i32[(v + L_LEN) >> 2]!;
    d.touch(rec, it);
    return { length };
  } finally {
    unlock(d.i32, rec);
  }
}

/** Pops the head (`head`) or the tail of a list; undefined if missing, expired or not a list. */
export function pop(d: ItemStore, key: string, head: boolean): ListValue | undefined {
  const rec = d.enter(key);
  try {
    const i32 = d.i32;
    const it = d.find();
    if (it === 0 || d.expired(it) || d.typeOf(it) !== T_LIST) return undefined;
    const v = d.valueOf(it);
    const [near, far, toward, away] = head ? [L_HEAD, L_TAIL, N_PREV, N_NEXT] : [L_TAIL, L_HEAD, N_NEXT, N_PREV];
    const node = i32[(v + near) >> 2]!;
    const type = i32[(node + N_TYPE) >> 2]!;
    const value = readValue(d.u8, d.f64, d.buf, node + N_VALUE, type, i32[(node + N_VLEN) >> 2]!);
    const rest = i32[(node + away) >> 2]!;
    i32[(v + near) >> 2] = rest;
    if (rest !== 0) i32[(rest + toward) >> 2] = 0;
    else i32[(v + far) >> 2] = 0;
    free(i32, rec, node);
    // OpenResty removes a list once it is empty.
    if (--i32[(v + L_LEN) >> 2]! === 0) d.removeItem(rec, it);
    else d.touch(rec, it);
    return value as ListValue;
  } finally {
    unlock(d.i32, rec);
  }
}

/** List length; 0 if missing, expired or not a list. */
export function llen(d: ItemStore, key: string): number {
  const rec = d.enter(key);
  try {
    const it = d.find();
    if (it === 0 || d.expired(it) || d.typeOf(it) !== T_LIST) return 0;
    return d.i32[(d.valueOf(it) + L_LEN) >> 2]!;
  } finally {
    unlock(d.i32, rec);
  }
}
