import type { SluiceConf } from '../config/types.ts';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { CACHE_STATUSES, readCounters } from '../plugins/proxy-cache/counters.ts';
import type { CacheStatus } from '../plugins/proxy-cache/counters.ts';
import { purge } from '../plugins/proxy-cache/purge.ts';
import { normalizePath } from '../worker/normalize-path.ts';
import type { Zone } from './zones.ts';

/**
 * The master's side of proxy-cache (issue 14): purge for the status
 * listener's `DELETE /cache`, and the request counters for /metrics and
 * /status. The key format and the counters' place are the plugin's
 * (src/plugins/proxy-cache/purge.ts, counters.ts); the master knows which
 * zone a route's cache uses, from the conf, and holds the zones.
 */

const PLUGIN = 'proxy-cache';

/** The zone name a route's cache uses (its own proxy-cache, else the global one), or null when it has none. */
function cacheDictOf(conf: SluiceConf, route: string): string | null {
  const r = conf.routes.find((x) => x.name === route);
  if (r === undefined) return null;
  const pc = r.plugins[PLUGIN] ?? conf.plugins[PLUGIN];
  // The master's conf has every plugin default filled in, `dict` included.
  return pc === undefined ? null : (pc['dict'] as string);
}

export type PurgeAnswer = { readonly purged: number } | { readonly code: GatewayErrorCode };

/**
 * `DELETE /cache?route=NAME[&path=/x]`: the path is normalised as the gateway
 * normalises request paths (`//x` is `/x`), and is the path the route sends
 * upstream (after strip_path), as the key holds it.
 */
export function purgeCache(conf: SluiceConf, zones: ReadonlyMap<string, Zone>, query: URLSearchParams): PurgeAnswer {
  const route = query.get('route');
  if (route === null || route === '') return { code: 'GW_ERR_BAD_REQUEST' };
  const dictName = cacheDictOf(conf, route);
  const zone = dictName === null ? undefined : zones.get(dictName);
  if (zone === undefined) return { code: 'GW_ERR_NO_CACHE' };
  const raw = query.get('path');
  if (raw === null) return { purged: purge(zone.dict, route, null) };
  const n = normalizePath(raw);
  if ('error' in n || n.query !== '') return { code: 'GW_ERR_BAD_PATH' };
  return { purged: purge(zone.dict, route, n.path) };
}

/**
 * The counters as Prometheus counters: they live in a zone, where a full
 * zone may evict one and a resized zone starts empty; a value below the last
 * one read is a reset, and what was read before it is carried on, so a
 * reported count never goes back (what happened between the last read and
 * the reset is lost, as with any counter reset).
 */
export class CacheCounters {
  private readonly last = new Map<string, { raw: number; carried: number }>();

  /** Per route with a cache in `conf`: its counts by X-Cache-Status. */
  read(conf: SluiceConf, zones: ReadonlyMap<string, Zone>): Map<string, Record<CacheStatus, number>> {
    const out = new Map<string, Record<CacheStatus, number>>();
    for (const r of conf.routes) {
      const dictName = cacheDictOf(conf, r.name);
      const zone = dictName === null ? undefined : zones.get(dictName);
      if (zone === undefined) continue;
      const raw = readCounters(zone.dict, r.name);
      const counts = {} as Record<CacheStatus, number>;
      for (const s of CACHE_STATUSES) {
        const id = `${r.name}\u0000${s}`;
        const prev = this.last.get(id) ?? { raw: 0, carried: 0 };
        const carried = raw[s] < prev.raw ? prev.carried + prev.raw : prev.carried;
        this.last.set(id, { raw: raw[s], carried });
        counts[s] = carried + raw[s];
      }
      out.set(r.name, counts);
    }
    return out;
  }
}

/** Answers served from the cache (HIT, STALE, UPDATING, REVALIDATED) over all the route's requests; null before any. */
export function hitRatio(c: Readonly<Record<CacheStatus, number>>): number | null {
  let all = 0;
  for (const s of CACHE_STATUSES) all += c[s];
  const served = c.HIT + c.STALE + c.UPDATING + c.REVALIDATED;
  return all === 0 ? null : Math.round((served / all) * 10000) / 10000;
}
