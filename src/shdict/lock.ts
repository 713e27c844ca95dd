import { ShdictError } from './errors.ts';
import { S_LOCK, S_WAITERS } from './layout.ts';

/*
 * Stripe spin lock. The lock word holds the owner id of the thread inside the critical
 * section (0 = free), so the master can release the locks of a worker it saw die.
 *
 * Critical sections are a handful of memory accesses, so contention is resolved by spinning:
 * Atomics.wait costs a syscall and ~60 µs per wake-up round trip (perf.md §5), far longer
 * than any holder. Only after SPIN_LIMIT failed attempts (the holder was descheduled or has
 * died) does a thread park in Atomics.wait, always with a timeout, and give up with
 * SHDICT_ERR_LOCK_TIMEOUT once `timeoutMs` has passed rather than block forever.
 */

const SPIN_LIMIT = 1024;
const FIRST_WAIT_MS = 0.05;
const MAX_WAIT_MS = 2;

// Atomics.pause arrived in Node 24; fall back to an empty spin where it is absent.
const pause: (n: number) => void =
  (Atomics as { pause?: (n: number) => void }).pause ?? ((): void => undefined);

/** Owner ids are small positive ints; this one marks a stripe being repaired by the master. */
export const RECOVERY_OWNER = 0x7fff_ffff;

export function lock(i32: Int32Array, rec: number, owner: number, timeoutMs: number): void {
  if (Atomics.compareExchange(i32, rec + S_LOCK, 0, owner) !== 0) lockSlow(i32, rec, owner, timeoutMs);
}

export function unlock(i32: Int32Array, rec: number): void {
  Atomics.store(i32, rec + S_LOCK, 0);
  // A plain read is enough: a waiter increments S_WAITERS before its last check of the lock
  // word, and it never sleeps longer than MAX_WAIT_MS even if this read misses it.
  if (i32[rec + S_WAITERS] !== 0) Atomics.notify(i32, rec + S_LOCK, 1);
}

function lockSlow(i32: Int32Array, rec: number, owner: number, timeoutMs: number): void {
  const at = rec + S_LOCK;
  for (let spin = 0; spin < SPIN_LIMIT; spin++) {
    const cur = Atomics.load(i32, at);
    if (cur === 0) {
      if (Atomics.compareExchange(i32, at, 0, owner) === 0) return;
    } else if (cur === owner) {
      throw new ShdictError('SHDICT_ERR_REENTRANT', 'shdict stripe already locked by this thread');
    }
    pause(spin);
  }
  const deadline = performance.now() + timeoutMs;
  let waitMs = FIRST_WAIT_MS;
  Atomics.add(i32, rec + S_WAITERS, 1);
  try {
    for (;;) {
      const cur = Atomics.load(i32, at);
      if (cur === 0) {
        if (Atomics.compareExchange(i32, at, 0, owner) === 0) return;
        continue;
      }
      if (performance.now() > deadline) {
        throw new ShdictError(
          'SHDICT_ERR_LOCK_TIMEOUT',
          `shdict stripe held by owner ${cur} for over ${timeoutMs} ms (dead worker not released?)`,
        );
      }
      Atomics.wait(i32, at, cur, waitMs);
      waitMs = Math.min(MAX_WAIT_MS, waitMs * 2);
    }
  } finally {
    Atomics.sub(i32, rec + S_WAITERS, 1);
  }
}
