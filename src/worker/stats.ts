/**
 * Per-worker counters the master reads for /status without a message round
 * trip. One small SharedArrayBuffer per worker thread; the worker is the only
 * writer (plain stores, no Atomics on the request path) and the master only
 * reads, so a value is at worst one update stale.
 *
 *   Float64Array (8 bytes per slot)
 *   ┌──────────┬──────────────┬────────────┬─────────────┐
 *   │ REQUESTS │ CONN_ACCEPTED│ CONN_ACTIVE│ CONN_HANDLED│
 *   └──────────┴──────────────┴────────────┴─────────────┘
 *      0            1              2             3
 *
 * Float64 rather than Int32: counts pass 2^31 on a busy gateway within days,
 * and doubles are exact up to 2^53.
 */
export const REQUESTS = 0;
export const CONN_ACCEPTED = 1;
export const CONN_ACTIVE = 2;
export const CONN_HANDLED = 3;
export const STATS_SLOTS = 4;

export const createStatsBuffer = (): SharedArrayBuffer => new SharedArrayBuffer(STATS_SLOTS * Float64Array.BYTES_PER_ELEMENT);
