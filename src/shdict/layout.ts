/*
 * Memory layout of one shared dict zone (a single fixed-size SharedArrayBuffer).
 *
 *  byte 0
 *  +--------------------------------------------------------------------------+
 *  | HEADER (HEADER_BYTES)   H_MAGIC H_VERSION H_CAPACITY H_STRIPES           |
 *  |                         H_BUCKETS H_ARENA_BYTES H_INDEX_BASE H_ARENA_BASE |
 *  +--------------------------------------------------------------------------+
 *  | STRIPE RECORD 0 (STRIPE_RECORD_BYTES, 64-byte aligned: no false sharing) |
 *  |   S_LOCK  S_WAITERS  S_ITEMS  S_FREE_BYTES  S_TICK  S_HAND               |
 *  |   S_BITMAP[BITMAP_WORDS]  S_BINS[BIN_COUNT]  (free-list heads)           |
 *  | STRIPE RECORD 1 ... STRIPE RECORD n-1                                    |
 *  +--------------------------------------------------------------------------+
 *  | HASH INDEX: stripe 0 buckets[H_BUCKETS] | stripe 1 buckets | ...         |
 *  |   each bucket: int32 byte offset of the first item of its chain, 0=empty |
 *  +--------------------------------------------------------------------------+
 *  | ARENA stripe 0 (H_ARENA_BYTES)                                           |
 *  |   [block][block][free block][block] ... [END SENTINEL]                   |
 *  | ARENA stripe 1 ...                                                       |
 *  +--------------------------------------------------------------------------+
 *
 *  Every block starts with a header word: size | B_FREE | B_PREV_FREE | B_NODE
 *  (sizes are multiples of 8, so the low 3 bits are free for flags).
 *
 *  item block (a key):                      free block:
 *   +0  header                               +0  header (B_FREE set)
 *   +4  I_CHAIN    next item in bucket        +4  F_NEXT  next in its bin
 *   +8  I_EXPIRES  float64 ms, 0 = never      +8  F_PREV  previous in its bin
 *   +16 I_STAMP    S_TICK at last use (LRU)   ...
 *   +20 I_HASH     32-bit key hash            size-4: footer = size (for coalescing)
 *   +24 I_FLAGS    uint32 user flags
 *   +28 I_META     key length | type << 24  list node block (B_NODE set):
 *   +32 I_VLEN     value byte length          +4  N_NEXT  +8 N_PREV
 *   +36 I_KEY      key bytes (UTF-8, padded   +12 N_TYPE  +16 N_VLEN
 *                  to a whole word)           +24 N_VALUE
 *   align8(36 + key length): value (a list item's value is L_HEAD L_TAIL L_LEN)
 *
 *  A 24-byte key holding a number takes 72 bytes, plus its share of the index (~3%).
 *
 *  Every offset stored in the zone is a byte offset from the start of the buffer;
 *  0 means "none", which is safe because offset 0 is the header, never a block.
 */

export const MAGIC = 0x53484454; // "SHDT"
export const VERSION = 1;

// Header words (Int32Array indices).
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_CAPACITY = 2;
export const H_STRIPES = 3;
export const H_BUCKETS = 4;
export const H_ARENA_BYTES = 5;
export const H_INDEX_BASE = 6;
export const H_ARENA_BASE = 7;
export const HEADER_BYTES = 64;

// Allocator bins: sizes below SMALL_LIMIT get one exact bin per 8 bytes; above that, each
// power of two is split into 2^SUB_BITS bins (two-level segregated fit), so any block in
// the bin found for a rounded-up request fits it and both alloc and free are O(1).
export const SMALL_LIMIT = 1024;
export const SMALL_BINS = SMALL_LIMIT >> 3;
export const SUB_BITS = 3;
export const FIRST_LARGE_LOG2 = 10; // log2(SMALL_LIMIT)
export const LAST_LARGE_LOG2 = 30; // a zone is < 2 GiB
export const BIN_COUNT = SMALL_BINS + (LAST_LARGE_LOG2 - FIRST_LARGE_LOG2 + 1) * (1 << SUB_BITS);
export const BITMAP_WORDS = Math.ceil(BIN_COUNT / 32);

// Stripe record words (Int32Array offsets from the record start).
export const S_LOCK = 0; // owner id holding the stripe, 0 = unlocked
export const S_WAITERS = 1; // threads parked in Atomics.wait on S_LOCK
export const S_ITEMS = 2; // keys in this stripe (expired but unreclaimed ones included)
export const S_FREE_BYTES = 3; // bytes in free blocks
export const S_TICK = 4; // items ever inserted in the stripe: the LRU clock
export const S_HAND = 5; // where the eviction sweep resumes (a block offset)
export const S_BITMAP = 8; // bit b set = S_BINS[b] non-empty
export const S_BINS = S_BITMAP + BITMAP_WORDS;
export const STRIPE_RECORD_WORDS = (S_BINS + BIN_COUNT + 15) & ~15;
export const STRIPE_RECORD_BYTES = STRIPE_RECORD_WORDS * 4;

// Block header bits.
export const B_FREE = 1;
export const B_PREV_FREE = 2;
export const B_NODE = 4;
export const B_SIZE_MASK = ~7;
export const MIN_BLOCK = 16; // header + two free-list links + footer
export const END_SENTINEL_BYTES = 8; // a permanently used block closing each arena

// Free block fields (byte offsets from the block).
export const F_NEXT = 4;
export const F_PREV = 8;

// Item fields (byte offsets from the block).
export const I_CHAIN = 4;
export const I_EXPIRES = 8;
export const I_STAMP = 16;
export const I_HASH = 20;
export const I_FLAGS = 24;
export const I_META = 28;
export const I_VLEN = 32;
export const I_KEY = 36;
export const META_KEY_MASK = 0xffff;
export const META_TYPE_SHIFT = 24;

// List item value (byte offsets from the value start).
export const L_HEAD = 0;
export const L_TAIL = 4;
export const L_LEN = 8;
export const LIST_VALUE_BYTES = 12;

// List node fields (byte offsets from the block).
export const N_NEXT = 4;
export const N_PREV = 8;
export const N_TYPE = 12;
export const N_VLEN = 16;
export const N_VALUE = 24;

// Value types stored in I_META / N_TYPE.
export const T_NUMBER = 1; // float64, 8-byte aligned
export const T_TRUE = 2;
export const T_FALSE = 3;
export const T_ASCII = 4; // string whose UTF-8 bytes are its char codes
export const T_UTF8 = 5;
export const T_BYTES = 6;
export const T_PACKED = 7; // msgpackr
export const T_LIST = 8;

// I_EXPIRES written by flushAll: expired at any clock reading, yet still readable by getStale.
export const EXPIRES_FLUSHED = -1;

export const MAX_KEY_BYTES = 65535;
export const MIN_CAPACITY = 8192;
export const MAX_CAPACITY = 0x7fff_0000; // offsets are int32
const BYTES_PER_STRIPE = 1 << 20;
const MAX_STRIPES = 64;
const ARENA_BYTES_PER_BUCKET = 128;

export const align8 = (n: number): number => (n + 7) & ~7;

export type Geometry = {
  readonly capacity: number;
  readonly stripes: number;
  readonly buckets: number;
  readonly arenaBytes: number;
  readonly indexBase: number;
  readonly arenaBase: number;
};

const floorPow2 = (n: number): number => (n < 1 ? 1 : 2 ** Math.floor(Math.log2(n)));

/**
 * Splits a zone of `capacity` bytes. One stripe per MiB (up to MAX_STRIPES) keeps the
 * largest storable item (one stripe's arena) large while giving enough stripes that
 * workers rarely meet on one lock; one bucket per ARENA_BYTES_PER_BUCKET arena bytes keeps
 * chains short for ~72-byte counters at a ~3% index cost.
 */
export function computeGeometry(capacity: number, stripesOpt?: number): Geometry {
  const stripes = stripesOpt ?? Math.min(MAX_STRIPES, floorPow2(capacity / BYTES_PER_STRIPE));
  const indexBase = HEADER_BYTES + stripes * STRIPE_RECORD_BYTES;
  const perStripe = Math.floor((capacity - indexBase) / stripes);
  const buckets = Math.max(8, floorPow2(perStripe / (ARENA_BYTES_PER_BUCKET + 4)));
  const arenaBase = (indexBase + stripes * buckets * 4 + 63) & ~63;
  const arenaBytes = Math.floor((capacity - arenaBase) / stripes) & ~63;
  return { capacity, stripes, buckets, arenaBytes, indexBase, arenaBase };
}
