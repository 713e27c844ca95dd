import { performance } from 'node:perf_hooks';

/**
 * An upstream's run-time balancing state, shared by the master and every
 * worker (nginx's `upstream zone`): one SharedArrayBuffer per upstream, read
 * as an Int32Array, TARGET_STRIDE slots per target in the conf's order.
 *
 *   slot   0        1           2       3             4            5          6   7
 *        ┌────────┬───────────┬───────┬─────────────┬────────────┬──────────┬───────┐
 *   t 0  │ HEALTH │ IN_FLIGHT │ FAILS │ FAIL_WINDOW │ DOWN_UNTIL │ CURRENT  │ (pad) │
 *        ├────────┼───────────┼───────┼─────────────┼────────────┼──────────┼───────┤
 *   t 1  │ HEALTH │ IN_FLIGHT │ FAILS │ FAIL_WINDOW │ DOWN_UNTIL │ CURRENT  │ (pad) │
 *        ├────────┴───────────┴───────┴─────────────┴────────────┴──────────┴───────┤
 *   ...  │ 32 bytes per target: two targets per cache line                          │
 *        └──────────────────────────────────────────────────────────────────────────┘
 *
 *   HEALTH       HEALTHY (0) | UNHEALTHY (1); written only by the master's prober
 *   IN_FLIGHT    requests in flight to the target from every worker (least-conn, ewma);
 *                Atomics.add / sub. Each worker also counts its own share in a buffer
 *                of its own (createInFlightShare) that the master subtracts when the
 *                worker dies, so a crash mid-request leaves nothing stuck
 *   FAILS        passive failures in the current window (Atomics.add: the one worker
 *                whose add reaches max_fails marks the target down)
 *   FAIL_WINDOW  zoneClock ms when the window of FAILS opened (compareExchange: one
 *                worker opens a new window)
 *   DOWN_UNTIL   zoneClock ms until which the target is passively out; 0 = not out
 *   CURRENT      smooth weighted round-robin weight (nginx's `current_weight`)
 *
 * Zero-filled is the state of a fresh upstream: every target healthy, idle, in.
 *
 * Times are zoneClock() milliseconds truncated to Int32, so they wrap every
 * 49.7 days: they are only ever compared as differences, `(a - b) | 0`, which
 * is right while they are less than 24.8 days apart (TCP's sequence-number
 * rule). A DOWN_UNTIL further in the future than fail_timeout is a stale mark
 * seen across a wrap and is ignored, and an expired mark is cleared by the
 * first worker to see it.
 */
export const HEALTHY = 0;
export const UNHEALTHY = 1;

/** Slot of each field within a target's block: the one table the drawing above shows. */
export const TARGET_SLOT = {
  HEALTH: 0,
  IN_FLIGHT: 1,
  FAILS: 2,
  FAIL_WINDOW: 3,
  DOWN_UNTIL: 4,
  CURRENT: 5,
} as const;

export const TARGET_STRIDE = 8;

/** Index of `slot` (a TARGET_SLOT) of the target at `target` in the zone's Int32Array. */
export const targetSlot = (target: number, slot: number): number => target * TARGET_STRIDE + slot;

export const createUpstreamZone = (targets: number): SharedArrayBuffer =>
  new SharedArrayBuffer(Math.max(1, targets) * TARGET_STRIDE * Int32Array.BYTES_PER_ELEMENT);

/** Targets a zone holds. */
export const zoneTargets = (zone: SharedArrayBuffer): number => zone.byteLength / (TARGET_STRIDE * Int32Array.BYTES_PER_ELEMENT);

/** One worker's requests in flight per target, for one upstream: written by that worker only. */
export const createInFlightShare = (targets: number): SharedArrayBuffer =>
  new SharedArrayBuffer(Math.max(1, targets) * Int32Array.BYTES_PER_ELEMENT);

/** Takes a dead worker's in-flight requests off the upstream's counts (the master, once the thread has exited). */
export function releaseInFlightShare(zone: SharedArrayBuffer, share: SharedArrayBuffer): void {
  const slots = new Int32Array(zone);
  const mine = new Int32Array(share);
  for (let i = 0; i < mine.length; i++) {
    if (mine[i] !== 0) Atomics.sub(slots, targetSlot(i, TARGET_SLOT.IN_FLIGHT), mine[i]!);
    mine[i] = 0;
  }
}

/**
 * The clock of the zone's times: performance.now(), monotonic milliseconds
 * from the process's time origin, which Node 24 gives every worker thread
 * too (measured: one performance.timeOrigin in all threads; a test pins it,
 * since Node documents the origin but not that threads share it). Not
 * Date.now(): the wall clock jumps with NTP steps and would stretch or cut a
 * fail_timeout.
 */
export const zoneClock = (): number => performance.now();

/**
 * Milliseconds a target's DOWN_UNTIL mark (`until`) keeps it passively out at
 * `now`: 0 when unmarked, over, or a stale mark seen across a wrap of the
 * clock (further ahead than `failTimeout`).
 */
export function downLeft(until: number, now: number, failTimeout: number): number {
  if (until === 0) return 0;
  const left = (until - now) | 0;
  return left > 0 && left <= failTimeout ? left : 0;
}
