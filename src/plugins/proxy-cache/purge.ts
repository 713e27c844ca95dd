import type { SharedDict } from '../pdk/index.ts';
import { pathPrefix, routePrefix } from './key.ts';
import { isHead } from './store.ts';

/**
 * Purge, run by the master for the status listener's `DELETE /cache`. It
 * lives here because the key format is the plugin's: the master only names
 * the zone, the route and the normalised path.
 *
 * Every key under the prefix goes: entry heads, Vary markers, variant heads
 * and body parts. A single-flight lock (`…|lock`) is left alone: it is not
 * an entry, and its holder is mid-fetch; deleting it would only let a second
 * fetch of the same key start. The count is of heads: one per stored variant.
 * A walk of the whole zone (getKeys takes the stripes one after another, never
 * all at once), which is the price of an operator action, not of a request.
 */
export type PurgeDict = Pick<SharedDict, 'getKeys' | 'get' | 'delete' | 'incr'>;

/**
 * A route's purge generation: bumped by every purge of the route, read by
 * each hit, so a worker's local copies (local.ts) of purged entries stop
 * answering at once. Not under the entries' prefix: a purge never removes it.
 */
export const generationKey = (route: string): string => `pcg|${encodeURIComponent(route)}`;

const LOCK_SUFFIX = '|lock';

/** Removes the entries of `route`, or only those of `path` (normalised as the gateway does); returns how many. */
export function purge(dict: PurgeDict, route: string, path: string | null): number {
  const prefix = path === null ? routePrefix(route) : pathPrefix(route, path);
  let purged = 0;
  for (const key of dict.getKeys(0)) {
    if (!key.startsWith(prefix) || key.endsWith(LOCK_SUFFIX)) continue;
    if (!key.includes('#') && isHead(dict.get(key))) purged++; // a part (`…#id#n`) is bytes, never a head
    dict.delete(key);
  }
  // After the deletes: a hit reads the generation before the entry, so a copy made from a
  // removed entry carries the old generation, and one made after this reads no entry at all.
  dict.incr(generationKey(route), 1, 0);
  return purged;
}
