/**
 * Which worker threads are alive, in one SharedArrayBuffer the master writes
 * and every worker reads: a worker that waits on something another worker
 * holds (a cache lock) can tell a holder that will still release it from one
 * that died holding it, and take over at once instead of at the lock's expiry.
 *
 *   Int32Array[LIVENESS_SLOTS]
 *   ┌──────┬──────┬──────┬─────┬──────┐
 *   │ id 0 │ id 1 │ id 2 │ ... │      │   slot = id % LIVENESS_SLOTS
 *   └──────┴──────┴──────┴─────┴──────┘   holds the id while that worker lives, 0 once it exited
 *
 * The master marks a worker before its thread starts and clears it when the
 * thread has exited. Ids grow for the master's lifetime; two live workers
 * share a slot only if 4,096 workers were started while the older one lived.
 */
export const LIVENESS_SLOTS = 4096;

export const createLiveness = (): SharedArrayBuffer => new SharedArrayBuffer(LIVENESS_SLOTS * Int32Array.BYTES_PER_ELEMENT);

export function markAlive(table: Int32Array, id: number): void {
  Atomics.store(table, id % LIVENESS_SLOTS, id);
}

export function markExited(table: Int32Array, id: number): void {
  Atomics.compareExchange(table, id % LIVENESS_SLOTS, id, 0);
}

export const isAlive = (table: Int32Array, id: number): boolean => Atomics.load(table, id % LIVENESS_SLOTS) === id;
