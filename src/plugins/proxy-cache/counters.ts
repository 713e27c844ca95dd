import type { SharedDict } from '../pdk/index.ts';

/**
 * Requests by X-Cache-Status, per route, for `sluice_cache_requests_total`
 * and /status: counters in the cache's own zone, one `incr` per request,
 * summed over every worker by construction (the zone is shared, and lives in
 * the master across generations, so a retiring worker takes nothing away).
 * Not under the entries' `pc|` prefix, so a purge leaves them alone.
 *
 * They share the zone's LRU with the entries: a full zone may evict a quiet
 * route's counter, and a resized zone starts empty. The master reads them
 * as a Prometheus counter is read, a drop being a reset (master/cache-metrics.ts).
 */
export const CACHE_STATUSES = ['HIT', 'MISS', 'EXPIRED', 'STALE', 'UPDATING', 'REVALIDATED', 'BYPASS'] as const;
export type CacheStatus = (typeof CACHE_STATUSES)[number];

export const counterKey = (route: string, status: CacheStatus): string => `pcs|${encodeURIComponent(route)}|${status}`;

/** The counters of `route` now in the zone (0 for a status never counted). */
export function readCounters(dict: Pick<SharedDict, 'get'>, route: string): Record<CacheStatus, number> {
  const out = {} as Record<CacheStatus, number>;
  for (const s of CACHE_STATUSES) {
    const v = dict.get(counterKey(route, s));
    out[s] = typeof v === 'number' ? v : 0;
  }
  return out;
}
