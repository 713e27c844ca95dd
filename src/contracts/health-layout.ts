/**
 * Active health state of an upstream's targets, shared by the master (the
 * only writer: its prober) and every worker (readers, in the balancer).
 *
 *   one SharedArrayBuffer per upstream, Int32Array, one slot per target
 *   ┌──────────┬──────────┬─────┐
 *   │ target 0 │ target 1 │ ... │   HEALTHY (0) | UNHEALTHY (1)
 *   └──────────┴──────────┴─────┘
 *
 * Zero-filled means every target starts healthy, as in nginx and Kong. A
 * plain read is enough: a worker that sees a flip one request late is harmless.
 */
export const HEALTHY = 0;
export const UNHEALTHY = 1;

export const createHealthBuffer = (targets: number): SharedArrayBuffer =>
  new SharedArrayBuffer(Math.max(1, targets) * Int32Array.BYTES_PER_ELEMENT);
