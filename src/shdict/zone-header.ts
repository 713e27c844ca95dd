import { initArena } from './alloc.ts';
import { checkSize } from './checks.ts';
import { ShdictError } from './errors.ts';
import { formatIdentity, LAYOUT_ID, stampedIdentity } from './identity.ts';
import {
  computeGeometry,
  type Geometry,
  H_ARENA_BASE,
  H_ARENA_BYTES,
  H_BUCKETS,
  H_CAPACITY,
  H_INDEX_BASE,
  H_LAYOUT,
  H_MAGIC,
  H_STRIPES,
  HEADER_BYTES,
  MAGIC,
  STRIPE_RECORD_WORDS,
} from './layout.ts';

/*
 * The zone header: formatting a new zone, and opening an existing one, which only succeeds
 * when the zone was formatted by code of this very layout (identity.ts).
 */

/** Allocates and formats a zone of `size` bytes, stamped with this code's layout identity. */
export function formatZone(size: number, stripes: number | undefined): SharedArrayBuffer {
  checkSize(size, stripes);
  const g = computeGeometry(size, stripes);
  if (g.arenaBytes < 4096) {
    throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict size ${size} is too small for ${g.stripes} stripes`);
  }
  const buffer = new SharedArrayBuffer(size);
  const i32 = new Int32Array(buffer);
  i32[H_CAPACITY] = size;
  i32[H_STRIPES] = g.stripes;
  i32[H_BUCKETS] = g.buckets;
  i32[H_ARENA_BYTES] = g.arenaBytes;
  i32[H_INDEX_BASE] = g.indexBase;
  i32[H_ARENA_BASE] = g.arenaBase;
  for (let st = 0; st < g.stripes; st++) {
    initArena(i32, (HEADER_BYTES >> 2) + st * STRIPE_RECORD_WORDS, g.arenaBase + st * g.arenaBytes, g.arenaBytes);
  }
  i32[H_LAYOUT] = LAYOUT_ID;
  // Written last: a zone is attachable only once fully formatted.
  Atomics.store(i32, H_MAGIC, MAGIC);
  return buffer;
}

/** The geometry of the zone in `buffer`; SHDICT_ERR_BAD_ZONE unless this code formatted it. */
export function openZone(buffer: SharedArrayBuffer): Geometry {
  const stamped = buffer.byteLength < HEADER_BYTES ? undefined : stampedIdentity(buffer);
  if (stamped === undefined) throw new ShdictError('SHDICT_ERR_BAD_ZONE', 'buffer is not a shdict zone');
  if (stamped !== LAYOUT_ID) {
    throw new ShdictError(
      'SHDICT_ERR_BAD_ZONE',
      `shdict zone has layout ${formatIdentity(stamped)} but this code reads layout ${formatIdentity(LAYOUT_ID)}: not attached (the zone must be recreated)`,
    );
  }
  const i32 = new Int32Array(buffer, 0, HEADER_BYTES >> 2);
  return {
    capacity: i32[H_CAPACITY]!,
    stripes: i32[H_STRIPES]!,
    buckets: i32[H_BUCKETS]!,
    arenaBytes: i32[H_ARENA_BYTES]!,
    indexBase: i32[H_INDEX_BASE]!,
    arenaBase: i32[H_ARENA_BASE]!,
  };
}
