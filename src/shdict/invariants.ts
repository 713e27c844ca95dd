import { binOf } from './alloc.ts';
// A checker for tests and debugging, off the hot path: the layout by name, as layout.ts draws it.
import * as L from './layout.ts';

/*
 * Full structural check of one stripe: the arena tiles exactly into blocks, free blocks are
 * coalesced and each sits in the right bin, the eviction hand is on a block boundary, the
 * hash chains and the item count agree, and every list's nodes are accounted for. O(stripe size): used by tests and
 * by the master to decide whether a stripe left locked by a dead worker must be reset.
 */
export function stripeProblem(i32: Int32Array, g: L.Geometry, s: number): string | undefined {
  const rec = (L.HEADER_BYTES >> 2) + s * L.STRIPE_RECORD_WORDS;
  const start = g.arenaBase + s * g.arenaBytes;
  const end = start + g.arenaBytes - L.END_SENTINEL_BYTES;
  const hdr = (off: number): number => i32[off >> 2]!;

  const free = new Set<number>();
  const items = new Set<number>();
  const nodes = new Set<number>();
  let freeBytes = 0;
  let prevFree = false;
  let handOk = i32[rec + L.S_HAND] === end;
  let off = start;
  while (off < end) {
    if (off === i32[rec + L.S_HAND]) handOk = true;
    const h = hdr(off);
    const size = h & L.B_SIZE_MASK;
    if (size < L.MIN_BLOCK || off + size > end) return `block ${off}: bad size ${size}`;
    if (((h & L.B_PREV_FREE) !== 0) !== prevFree) return `block ${off}: L.B_PREV_FREE is wrong`;
    if ((h & L.B_FREE) !== 0) {
      if (prevFree) return `block ${off}: two adjacent free blocks`;
      if (hdr(off + size - 4) !== size) return `block ${off}: footer does not match`;
      free.add(off);
      freeBytes += size;
    } else if ((h & L.B_NODE) !== 0) {
      nodes.add(off);
    } else {
      const meta = hdr(off + L.I_META);
      const type = meta >>> L.META_TYPE_SHIFT;
      const vlen = type === L.T_LIST ? L.LIST_VALUE_BYTES : hdr(off + L.I_VLEN);
      if (type < L.T_NUMBER || type > L.T_LIST) return `item ${off}: bad type ${type}`;
      if (L.align8(L.I_KEY + (meta & L.META_KEY_MASK)) + vlen > size) return `item ${off}: overflows its block`;
      items.add(off);
    }
    prevFree = (h & L.B_FREE) !== 0;
    off += size;
  }
  if (off !== end) return `arena overruns its end`;
  if (!handOk) return `L.S_HAND ${i32[rec + L.S_HAND]} is not on a block boundary`;
  if (hdr(end) !== (L.END_SENTINEL_BYTES | (prevFree ? L.B_PREV_FREE : 0))) return `end sentinel damaged`;
  if (freeBytes !== i32[rec + L.S_FREE_BYTES]) return `L.S_FREE_BYTES ${i32[rec + L.S_FREE_BYTES]} != ${freeBytes}`;

  let filed = 0;
  for (let bin = 0; bin < L.BIN_COUNT; bin++) {
    let prev = 0;
    for (let b = i32[rec + L.S_BINS + bin]!; b !== 0; b = hdr(b + L.F_NEXT)) {
      if (!free.has(b) || ++filed > free.size) return `bin ${bin}: holds ${b}, not a free block`;
      if (binOf(hdr(b) & L.B_SIZE_MASK) !== bin) return `bin ${bin}: block ${b} has the wrong size`;
      if (hdr(b + L.F_PREV) !== prev) return `bin ${bin}: broken back link at ${b}`;
      prev = b;
    }
    const bit = (i32[rec + L.S_BITMAP + (bin >> 5)]! >>> (bin & 31)) & 1;
    if (bit !== (i32[rec + L.S_BINS + bin] !== 0 ? 1 : 0)) return `bin ${bin}: bitmap bit is wrong`;
  }
  if (filed !== free.size) return `${free.size - filed} free blocks are in no bin`;

  if (i32[rec + L.S_ITEMS] !== items.size) return `L.S_ITEMS ${i32[rec + L.S_ITEMS]} != ${items.size}`;
  const stripeBits = Math.log2(g.stripes);
  const index = (g.indexBase >> 2) + s * g.buckets;
  const chained = new Set<number>();
  for (let b = 0; b < g.buckets; b++) {
    for (let it = i32[index + b]!; it !== 0; it = hdr(it + L.I_CHAIN)) {
      if (!items.has(it) || chained.has(it)) return `bucket ${b}: bad or repeated item ${it}`;
      const hash = hdr(it + L.I_HASH);
      if ((hash & (g.stripes - 1)) !== s || ((hash >>> stripeBits) & (g.buckets - 1)) !== b) {
        return `item ${it}: in the wrong bucket`;
      }
      chained.add(it);
    }
  }
  if (chained.size !== items.size) return `${items.size - chained.size} items are in no bucket`;

  let listed = 0;
  for (const it of items) {
    const meta = hdr(it + L.I_META);
    if (meta >>> L.META_TYPE_SHIFT !== L.T_LIST) continue;
    const v = it + L.align8(L.I_KEY + (meta & L.META_KEY_MASK));
    let back = 0;
    let n = 0;
    for (let node = hdr(v + L.L_HEAD); node !== 0; node = hdr(node + L.N_NEXT)) {
      if (!nodes.has(node) || ++n > nodes.size) return `list ${it}: holds ${node}, not a node`;
      if (hdr(node + L.N_PREV) !== back) return `list ${it}: broken back link at ${node}`;
      if (L.N_VALUE + hdr(node + L.N_VLEN) > (hdr(node) & L.B_SIZE_MASK)) return `node ${node}: overflows its block`;
      back = node;
    }
    if (n === 0 || n !== hdr(v + L.L_LEN) || hdr(v + L.L_TAIL) !== back) return `list ${it}: length or tail is wrong`;
    listed += n;
  }
  if (listed !== nodes.size) return `${nodes.size - listed} list nodes belong to no list`;
  return undefined;
}
