import { LATENCY_BOUNDS, routeBase, STATUS_CLASSES, TOTAL_BUCKETS, TOTAL_SUM, UPSTREAM_BUCKETS, UPSTREAM_COUNT, UPSTREAM_SUM } from '../contracts/stats-layout.ts';

/** The worker's side of the stats layout (src/contracts/stats-layout.ts): it is the only writer. */
function bucketOf(ms: number): number {
  let i = 0;
  while (i < LATENCY_BOUNDS.length && ms > LATENCY_BOUNDS[i]!) i++;
  return i;
}

/** Called once per finished request; `upstreamMs` < 0 when no upstream was asked. */
export function recordRequest(stats: Float64Array, routeIndex: number, status: number, totalMs: number, upstreamMs: number): void {
  const base = routeBase(routeIndex);
  const cls = status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : 4;
  stats[base + STATUS_CLASSES + cls]!++;
  stats[base + TOTAL_BUCKETS + bucketOf(totalMs)]!++;
  stats[base + TOTAL_SUM]! += totalMs;
  if (upstreamMs >= 0) {
    stats[base + UPSTREAM_BUCKETS + bucketOf(upstreamMs)]!++;
    stats[base + UPSTREAM_SUM]! += upstreamMs;
    stats[base + UPSTREAM_COUNT]!++;
  }
}
