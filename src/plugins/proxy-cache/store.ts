import type { SharedDict } from '../pdk/index.ts';

/**
 * Entries in the shared dict. An entry is a head (msgpack: status, headers,
 * times, body length, part count, entry id) plus its body as raw byte items
 * `<key>#<id>#<n>` of at most PART_BYTES, so a body larger than one dict item
 * (one stripe's arena) still fits. The parts are written first and the head
 * last, each part under the id of its entry: a reader finds either the old
 * head with its own parts or the new head with all of its parts, never a mix,
 * and a part evicted since is a miss, not a short body.
 *
 * When the response named a Vary, the key holds a marker with the Vary names
 * instead, and the head sits under the variant key (the names' request
 * values appended): two steps, as nginx and Varnish look variants up.
 */

/** 64 KiB: far below one stripe's arena in any zone of 1 MiB or more. */
export const PART_BYTES = 64 * 1024;

/** Parts outlive their head a little: a reader that got the head just before it expired still finds them. */
const PART_GRACE_MS = 1000;

export interface Head {
  /** Status. */
  readonly s: number;
  /** Headers, flat `[name, value, …]`, lower-case names. */
  readonly h: readonly string[];
  /** Stored at (ms, the plugin's clock). */
  readonly t: number;
  /** Age the response had when stored (s). */
  readonly a: number;
  /** Fresh until (ms). */
  readonly e: number;
  /** Body length. */
  readonly n: number;
  /** Parts. */
  readonly p: number;
  /** Entry id: names its parts. */
  readonly id: string;
  /** The key material (key.ts): a read whose material differs is a miss, whatever the digest. */
  readonly k: string;
}

export interface VaryMarker {
  readonly vary: readonly string[];
}

export const isHead = (v: unknown): v is Head => typeof v === 'object' && v !== null && typeof (v as Head).id === 'string';
const isMarker = (v: unknown): v is VaryMarker => typeof v === 'object' && v !== null && Array.isArray((v as VaryMarker).vary);

const partKey = (key: string, id: string, n: number): string => `${key}#${id}#${n}`;

/** What is stored at a key: a head, a Vary marker, or nothing. */
export function readAt(dict: SharedDict, key: string): Head | VaryMarker | null {
  const v = dict.getStale(key)?.value;
  return isHead(v) || isMarker(v) ? v : null;
}

export { isMarker };

/** The body of `head`, or null when a part is gone (evicted): then the entry is a miss. */
export function readBody(dict: SharedDict, key: string, head: Head): Uint8Array | null {
  if (head.p === 1) {
    const v = dict.get(partKey(key, head.id, 0));
    return v instanceof Uint8Array && v.length === head.n ? v : null;
  }
  const body = Buffer.allocUnsafe(head.n);
  let at = 0;
  for (let i = 0; i < head.p; i++) {
    const v = dict.get(partKey(key, head.id, i));
    if (!(v instanceof Uint8Array) || at + v.length > head.n) return null;
    body.set(v, at);
    at += v.length;
  }
  return at === head.n ? body : null;
}

/**
 * Stores an entry: parts, then (when the response varies) the marker, then
 * the head. A full zone evicts its least recently used items (`set`); if a
 * write still fails the entry is left unstored and false is returned: the
 * request it came from was already answered.
 */
export function writeEntry(dict: SharedDict, key: string, vary: VaryMarker | null, headKey: string, head: Head, body: Uint8Array, ttlMs: number): boolean {
  for (let i = 0; i < head.p; i++) {
    const part = body.subarray(i * PART_BYTES, Math.min(body.length, (i + 1) * PART_BYTES));
    if (!dict.set(partKey(headKey, head.id, i), part, ttlMs + PART_GRACE_MS).ok) return false;
  }
  if (vary !== null && !dict.set(key, vary, ttlMs).ok) return false;
  return dict.set(headKey, head, ttlMs).ok;
}

export const partsFor = (length: number): number => Math.ceil(length / PART_BYTES);
