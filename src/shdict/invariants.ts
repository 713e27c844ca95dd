import { binOf } from './alloc.ts';
import {
  B_FREE,
  B_NODE,
  B_PREV_FREE,
  B_SIZE_MASK,
  BIN_COUNT,
  END_SENTINEL_BYTES,
  F_NEXT,
  F_PREV,
  type Geometry,
  HEADER_BYTES,
  I_CHAIN,
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
  MIN_BLOCK,
  N_NEXT,
  N_PREV,
  N_VALUE,
  N_VLEN,
  S_BINS,
  S_BITMAP,
  S_FREE_BYTES,
  S_ITEMS,
  S_HAND,
  STRIPE_RECORD_WORDS,
  T_LIST,
  T_NUMBER,
  align8,
} from './layout.ts';

/*
 * Full structural check of one stripe: the arena tiles exactly into blocks, free blocks are
 * coalesced and each sits in the right bin, the eviction hand is on a block boundary, the
 * hash chains and the item count agree, and every list's nodes are accounted for. O(stripe size): used by tests and
 * by the master to decide whether a stripe left locked by a dead worker must be reset.
 */
export function stripeProblem(i32: Int32Array, g: Geometry, s: number): string | undefined {
  const rec = (HEADER_BYTES >> 2) + s * STRIPE_RECORD_WORDS;
  const start = g.arenaBase + s * g.arenaBytes;
  const end = start + g.arenaBytes - END_SENTINEL_BYTES;
  const hdr = (off: number): number => i32[off >> 2]!;

  const free = new Set<number>();
  const items = new Set<number>();
  const nodes = new Set<number>();
  let freeBytes = 0;
  let prevFree = false;
  let handOk = i32[rec + S_HAND] === end;
  let off = start;
  while (off < end) {
    if (off === i32[rec + S_HAND]) handOk = true;
    const h = hdr(off);
    const size = h & B_SIZE_MASK;
    if (size < MIN_BLOCK || off + size > end) return `block ${off}: bad size ${size}`;
    if (((h & B_PREV_FREE) !== 0) !== prevFree) return `block ${off}: B_PREV_FREE is wrong`;
    if ((h & B_FREE) !== 0) {
      if (prevFree) return `block ${off}: two adjacent free blocks`;
      if (hdr(off + size - 4) !== size) return `block ${off}: footer does not match`;
      free.add(off);
      freeBytes += size;
    } else if ((h & B_NODE) !== 0) {
      nodes.add(off);
    } else {
      const meta = hdr(off + I_META);
      const type = meta >>> META_TYPE_SHIFT;
      const vlen = type === T_LIST ? LIST_VALUE_BYTES : hdr(off + I_VLEN);
      if (type < T_NUMBER || type > T_LIST) return `item ${off}: bad type ${type}`;
      if (align8(I_KEY + (meta & META_KEY_MASK)) + vlen > size) return `item ${off}: overflows its block`;
      items.add(off);
    }
    prevFree = (h & B_FREE) !== 0;
    off += size;
  }
  if (off !== end) return `arena overruns its end`;
  if (!handOk) return `S_HAND ${i32[rec + S_HAND]} is not on a block boundary`;
  if (hdr(end) !== (END_SENTINEL_BYTES | (prevFree ? B_PREV_FREE : 0))) return `end sentinel damaged`;
  if (freeBytes !== i32[rec + S_FREE_BYTES]) return `S_FREE_BYTES ${i32[rec + S_FREE_BYTES]} != ${freeBytes}`;

  let filed = 0;
  for (let bin = 0; bin < BIN_COUNT; bin++) {
    let prev = 0;
    for (let b = i32[rec + S_BINS + bin]!; b !== 0; b = hdr(b + F_NEXT)) {
      if (!free.has(b) || ++filed > free.size) return `bin ${bin}: holds ${b}, not a free block`;
      if (binOf(hdr(b) & B_SIZE_MASK) !== bin) return `bin ${bin}: block ${b} has the wrong size`;
      if (hdr(b + F_PREV) !== prev) return `bin ${bin}: broken back link at ${b}`;
      prev = b;
    }
    const bit = (i32[rec + S_BITMAP + (bin >> 5)]! >>> (bin & 31)) & 1;
    if (bit !== (i32[rec + S_BINS + bin] !== 0 ? 1 : 0)) return `bin ${bin}: bitmap bit is wrong`;
  }
  if (filed !== free.size) return `${free.size - filed} free blocks are in no bin`;

  if (i32[rec + S_ITEMS] !== items.size) return `S_ITEMS ${i32[rec + S_ITEMS]} != ${items.size}`;
  const stripeBits = Math.log2(g.stripes);
  const index = (g.indexBase >> 2) + s * g.buckets;
  const chained = new Set<number>();
  for (let b = 0; b < g.buckets; b++) {
    for (let it = i32[index + b]!; it !== 0; it = hdr(it + I_CHAIN)) {
      if (!items.has(it) || chained.has(it)) return `bucket ${b}: bad or repeated item ${it}`;
      const hash = hdr(it + I_HASH);
      if ((hash & (g.stripes - 1)) !== s || ((hash >>> stripeBits) & (g.buckets - 1)) !== b) {
        return `item ${it}: in the wrong bucket`;
      }
      chained.add(it);
    }
  }
  if (chained.size !== items.size) return `${items.size - chained.size} items are in no bucket`;

  let listed = 0;
  for (const it of items) {
    const meta = hdr(it + I_META);
    if (meta >>> META_TYPE_SHIFT !== T_LIST) continue;
    const v = it + align8(I_KEY + (meta & META_KEY_MASK));
    let back = 0;
    let n = 0;
    for (let node = hdr(v + L_HEAD); node !== 0; node = hdr(node + N_NEXT)) {
      if (!nodes.has(node) || ++n > nodes.size) return `list ${it}: holds ${node}, not a node`;
      if (hdr(node + N_PREV) !== back) return `list ${it}: broken back link at ${node}`;
      if (N_VALUE + hdr(node + N_VLEN) > (hdr(node) & B_SIZE_MASK)) return `node ${node}: overflows its block`;
      back = node;
    }
    if (n === 0 || n !== hdr(v + L_LEN) || hdr(v + L_TAIL) !== back) return `list ${it}: length or tail is wrong`;
    listed += n;
  }
  if (listed !== nodes.size) return `${nodes.size - listed} list nodes belong to no list`;
  return undefined;
}
