import { ShdictError } from './errors.ts';
import { MAX_CAPACITY, MIN_CAPACITY } from './layout.ts';
import { RECOVERY_OWNER } from './lock.ts';

/* Argument checks: programmer errors throw ShdictError before any lock is taken. */

/**
 * The checks every keyed operation makes, as methods: the bottom layer of the classes
 * that dict-state.ts describes (a method call folds to a constant where an imported
 * function is reloaded at each call: ~2% of incr and compareAndSet).
 */
export class ArgumentChecks {
  checkTtl(ttlMs: number): void {
    if (typeof ttlMs !== 'number' || !(ttlMs >= 0) || ttlMs === Infinity) {
      throw new ShdictError('SHDICT_ERR_BAD_TTL', `shdict ttl must be a finite number of ms >= 0, got ${ttlMs}`);
    }
  }

  checkNumber(n: unknown, what: string): void {
    if (typeof n !== 'number') throw new ShdictError('SHDICT_ERR_BAD_VALUE', `shdict ${what} must be a number`);
  }

  checkFlags(flags: number): void {
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff_ffff) {
      throw new ShdictError('SHDICT_ERR_BAD_VALUE', `shdict flags must be a uint32, got ${flags}`);
    }
  }
}

export function checkOwner(owner: number): void {
  if (!Number.isInteger(owner) || owner < 1 || owner >= RECOVERY_OWNER) {
    throw new ShdictError('SHDICT_ERR_BAD_OWNER', `shdict owner must be an integer >= 1, got ${owner}`);
  }
}

export function checkSize(size: number, stripes: number | undefined): void {
  if (!Number.isInteger(size) || size < MIN_CAPACITY || size > MAX_CAPACITY) {
    throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict size must be an integer in [${MIN_CAPACITY}, ${MAX_CAPACITY}]`);
  }
  const s = stripes;
  if (s !== undefined && (!Number.isInteger(s) || s < 1 || s > 1024 || (s & (s - 1)) !== 0)) {
    throw new ShdictError('SHDICT_ERR_BAD_SIZE', `shdict stripes must be a power of two in [1, 1024], got ${s}`);
  }
}
