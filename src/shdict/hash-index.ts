import { DictState } from './dict-state.ts';
import { I_CHAIN, I_HASH, I_KEY, I_META, META_KEY_MASK } from './layout.ts';

/**
 * The hash index: per stripe, a power-of-two array of buckets, each the head of a chain of
 * items linked through I_CHAIN. The low bits of a key's hash pick its stripe, the next ones
 * its bucket, and I_HASH is compared before the key bytes.
 */
export class HashIndex extends DictState {
  /** Int32Array index of the bucket for `hash`. */
  bucketOf(hash: number): number {
    const g = this.geometry;
    return (g.indexBase >> 2) + (hash & this.stripeMask) * g.buckets + ((hash >>> this.stripeBits) & this.bucketMask);
  }

  /** The item holding the probe's key, or 0. */
  find(): number {
    const { i32, probe } = this;
    const h = probe.hash;
    for (let it = i32[this.bucketOf(h)]!; it !== 0; it = i32[(it + I_CHAIN) >> 2]!) {
      if (i32[(it + I_HASH) >> 2] === h && probe.matches(i32, it + I_KEY, i32[(it + I_META) >> 2]! & META_KEY_MASK)) {
        return it;
      }
    }
    return 0;
  }

  /** Puts item `it` (of key hash `hash`) at the head of its bucket's chain. */
  link(it: number, hash: number): void {
    const i32 = this.i32;
    const bucket = this.bucketOf(hash);
    i32[(it + I_CHAIN) >> 2] = i32[bucket]!;
    i32[bucket] = it;
  }

  /** Takes item `it` out of its bucket's chain. */
  unlink(it: number): void {
    const i32 = this.i32;
    let at = this.bucketOf(i32[(it + I_HASH) >> 2]!);
    while (i32[at] !== it) at = (i32[at]! + I_CHAIN) >> 2;
    i32[at] = i32[(it + I_CHAIN) >> 2]!;
  }
}
