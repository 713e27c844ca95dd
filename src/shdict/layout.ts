/*
 * Memory layout of one shared dict zone (a single fixed-size SharedArrayBuffer).
 *
 * Every offset below is DERIVED from the field tables in this file (ZONE_HEADER,
 * STRIPE_RECORD, ITEM, ...): a field sits at the end of the one before it, rounded up to
 * its alignment, and a record is padded to its `padTo`. Edit a table, never an offset.
 * The tables (with the bit fields, tags and constants listed in LAYOUT_TABLES) are also
 * what the zone's layout identity is hashed from (identity.ts), so a change to any of them
 * makes a zone written by the old code unattachable rather than misread.
 * test/unit/shdict/layout.test.ts pins every offset drawn here.
 *
 *  byte 0
 *  +--------------------------------------------------------------------------------+
 *  | ZONE HEADER (64 bytes)  +0 magic  +4 layout  +8 capacity  +12 stripes           |
 *  |                         +16 buckets  +20 arenaBytes  +24 indexBase +28 arenaBase|
 *  |   (magic and layout are the PREAMBLE: at +0 and +4 in every layout, ever)       |
 *  +--------------------------------------------------------------------------------+
 *  | STRIPE RECORD 0 (1280 bytes, a multiple of 64: no false sharing between stripes)|
 *  |   +0 lock  +4 waiters  +8 items  +12 freeBytes  +16 tick  +20 hand  +24 spare   |
 *  |   +32 bitmap[10 words]  +72 bins[296 words] (free-list heads)                   |
 *  | STRIPE RECORD 1 ... STRIPE RECORD n-1                                           |
 *  +--------------------------------------------------------------------------------+
 *  | HASH INDEX: stripe 0 buckets[buckets] | stripe 1 buckets | ...                  |
 *  |   each bucket: int32 byte offset of the first item of its chain, 0 = empty      |
 *  +--------------------------------------------------------------------------------+
 *  | ARENA stripe 0 (arenaBytes)                                                     |
 *  |   [block][block][free block][block] ... [END SENTINEL (8 bytes)]               |
 *  | ARENA stripe 1 ...                                                              |
 *  +--------------------------------------------------------------------------------+
 *
 *  Every block starts with a header word: size | free (1) | prevFree (2) | node (4)
 *  (sizes are multiples of 8, so the low 3 bits are free for flags).
 *
 *  item block (a key):                      free block:
 *   +0  header                               +0  header (free set)
 *   +4  chain    next item in bucket          +4  next  next in its bin
 *   +8  expires  float64 ms, 0 = never        +8  prev  previous in its bin
 *   +16 stamp    stripe tick at last use      ...
 *   +20 hash     32-bit key hash              size-4: footer = size (for coalescing)
 *   +24 flags    uint32 user flags
 *   +28 meta     key length (bits 0-15) | type (bits 24-31)
 *   +32 vlen     value byte length          list node block (node set):
 *   +36 key      key bytes (UTF-8, padded    +4 next  +8 prev  +12 type  +16 vlen
 *                to a whole word)            +24 value (8-byte aligned)
 *   align8(36 + key length): value (a list item's value is +0 head +4 tail +8 len)
 *
 *  A 24-byte key holding a number takes 72 bytes, plus its share of the index (~3%).
 *
 *  Every offset stored in the zone is a byte offset from the start of the buffer;
 *  0 means "none", which is safe because offset 0 is the header, never a block.
 */

// ---- the field table machinery ------------------------------------------------------

/** [name, size in bytes (0 = variable length, last field only), alignment (default: size, at most 8)] */
type FieldSpec = readonly [name: string, bytes: number, align?: number];

export type Struct<N extends string> = {
  readonly name: string;
  /** The table as written: what the layout identity hashes. */
  readonly fields: readonly FieldSpec[];
  /** Byte offset of each field from the start of the record. */
  readonly at: { readonly [K in N]: number };
  /** Bytes up to the end of the last fixed field (padded to `padTo` when given). */
  readonly size: number;
};

/** `n` rounded up to a multiple of `to`. */
function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Lays out `fields` in order, each at the end of the previous one rounded up to its alignment. */
export function struct<const F extends readonly FieldSpec[]>(name: string, fields: F, padTo = 1): Struct<F[number][0]> {
  const at: Record<string, number> = {};
  let off = 0;
  fields.forEach(([field, bytes, alignment = Math.min(8, Math.max(1, bytes))], i) => {
    if (bytes === 0 && i !== fields.length - 1) throw new Error(`layout ${name}.${field}: only the last field may be variable`);
    if (field in at) throw new Error(`layout ${name}.${field}: defined twice`);
    off = align(off, alignment);
    at[field] = off;
    off += bytes;
  });
  return { name, fields, at: at as Struct<F[number][0]>['at'], size: align(off, padTo) };
}

/** Single-bit flags, lowest bit first. */
function flags<const N extends string>(names: readonly N[]): { readonly [K in N]: number } {
  return Object.fromEntries(names.map((n, i) => [n, 1 << i])) as { [K in N]: number };
}

/** Value tags, numbered from 1 in order (0 = none). */
function tags<const N extends string>(names: readonly N[]): { readonly [K in N]: number } {
  return Object.fromEntries(names.map((n, i) => [n, i + 1])) as { [K in N]: number };
}

const i32 = 4; // an int32 field
const f64 = 8; // a float64 field (8-byte aligned)

// ---- allocator bins (they size the stripe record) -----------------------------------

// Sizes below SMALL_LIMIT get one exact bin per 8 bytes; above that, each power of two is
// split into 2^SUB_BITS bins (two-level segregated fit), so any block in the bin found for
// a rounded-up request fits it and both alloc and free are O(1).
export const SMALL_LIMIT = 1024;
export const SMALL_BINS = SMALL_LIMIT >> 3;
export const SUB_BITS = 3;
export const FIRST_LARGE_LOG2 = 10; // log2(SMALL_LIMIT)
export const LAST_LARGE_LOG2 = 30; // a zone is < 2 GiB
export const BIN_COUNT = SMALL_BINS + (LAST_LARGE_LOG2 - FIRST_LARGE_LOG2 + 1) * (1 << SUB_BITS);
export const BITMAP_WORDS = Math.ceil(BIN_COUNT / 32);

// ---- THE FIELD TABLES ----------------------------------------------------------------

/** Zone header. `magic` and `layout` are the preamble: they must stay first, in this order. */
export const ZONE_HEADER = struct(
  'header',
  [
    ['magic', i32],
    ['layout', i32], // the layout identity (identity.ts) of the code that formatted the zone
    ['capacity', i32],
    ['stripes', i32],
    ['buckets', i32],
    ['arenaBytes', i32],
    ['indexBase', i32],
    ['arenaBase', i32],
  ],
  64,
);

/** One per stripe, padded to a cache-line multiple. */
export const STRIPE_RECORD = struct(
  'stripe',
  [
    ['lock', i32], // owner id holding the stripe, 0 = unlocked
    ['waiters', i32], // threads parked in Atomics.wait on lock
    ['items', i32], // keys in this stripe (expired but unreclaimed ones included)
    ['freeBytes', i32], // bytes in free blocks
    ['tick', i32], // items ever inserted in the stripe: the LRU clock
    ['hand', i32], // where the eviction sweep resumes (a block offset)
    ['spare', 2 * i32, i32],
    ['bitmap', BITMAP_WORDS * i32, i32], // bit b set = bins[b] non-empty
    ['bins', BIN_COUNT * i32, i32],
  ],
  64,
);

/** Bits of every block's header word, below its size. */
export const BLOCK_FLAGS = flags(['free', 'prevFree', 'node']);

/** A free block (its last word is a footer repeating its size). */
export const FREE_BLOCK = struct('free', [
  ['header', i32],
  ['next', i32],
  ['prev', i32],
]);

/** An item: one key and its value (at align8(key + key length)). */
export const ITEM = struct('item', [
  ['header', i32],
  ['chain', i32],
  ['expires', f64],
  ['stamp', i32],
  ['hash', i32],
  ['flags', i32],
  ['meta', i32],
  ['vlen', i32],
  ['key', 0, i32],
]);

/** Bit fields of ITEM.meta: [name, first bit, bits]. */
export const ITEM_META = [
  ['keyLength', 0, 16],
  ['type', 24, 8],
] as const;

/** The value of an item of type `list`. */
export const LIST_VALUE = struct('list', [
  ['head', i32],
  ['tail', i32],
  ['len', i32],
]);

/** A list element, in a block of its own (flag `node`). */
export const LIST_NODE = struct('node', [
  ['header', i32],
  ['next', i32],
  ['prev', i32],
  ['type', i32],
  ['vlen', i32],
  ['value', 0, f64],
]);

/** Value types stored in ITEM.meta and LIST_NODE.type: the codec's format tags (codec.ts). */
export const VALUE_TYPES = tags(['number', 'true', 'false', 'ascii', 'utf8', 'bytes', 'packed', 'list']);

/** Everything else that decides how a zone's bytes are read. */
export const ZONE_CONSTANTS = {
  magic: 0x53484454, // "SHDT"
  blockAlign: 8,
  endSentinelBytes: 8, // a permanently used block closing each arena
  expiresNever: 0,
  expiresFlushed: -1, // written by flushAll: expired at any clock reading, yet readable by getStale
  smallLimit: SMALL_LIMIT,
  subBits: SUB_BITS,
  firstLargeLog2: FIRST_LARGE_LOG2,
  lastLargeLog2: LAST_LARGE_LOG2,
} as const;

/** What the layout identity is hashed from (identity.ts adds the codec and the key hash). */
export const LAYOUT_TABLES = {
  structs: [ZONE_HEADER, STRIPE_RECORD, FREE_BLOCK, ITEM, LIST_VALUE, LIST_NODE].map((s) => [s.name, s.fields, s.size]),
  blockFlags: BLOCK_FLAGS,
  itemMeta: ITEM_META,
  valueTypes: VALUE_TYPES,
  constants: ZONE_CONSTANTS,
};

// ---- derived constants: what the code uses ------------------------------------------

export const MAGIC = ZONE_CONSTANTS.magic;

// Header words (Int32Array indices).
export const H_MAGIC = ZONE_HEADER.at.magic >> 2;
export const H_LAYOUT = ZONE_HEADER.at.layout >> 2;
export const H_CAPACITY = ZONE_HEADER.at.capacity >> 2;
export const H_STRIPES = ZONE_HEADER.at.stripes >> 2;
export const H_BUCKETS = ZONE_HEADER.at.buckets >> 2;
export const H_ARENA_BYTES = ZONE_HEADER.at.arenaBytes >> 2;
export const H_INDEX_BASE = ZONE_HEADER.at.indexBase >> 2;
export const H_ARENA_BASE = ZONE_HEADER.at.arenaBase >> 2;
export const HEADER_BYTES = ZONE_HEADER.size;
if (H_MAGIC !== 0 || H_LAYOUT !== 1) throw new Error('layout: the zone preamble (magic, layout) must be the first two words');

// Stripe record words (Int32Array offsets from the record start).
export const S_LOCK = STRIPE_RECORD.at.lock >> 2;
export const S_WAITERS = STRIPE_RECORD.at.waiters >> 2;
export const S_ITEMS = STRIPE_RECORD.at.items >> 2;
export const S_FREE_BYTES = STRIPE_RECORD.at.freeBytes >> 2;
export const S_TICK = STRIPE_RECORD.at.tick >> 2;
export const S_HAND = STRIPE_RECORD.at.hand >> 2;
export const S_BITMAP = STRIPE_RECORD.at.bitmap >> 2;
export const S_BINS = STRIPE_RECORD.at.bins >> 2;
export const STRIPE_RECORD_BYTES = STRIPE_RECORD.size;
export const STRIPE_RECORD_WORDS = STRIPE_RECORD_BYTES >> 2;

// Block header bits.
export const B_FREE = BLOCK_FLAGS.free;
export const B_PREV_FREE = BLOCK_FLAGS.prevFree;
export const B_NODE = BLOCK_FLAGS.node;
export const B_SIZE_MASK = -ZONE_CONSTANTS.blockAlign;
export const END_SENTINEL_BYTES = ZONE_CONSTANTS.endSentinelBytes;

// Free block fields (byte offsets from the block).
export const F_NEXT = FREE_BLOCK.at.next;
export const F_PREV = FREE_BLOCK.at.prev;
/** The smallest block: a free block's fields and its footer. */
export const MIN_BLOCK = align(FREE_BLOCK.size + i32, ZONE_CONSTANTS.blockAlign);

// Item fields (byte offsets from the block).
export const I_CHAIN = ITEM.at.chain;
export const I_EXPIRES = ITEM.at.expires;
export const I_STAMP = ITEM.at.stamp;
export const I_HASH = ITEM.at.hash;
export const I_FLAGS = ITEM.at.flags;
export const I_META = ITEM.at.meta;
export const I_VLEN = ITEM.at.vlen;
export const I_KEY = ITEM.at.key;
const [[, KEY_SHIFT, KEY_BITS], [, TYPE_SHIFT]] = ITEM_META;
if (KEY_SHIFT !== 0) throw new Error('layout: item key length must be the low bits of meta');
export const META_KEY_MASK = (1 << KEY_BITS) - 1; // a Smi, not the double 2 ** 16 - 1 is: it is on every hot path
export const META_TYPE_SHIFT = TYPE_SHIFT;
export const MAX_KEY_BYTES = META_KEY_MASK;

// List item value (byte offsets from the value start).
export const L_HEAD = LIST_VALUE.at.head;
export const L_TAIL = LIST_VALUE.at.tail;
export const L_LEN = LIST_VALUE.at.len;
export const LIST_VALUE_BYTES = LIST_VALUE.size;

// List node fields (byte offsets from the block).
export const N_NEXT = LIST_NODE.at.next;
export const N_PREV = LIST_NODE.at.prev;
export const N_TYPE = LIST_NODE.at.type;
export const N_VLEN = LIST_NODE.at.vlen;
export const N_VALUE = LIST_NODE.at.value;

// Value types stored in I_META / N_TYPE.
export const T_NUMBER = VALUE_TYPES.number; // float64, 8-byte aligned
export const T_TRUE = VALUE_TYPES.true;
export const T_FALSE = VALUE_TYPES.false;
export const T_ASCII = VALUE_TYPES.ascii; // string whose UTF-8 bytes are its char codes
export const T_UTF8 = VALUE_TYPES.utf8;
export const T_BYTES = VALUE_TYPES.bytes;
export const T_PACKED = VALUE_TYPES.packed; // msgpackr
export const T_LIST = VALUE_TYPES.list;

export const EXPIRES_FLUSHED = ZONE_CONSTANTS.expiresFlushed;

// ---- geometry: how a zone of a given size is split (stored in its header) ------------

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
