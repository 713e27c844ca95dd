import { initArena } from './alloc.ts';
import { checkOwner } from './checks.ts';
import { ShdictError } from './errors.ts';
import { stripeProblem } from './invariants.ts';
import type { ItemStore } from './items.ts';
import { S_ITEMS, S_LOCK } from './layout.ts';
import { RECOVERY_OWNER, unlock } from './lock.ts';

/*
 * Recovery from a thread that died holding a stripe lock, and the full structural check
 * that decides whether its stripe must be wiped (invariants.ts).
 */

/**
 * Releases every stripe lock held by `owner`, a thread the caller knows is dead. The dead
 * thread may have stopped half-way through a write, so each such stripe is checked and,
 * if its structure is damaged, wiped (losing that stripe's keys, never corrupting the
 * zone). Returns the number of locks released.
 */
export function releaseLocksOwnedBy(d: ItemStore, owner: number): number {
  checkOwner(owner);
  let released = 0;
  for (let s = 0; s < d.geometry.stripes; s++) {
    const rec = d.recOf(s);
    if (Atomics.compareExchange(d.i32, rec + S_LOCK, owner, RECOVERY_OWNER) !== owner) continue;
    if (stripeProblem(d.i32, d.geometry, s) !== undefined) resetStripe(d, s);
    unlock(d.i32, rec);
    released++;
  }
  return released;
}

/** Throws SHDICT_ERR_CORRUPT describing the first broken invariant (O(zone); tests). */
export function checkInvariants(d: ItemStore): void {
  for (let s = 0; s < d.geometry.stripes; s++) {
    const rec = d.recOf(s);
    d.lockStripe(rec);
    let problem: string | undefined;
    try {
      problem = stripeProblem(d.i32, d.geometry, s);
    } finally {
      unlock(d.i32, rec);
    }
    if (problem !== undefined) throw new ShdictError('SHDICT_ERR_CORRUPT', `shdict stripe ${s}: ${problem}`);
  }
}

/** Empties stripe `s`: its buckets, its count and its arena. */
function resetStripe(d: ItemStore, s: number): void {
  const g = d.geometry;
  const rec = d.recOf(s);
  const index = (g.indexBase >> 2) + s * g.buckets;
  d.i32.fill(0, index, index + g.buckets);
  d.i32[rec + S_ITEMS] = 0;
  initArena(d.i32, rec, g.arenaBase + s * g.arenaBytes, g.arenaBytes);
}
