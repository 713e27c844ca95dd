import type { MutableHeaders, ReadonlyHeaders } from '../pdk/index.ts';

/**
 * Conditional requests between the cache and the upstream (RFC 9111 §4.3).
 *
 * A request that may fill the cache goes upstream without the client's own
 * preconditions and Range (nginx clears the same six when it caches): the
 * upstream's answer to them (a 304 to one client's If-None-Match, a 206)
 * could fill no entry, and every other client would miss too. The client's
 * preconditions are kept aside and answered from the entry.
 *
 * An expired entry with an ETag or Last-Modified goes up as a conditional
 * request of the cache's own; a 304 refreshes the entry's headers and
 * freshness and the stored body is the answer (REVALIDATED).
 */
const CLIENT_PRECONDITIONS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'range', 'if-range'] as const;

/** Removes the client's preconditions from what goes upstream; returns them (flat `[name, value, …]`). */
export function takePreconditions(headers: MutableHeaders): string[] {
  const taken: string[] = [];
  for (const name of CLIENT_PRECONDITIONS) {
    if (!headers.has(name)) continue;
    for (const value of headers.getAll(name)) taken.push(name, value);
    headers.remove(name);
  }
  return taken;
}

/** Whether an entry can be revalidated at all. */
export const hasValidator = (entry: ReadonlyHeaders): boolean => entry.has('etag') || entry.has('last-modified');

/** The cache's own conditional request for `entry`. */
export function askIfChanged(headers: MutableHeaders, entry: ReadonlyHeaders): void {
  const etag = entry.get('etag');
  const modified = entry.get('last-modified');
  if (etag !== undefined) headers.set('if-none-match', etag);
  if (modified !== undefined) headers.set('if-modified-since', modified);
}

/** What a 304 never replaces in an entry: the body's own framing (§4.3.4 lets it update the rest). */
const KEPT_FROM_ENTRY = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range']);

/**
 * The entry's headers after a 304 (RFC 9111 §4.3.4): each field the 304
 * carries replaces the stored field of that name; the rest stay. `skip`
 * names fields never stored at all.
 */
export function refreshedHeaders(stored: readonly string[], notModified: ReadonlyHeaders, skip: ReadonlySet<string>): string[] {
  const given: string[] = [];
  const names = new Set<string>();
  notModified.forEach((value, name) => {
    const lower = name.toLowerCase();
    if (skip.has(lower) || KEPT_FROM_ENTRY.has(lower)) return;
    names.add(lower);
    given.push(lower, value);
  });
  const out: string[] = [];
  for (let i = 0; i < stored.length; i += 2) if (!names.has(stored[i]!)) out.push(stored[i]!, stored[i + 1]!);
  return out.concat(given);
}
