import { createHash } from 'node:crypto';
import { CODEC_FORMAT } from './codec.ts';
import { KeyProbe } from './key.ts';
import { H_LAYOUT, H_MAGIC, LAYOUT_TABLES, MAGIC } from './layout.ts';
import { RECOVERY_OWNER } from './lock.ts';

/*
 * The layout identity: a 32-bit hash of everything that decides how a zone's bytes are
 * read, stamped in the zone header by the code that formats it and checked by every
 * attach. Zones live in the master and outlive worker generations, but each new worker
 * loads the code on disk, which an upgrade in place may have changed: a zone stamped with
 * another identity is never attached (SHDICT_ERR_BAD_ZONE), and the master recreates it
 * empty at reload (src/master/zones.ts). Nobody bumps a version by hand.
 *
 * Hashed: the field tables, bit fields, value tags and constants of layout.ts; the codec's
 * format (codec.ts); the key hash function, by its value on two sample keys (one ASCII, one
 * not: they take different paths), since it places keys in stripes and buckets; and the
 * lock protocol's recovery owner id, which the master writes into lock words.
 */

/** Canonical text of what the identity is hashed from. */
export const LAYOUT_DESCRIPTION = JSON.stringify({
  layout: LAYOUT_TABLES,
  codec: CODEC_FORMAT,
  keyHash: ['sluice:layout', 'clé:ключ'].map((k) => {
    const probe = new KeyProbe();
    probe.load(k);
    return probe.hash;
  }),
  recoveryOwner: RECOVERY_OWNER,
});

/** The identity of a layout description: 32 bits of its SHA-256, never 0 (zero-filled memory). */
export function layoutIdentity(description: string): number {
  const id = createHash('sha256').update(description).digest().readInt32LE(0);
  return id === 0 ? 1 : id;
}

/** The identity of the layout this code reads and writes. */
export const LAYOUT_ID = layoutIdentity(LAYOUT_DESCRIPTION);

/**
 * The identity stamped in `buffer`, or undefined when it holds no formatted zone. Reads only
 * the preamble (magic, layout), which sits at the same place in every layout.
 */
export function stampedIdentity(buffer: SharedArrayBuffer): number | undefined {
  if (buffer.byteLength < 8) return undefined;
  const i32 = new Int32Array(buffer, 0, 2);
  return Atomics.load(i32, H_MAGIC) === MAGIC ? Atomics.load(i32, H_LAYOUT) : undefined;
}

/** How a logged identity reads: 8 hex digits. */
export const formatIdentity = (id: number | undefined): string => (id === undefined ? 'none' : (id >>> 0).toString(16).padStart(8, '0'));
