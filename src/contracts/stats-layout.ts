/**
 * Per-worker counters the master reads for /status and /metrics without a
 * message round trip. One SharedArrayBuffer per worker thread, sized for its
 * conf's routes; the worker is the only writer (plain stores, no Atomics on
 * the request path) and the master only reads, so a value is at worst one
 * update stale.
 *
 *   Float64Array (8 bytes per slot)
 *   ┌──────────┬──────────────┬────────────┬─────────────┬───────────┬──────────┬──────────────┬────────────────┬─────┬──────────────────┐
 *   │ REQUESTS │ CONN_ACCEPTED│ CONN_ACTIVE│ CONN_HANDLED│ WS_ACTIVE │ WS_TOTAL │ WS_AT_DRAIN  │ route 0 block  │ ... │ "no route" block │
 *   └──────────┴──────────────┴────────────┴─────────────┴───────────┴──────────┴──────────────┴────────────────┴─────┴──────────────────┘
 *      0            1              2             3            4           5           6        HEADER_SLOTS + i * ROUTE_SLOTS
 *
 *   route block (ROUTE_SLOTS = 36)
 *   ┌─────────────────┬─────────────────────────┬───────────┬─────────────────────────┬────────────┬──────────────┐
 *   │ 1xx 2xx … 5xx   │ total latency buckets   │ total sum │ upstream latency buckets│ upstream   │ upstream     │
 *   │ (5 counts)      │ (14: LATENCY_BOUNDS,+Inf)│ (ms)      │ (14)                    │ sum (ms)   │ count        │
 *   └─────────────────┴─────────────────────────┴───────────┴─────────────────────────┴────────────┴──────────────┘
 *
 * Bucket slots hold per-bucket counts (not cumulative): one increment per
 * request; the master accumulates them when it renders Prometheus text.
 * WS_*: WebSockets open now (a gauge), opened, and closed with 1001 at a
 * drain's worker_shutdown_timeout.
 * Every slot is a counter except CONN_ACTIVE and WS_ACTIVE, gauges: when a worker exits,
 * the master keeps its counters (metrics.ts Totals) so that totals never go
 * backwards across reloads, and drops its gauge.
 * Float64 rather than Int32: counts pass 2^31 on a busy gateway within days,
 * and doubles are exact up to 2^53.
 */
export const REQUESTS = 0;
export const CONN_ACCEPTED = 1;
export const CONN_ACTIVE = 2;
export const CONN_HANDLED = 3;
export const WS_ACTIVE = 4;
export const WS_TOTAL = 5;
export const WS_AT_DRAIN = 6;
export const HEADER_SLOTS = 7;

/** Latency bucket upper bounds in ms (Prometheus `le`, converted to seconds when rendered). */
export const LATENCY_BOUNDS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const BUCKETS = LATENCY_BOUNDS.length + 1;

export const STATUS_CLASSES = 0; // 5 slots: 1xx..5xx
export const TOTAL_BUCKETS = 5;
export const TOTAL_SUM = TOTAL_BUCKETS + BUCKETS;
export const UPSTREAM_BUCKETS = TOTAL_SUM + 1;
export const UPSTREAM_SUM = UPSTREAM_BUCKETS + BUCKETS;
export const UPSTREAM_COUNT = UPSTREAM_SUM + 1;
export const ROUTE_SLOTS = UPSTREAM_COUNT + 1;

/** Blocks for `routes` routes plus one for requests that matched none (route index = routes). */
export const createStatsBuffer = (routes: number): SharedArrayBuffer =>
  new SharedArrayBuffer((HEADER_SLOTS + (routes + 1) * ROUTE_SLOTS) * Float64Array.BYTES_PER_ELEMENT);

export const routeBase = (routeIndex: number): number => HEADER_SLOTS + routeIndex * ROUTE_SLOTS;
