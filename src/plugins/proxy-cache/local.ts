import { Lru } from '../pdk/index.ts';
import type { PreparedExit } from '../pdk/index.ts';
import { PART_BYTES } from './store.ts';
import type { Head } from './store.ts';

/**
 * Each worker's own copies of the fresh entries it answered lately, decoded,
 * with their answer prepared: a hit on one costs a map lookup and one read of
 * the route's purge generation, where a hit from the dict costs two dict
 * reads, a msgpack decode and an answer built and checked anew.
 *
 * A copy answers only while its entry is fresh, for at most LOCAL_MS after it
 * was read from the dict, and while the route's purge generation is the one
 * it was read under: a purge bumps it (purge.ts), so once DELETE /cache has
 * answered no worker serves what it removed. Within that second a copy may be
 * older than what another worker has just stored for the key (an entry is
 * replaced only once expired, or after a purge): both are fresh answers.
 *
 * Only entries of one body part (64 KiB) that do not vary are copied, at most
 * LOCAL_ENTRIES of them: a worker's copies stay under 8 MiB.
 */
const LOCAL_MS = 1000;
const LOCAL_ENTRIES = 128;

export interface LocalEntry {
  readonly head: Head;
  readonly body: Uint8Array;
  readonly generation: number;
  readonly until: number;
  /** The full answer for `age` (seconds): made again when Age changes, once a second at most. */
  exit: PreparedExit | null;
  age: number;
}

export class LocalEntries {
  private readonly lru = new Lru<string, LocalEntry>(LOCAL_ENTRIES);

  /** The copy for `key`, if it may still answer a request whose key material is `material`. */
  get(key: string, material: string, generation: number, now: number): LocalEntry | null {
    const e = this.lru.get(key);
    if (e === undefined) return null;
    if (e.generation === generation && now < e.until && e.head.k === material) return e;
    this.lru.delete(key);
    return null;
  }

  /** Copies an entry just read from the dict; null when it is too large to copy. */
  keep(key: string, head: Head, body: Uint8Array, generation: number, now: number): LocalEntry | null {
    if (body.length > PART_BYTES) return null;
    const copy: LocalEntry = { head, body, generation, until: Math.min(head.e, now + LOCAL_MS), exit: null, age: -1 };
    this.lru.set(key, copy);
    return copy;
  }
}
