import { alloc, blockSize, free, shrink } from './alloc.ts';
import { type DictValue, type EncodedValue, readValue, writeValue } from './codec.ts';
import { ExpiryEviction, MAX_EVICTIONS } from './expiry-eviction.ts';
import {
  align8,
  I_EXPIRES,
  I_FLAGS,
  I_HASH,
  I_KEY,
  I_META,
  I_VLEN,
  L_HEAD,
  L_LEN,
  L_TAIL,
  LIST_VALUE_BYTES,
  META_KEY_MASK,
  META_TYPE_SHIFT,
  N_NEXT,
  S_ITEMS,
  T_LIST,
  T_NUMBER,
} from './layout.ts';

/**
 * Items: reading and writing an item's fields and value, and an item's life cycle
 * (allocate, evicting if allowed; fill; link into the index; store in place; remove).
 * All of it runs under the item's stripe lock, with the key in `probe` and the value to
 * store already encoded in `enc`. The operations (reads.ts, writes.ts...) work on this.
 */
export class ItemStore extends ExpiryEviction {
  typeOf(it: number): number {
    return this.i32[(it + I_META) >> 2]! >>> META_TYPE_SHIFT;
  }

  /** Byte offset of item `it`'s value. */
  valueOf(it: number): number {
    return it + align8(I_KEY + (this.i32[(it + I_META) >> 2]! & META_KEY_MASK));
  }

  /** Item `it`'s value (msgpack still packed: see codec.ts `readValue`). */
  readItem(it: number, type: number): DictValue {
    return readValue(this.u8, this.f64, this.buf, this.valueOf(it), type, this.i32[(it + I_VLEN) >> 2]!);
  }

  /** The Float64Array index of item `it`'s number value, or -1 when it holds another type. */
  numberSlot(it: number): number {
    const meta = this.i32[(it + I_META) >> 2]!;
    if (meta >>> META_TYPE_SHIFT !== T_NUMBER) return -1;
    return (it + align8(I_KEY + (meta & META_KEY_MASK))) >> 3;
  }

  /** Stores `value` in item `it`'s number slot `at` (see numberSlot), with a new expiry when `ttlMs` is given. */
  setNumberAt(rec: number, it: number, at: number, value: number, ttlMs?: number): void {
    this.f64[at] = value;
    if (ttlMs !== undefined) this.f64[(it + I_EXPIRES) >> 3] = this.expiresAt(ttlMs);
    this.touch(rec, it);
  }

  /** Puts a number in `enc` without going through encodeValue. */
  encodeNumber(n: number): EncodedValue {
    const enc = this.enc;
    enc.type = T_NUMBER;
    enc.byteLength = 8;
    enc.num = n;
    return enc;
  }

  /**
   * Stores `enc` under the probe's key: in place when it fits the existing item's block
   * (giving back any surplus), else as a new item. False = no memory.
   */
  store(rec: number, it: number, expires: number, flags: number, evict: boolean): boolean {
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
  insert(rec: number, enc: EncodedValue, expires: number, flags: number, evict: boolean): number {
    const valueAt = align8(I_KEY + this.probe.byteLength);
    const vlen = enc.type === T_LIST ? LIST_VALUE_BYTES : enc.byteLength;
    const it = this.allocate(rec, align8(valueAt + vlen), evict);
    if (it === 0) return 0;
    const i32 = this.i32;
    const hash = this.probe.hash;
    i32[(it + I_HASH) >> 2] = hash;
    this.probe.write(i32, it + I_KEY);
    this.fillItem(it, valueAt, expires, flags);
    this.link(it, hash);
    this.stampNew(rec, it);
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

  /** alloc, then (if allowed) evict until the block fits; sets `forcible` when a live item goes. */
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

  /** Unlinks and frees item `it`, with its list nodes if it is a list. */
  removeItem(rec: number, it: number): void {
    const i32 = this.i32;
    this.unlink(it);
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
}
