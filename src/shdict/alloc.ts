import {
  B_FREE,
  B_NODE,
  B_PREV_FREE,
  B_SIZE_MASK,
  BIN_COUNT,
  BITMAP_WORDS,
  END_SENTINEL_BYTES,
  F_NEXT,
  F_PREV,
  FIRST_LARGE_LOG2,
  LAST_LARGE_LOG2,
  MIN_BLOCK,
  S_BINS,
  S_BITMAP,
  S_FREE_BYTES,
  S_HAND,
  SMALL_BINS,
  SMALL_LIMIT,
  SUB_BITS,
} from './layout.ts';

/*
 * Per-stripe block allocator: boundary tags with immediate coalescing and two-level
 * segregated free lists (TLSF). Every stripe owns its own arena, so allocation happens under
 * the stripe lock already held and there is no global allocator lock for workers to queue on.
 * Coalescing is what keeps mixed sizes from fragmenting the zone (the slab classes of
 * OpenResty do not coalesce, hence its "one dict per item size" advice).
 *
 * All functions take the zone's Int32Array, the stripe record index `rec`, and byte offsets.
 */

/** Bin holding free blocks of `size` bytes (rounding down). */
export function binOf(size: number): number {
  if (size < SMALL_LIMIT) return size >> 3;
  const fl = 31 - Math.clz32(size);
  return SMALL_BINS + ((fl - FIRST_LARGE_LOG2) << SUB_BITS) + ((size >>> (fl - SUB_BITS)) & ((1 << SUB_BITS) - 1));
}

/** Bin from which any block fits `size` (rounding up to the next bin boundary), or -1. */
function binForRequest(size: number): number {
  if (size < SMALL_LIMIT) return size >> 3;
  const step = 1 << (31 - Math.clz32(size) - SUB_BITS);
  const rounded = (size + step - 1) & -step;
  if (rounded <= 0 || 31 - Math.clz32(rounded) > LAST_LARGE_LOG2) return -1;
  return binOf(rounded);
}

function insertFree(i32: Int32Array, rec: number, off: number, size: number): void {
  const bin = binOf(size);
  const head = i32[rec + S_BINS + bin]!;
  i32[(off + F_NEXT) >> 2] = head;
  i32[(off + F_PREV) >> 2] = 0;
  if (head !== 0) i32[(head + F_PREV) >> 2] = off;
  i32[rec + S_BINS + bin] = off;
  i32[rec + S_BITMAP + (bin >> 5)]! |= 1 << (bin & 31);
}

function removeFree(i32: Int32Array, rec: number, off: number, size: number): void {
  const next = i32[(off + F_NEXT) >> 2]!;
  const prev = i32[(off + F_PREV) >> 2]!;
  if (next !== 0) i32[(next + F_PREV) >> 2] = prev;
  if (prev !== 0) {
    i32[(prev + F_NEXT) >> 2] = next;
  } else {
    const bin = binOf(size);
    i32[rec + S_BINS + bin] = next;
    if (next === 0) i32[rec + S_BITMAP + (bin >> 5)]! &= ~(1 << (bin & 31));
  }
}

/** Turns `[off, off + size)` into one free block (no neighbour is free) and files it. */
function fileFree(i32: Int32Array, rec: number, off: number, size: number): void {
  i32[off >> 2] = size | B_FREE;
  i32[(off + size - 4) >> 2] = size;
  insertFree(i32, rec, off, size);
  i32[(off + size) >> 2]! |= B_PREV_FREE;
}

/** Formats a stripe arena as one free block followed by the end sentinel. */
export function initArena(i32: Int32Array, rec: number, arena: number, arenaBytes: number): void {
  i32.fill(0, rec + S_BITMAP, rec + S_BITMAP + BITMAP_WORDS);
  i32.fill(0, rec + S_BINS, rec + S_BINS + BIN_COUNT);
  const size = arenaBytes - END_SENTINEL_BYTES;
  i32[(arena + size) >> 2] = END_SENTINEL_BYTES; // used, never freed: every block has a successor
  fileFree(i32, rec, arena, size);
  i32[rec + S_FREE_BYTES] = size;
  i32[rec + S_HAND] = arena;
}

// Blocks of a large bin differ in size, so a request is served from the next bin up, where
// every block fits. When that finds nothing, the request's own bin may still hold a block
// big enough (say, the one just freed by evicting an item of the same size): look at a few.
const SAME_BIN_PROBES = 8;

function findFit(i32: Int32Array, rec: number, size: number): number {
  const bin = binForRequest(size);
  if (bin >= 0) {
    let w = bin >> 5;
    let bits = i32[rec + S_BITMAP + w]! & (-1 << (bin & 31));
    while (bits === 0 && ++w < BITMAP_WORDS) bits = i32[rec + S_BITMAP + w]!;
    if (bits !== 0) return i32[rec + S_BINS + (w << 5) + 31 - Math.clz32(bits & -bits)]!;
  }
  let off = i32[rec + S_BINS + binOf(size)]!;
  for (let n = 0; off !== 0 && n < SAME_BIN_PROBES; n++) {
    if ((i32[off >> 2]! & B_SIZE_MASK) >= size) return off;
    off = i32[(off + F_NEXT) >> 2]!;
  }
  return 0;
}

/** Allocates `size` bytes (a multiple of 8, >= MIN_BLOCK); returns the block offset or 0. */
export function alloc(i32: Int32Array, rec: number, size: number): number {
  const off = findFit(i32, rec, size);
  if (off === 0) return 0;
  const have = i32[off >> 2]! & B_SIZE_MASK;
  removeFree(i32, rec, off, have);
  // A free block's predecessor is never free (coalescing), so the new header has no flags.
  if (have - size >= MIN_BLOCK) {
    i32[off >> 2] = size;
    fileFree(i32, rec, off + size, have - size);
    i32[rec + S_FREE_BYTES]! -= size;
  } else {
    i32[off >> 2] = have;
    i32[(off + have) >> 2]! &= ~B_PREV_FREE;
    i32[rec + S_FREE_BYTES]! -= have;
  }
  return off;
}

/**
 * Frees a used block, merging it with free neighbours. The eviction sweep's S_HAND must
 * stay on a block boundary, so it follows a block that is merged into its predecessor.
 */
export function free(i32: Int32Array, rec: number, off: number): void {
  const hdr = i32[off >> 2]!;
  let size = hdr & B_SIZE_MASK;
  i32[rec + S_FREE_BYTES]! += size;
  const next = off + size;
  const nextHdr = i32[next >> 2]!;
  if ((nextHdr & B_FREE) !== 0) {
    const nextSize = nextHdr & B_SIZE_MASK;
    removeFree(i32, rec, next, nextSize);
    size += nextSize;
    if (i32[rec + S_HAND] === next) i32[rec + S_HAND] = off;
  }
  if ((hdr & B_PREV_FREE) !== 0) {
    const prevSize = i32[(off - 4) >> 2]!;
    removeFree(i32, rec, off - prevSize, prevSize);
    if (i32[rec + S_HAND] === off) i32[rec + S_HAND] = off - prevSize;
    off -= prevSize;
    size += prevSize;
  }
  fileFree(i32, rec, off, size);
}

/** Gives back the tail of a used block beyond `size` bytes, if that tail can be a block. */
export function shrink(i32: Int32Array, rec: number, off: number, size: number): void {
  const hdr = i32[off >> 2]!;
  const have = hdr & B_SIZE_MASK;
  if (have - size < MIN_BLOCK) return;
  i32[off >> 2] = size | (hdr & (B_PREV_FREE | B_NODE));
  const tail = off + size;
  i32[tail >> 2] = have - size; // a used block, so free() can merge it with what follows
  free(i32, rec, tail);
}

/** Bytes an allocation of `size` really occupies, for callers that reuse a block in place. */
export function blockSize(i32: Int32Array, off: number): number {
  return i32[off >> 2]! & B_SIZE_MASK;
}
