import type { PassiveHealthcheckConf, UpstreamConf } from '../config/types.ts';
import { HEALTHY, TARGET_SLOT, UNHEALTHY, createInFlightShare, createUpstreamZone, downLeft, targetSlot } from '../contracts/upstream-zone.ts';
import { murmur3 } from '../plugins/pdk/murmur3.ts';

/**
 * Target selection. Each algorithm is compiled once per conf; `pick` runs per
 * request attempt and allocates nothing.
 *
 * The state the workers must agree on lives in the upstream's zone, which the
 * master owns and hands to every worker (upstream-zone.ts, nginx's `upstream
 * zone`): active health, requests in flight, passive failures and the smooth
 * round-robin weights. So least-conn counts every worker's requests, a target
 * that fails max_fails times in any mix of workers is out for all of them, and
 * a 5:1 weighting holds over the sum of the workers' picks. Only the EWMA of
 * response times stays per worker: each worker's answers are a fair sample of
 * the same latency, and a shared float would need a lock (Atomics has no
 * Float64 read-modify-write) for an estimate that is as good without one.
 *
 * Passive health is nginx's max_fails/fail_timeout: `max_fails` failures within
 * `fail_timeout` take a target out for `fail_timeout`. When every target is out,
 * nginx tries them anyway rather than failing closed; so do we, through `pick`
 * falling back to the least recently failed target. A target the master's active
 * checker reports down (`setHealthy(false)`) is never picked.
 *
 * Backup targets (nginx `backup`) are a second group with its own algorithm state
 * (and its own ring): they are picked only when no primary is available for this
 * attempt, so traffic returns to the primaries as soon as one is back. The
 * try-anyway fallback comes after both groups, primaries first.
 */
export class TargetState {
  readonly index: number;
  readonly address: string;
  readonly weight: number;
  readonly backup: boolean;
  /** Peak-EWMA of response time in ms (ewma), this worker's. */
  ewma = 0;
  ewmaStamp = 0;
  /** The upstream's zone and where this target's block starts in it. */
  private readonly zone: Int32Array;
  private readonly base: number;
  /** This worker's requests in flight, per target of the upstream. */
  private readonly share: Int32Array;
  /** The upstream's fail_timeout (0 without passive checks): how far ahead a down mark may lie. */
  private readonly failTimeout: number;

  constructor(index: number, address: string, weight: number, backup: boolean, zone: Int32Array, share: Int32Array, failTimeout: number) {
    this.index = index;
    this.address = address;
    this.weight = weight;
    this.backup = backup;
    this.zone = zone;
    this.base = targetSlot(index, 0);
    this.share = share;
    this.failTimeout = failTimeout;
  }

  /** Active health, as the master's prober last saw it. */
  get healthy(): boolean {
    return this.zone[this.base + TARGET_SLOT.HEALTH] !== UNHEALTHY;
  }

  /** Only the prober (and tests) write the state. */
  set healthy(up: boolean) {
    this.zone[this.base + TARGET_SLOT.HEALTH] = up ? HEALTHY : UNHEALTHY;
  }

  /** Requests in flight to this target from every worker. */
  get active(): number {
    return this.zone[this.base + TARGET_SLOT.IN_FLIGHT]!;
  }

  /**
   * An attempt starts: counted for every worker, and in this worker's share.
   * The orders in begin and end are such that a thread killed between the two
   * updates leaves one request too many rather than a negative count, which
   * least-conn would chase.
   */
  begin(): void {
    Atomics.add(this.zone, this.base + TARGET_SLOT.IN_FLIGHT, 1);
    this.share[this.index]!++;
  }

  end(): void {
    this.share[this.index]!--;
    Atomics.sub(this.zone, this.base + TARGET_SLOT.IN_FLIGHT, 1);
  }

  /** Milliseconds this target stays passively out; 0 when it is in (an expired mark is cleared on the way). */
  downFor(now: number): number {
    const slot = this.base + TARGET_SLOT.DOWN_UNTIL;
    const until = this.zone[slot]!;
    const left = downLeft(until, now, this.failTimeout);
    // Over, or a stale mark seen across a wrap of the clock: clear it unless another worker just marked again.
    if (left === 0 && until !== 0) Atomics.compareExchange(this.zone, slot, until, 0);
    return left;
  }

  /** A failed attempt: `maxFails` of them within fail_timeout, from any workers, take the target out for fail_timeout. */
  failed(now: number, maxFails: number): void {
    const z = this.zone;
    const t = now | 0;
    const window = this.base + TARGET_SLOT.FAIL_WINDOW;
    const fails = this.base + TARGET_SLOT.FAILS;
    const start = Atomics.load(z, window);
    const age = (t - start) | 0;
    if (Atomics.load(z, fails) === 0 || age > this.failTimeout || age < 0) {
      // One worker opens the new window; a failure another worker counts in between may be
      // lost with the old count, which makes max_fails one failure later, never earlier.
      if (Atomics.compareExchange(z, window, start, t) === start) Atomics.store(z, fails, 0);
    }
    if (Atomics.add(z, fails, 1) + 1 >= maxFails) {
      Atomics.store(z, this.base + TARGET_SLOT.DOWN_UNTIL, ((t + this.failTimeout) | 0) || 1); // 0 means "in"
      Atomics.store(z, fails, 0);
    }
  }

  /** A success resets the count; read first, so that a healthy target's line is not written on every request. */
  succeeded(): void {
    const fails = this.base + TARGET_SLOT.FAILS;
    if (this.zone[fails] !== 0) Atomics.store(this.zone, fails, 0);
  }

  /**
   * One step of smooth weighted round-robin on the shared weights: `current`
   * grows by the weight (returns the new value) and the winner's drops by the
   * total. Every update is an atomic add, so whatever the interleaving each
   * target's `current` is exactly (its weight × picks made while it was
   * available) − (total × times it won), and picks that race can only both
   * choose the same target, which then waits its turn longer: the shares are
   * exact over time, with no lock and nothing to repair if a worker dies.
   */
  raise(): number {
    return Atomics.add(this.zone, this.base + TARGET_SLOT.CURRENT, this.weight) + this.weight;
  }

  lower(total: number): void {
    Atomics.sub(this.zone, this.base + TARGET_SLOT.CURRENT, total);
  }
}

/** What consistent hashing keys on (hash-key.ts extracts it per `hash_on`); undefined = no key, round-robin. */
export type HashKey = string | undefined;

export interface Balancer {
  readonly targets: readonly TargetState[];
  /** `tried` is a bitmask of target indexes already attempted for this request. */
  pick(tried: number, hashKey: HashKey, now: number): TargetState | null;
  /** Outcome of one attempt; `ms` is its duration. */
  report(target: TargetState, ok: boolean, ms: number, now: number): void;
}

const EWMA_DECAY_MS = 10_000; // Kong's latency balancer uses a 10 s decay

/** Bit for `tried`; targets past the 31st share no bit and may be retried (rare, harmless). */
export const triedBit = (index: number): number => (index < 31 ? 1 << index : 0);

const available = (t: TargetState, tried: number, now: number): boolean =>
  t.healthy && (tried & triedBit(t.index)) === 0 && t.downFor(now) === 0;

type Chooser = (targets: readonly TargetState[], tried: number, key: HashKey, now: number) => TargetState | null;

/** The chooser for one group of targets: consistent hashing needs the group's own ring. */
const chooserFor = (algorithm: UpstreamConf['algorithm'], group: readonly TargetState[]): Chooser =>
  algorithm === 'least-conn' ? leastConn
    : algorithm === 'ewma' ? ewma
      : algorithm === 'consistent-hash' ? consistentHash(group)
        : roundRobin;

/** The healthy target that failed longest ago (the soonest back): nginx's try-anyway when every target is passively out. */
function leastRecentlyFailed(group: readonly TargetState[], now: number): TargetState | null {
  let fallback: TargetState | null = null;
  let soonest = 0;
  for (const t of group) {
    if (!t.healthy) continue;
    const left = t.downFor(now);
    if (fallback === null || left < soonest) {
      fallback = t;
      soonest = left;
    }
  }
  return fallback;
}

/**
 * nginx smooth weighted round-robin: spreads a 5:1:1 split as a,a,b,a,c,a,a
 * rather than a×5,b,c. With `tiedWith`, only among the targets whose load
 * ties with it (least-conn's ties, as nginx breaks them).
 */
function smoothPick(targets: readonly TargetState[], tried: number, now: number, tiedWith: TargetState | null): TargetState | null {
  let best: TargetState | null = null;
  let bestCurrent = 0;
  let total = 0;
  for (const t of targets) {
    if (!available(t, tried, now) || (tiedWith !== null && t.active * tiedWith.weight !== tiedWith.active * t.weight)) continue;
    const current = t.raise();
    total += t.weight;
    if (best === null || current > bestCurrent) {
      best = t;
      bestCurrent = current;
    }
  }
  if (best !== null) best.lower(total);
  return best;
}

const roundRobin: Chooser = (targets, tried, _key, now) => smoothPick(targets, tried, now, null);

/**
 * Fewest in-flight requests (across every worker) relative to weight. Ties
 * go by weighted round-robin among the tied, as nginx's least_conn does: with
 * shared counts, light traffic finds every target idle, and the lowest index
 * would otherwise take it all.
 */
const leastConn: Chooser = (targets, tried, _key, now) => {
  let best: TargetState | null = null;
  let ties = 0;
  for (const t of targets) {
    if (!available(t, tried, now)) continue;
    if (best === null || t.active * best.weight < best.active * t.weight) {
      best = t;
      ties = 1;
    } else if (t.active * best.weight === best.active * t.weight) ties++;
  }
  // Another worker may have moved a count between the passes: then the first pass's answer stands.
  return ties > 1 ? (smoothPick(targets, tried, now, best) ?? best) : best;
};

/** Lowest peak-EWMA latency × (in-flight + 1), the idea behind Kong's `latency` and APISIX's `ewma`. */
const ewma: Chooser = (targets, tried, _key, now) => {
  let best: TargetState | null = null;
  let bestScore = Infinity;
  for (const t of targets) {
    if (!available(t, tried, now)) continue;
    const decayed = t.ewma * Math.exp(-(now - t.ewmaStamp) / EWMA_DECAY_MS);
    const score = (decayed + 1) * (t.active + 1) / t.weight;
    if (score < bestScore) { best = t; bestScore = score; }
  }
  return best;
};

/**
 * Ring points per unit of weight, after weights are divided by their gcd.
 * A target's share of the ring is typically off its weight by 1/sqrt(points):
 * nginx's and ketama's 160 leave 8%, 1000 leaves 3%, for a ring of 1000 entries
 * per target built once per conf (a few ms for ten targets).
 */
const POINTS_PER_WEIGHT = 1000;
/** Weights like 65535:1 would ask for millions of points: past this, every target's count is scaled down. */
const MAX_POINTS = 1 << 18;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * A ketama-style ring: each target owns points hashed from `address#n`, so its
 * points do not depend on the other targets and adding or removing one moves
 * only the keys on its own arcs. A key goes to the first point at or after its
 * hash; when that target is out (unhealthy, passively down, already tried) the
 * key walks on to the next point, and comes back when the target does.
 */
function consistentHash(targets: readonly TargetState[]): Chooser {
  const unit = targets.reduce((g, t) => gcd(t.weight, g), 0);
  const units = targets.reduce((sum, t) => sum + t.weight / unit, 0);
  const perUnit = Math.min(POINTS_PER_WEIGHT, MAX_POINTS / units);
  const points: { hash: number; target: TargetState }[] = [];
  for (const t of targets) {
    const count = Math.max(1, Math.round((t.weight / unit) * perUnit));
    for (let v = 0; v < count; v++) points.push({ hash: murmur3(`${t.address}#${v}`), target: t });
  }
  // Ties (two targets' points with one hash) go by address, so the conf's order of targets does not matter.
  points.sort((a, b) => a.hash - b.hash || (a.target.address < b.target.address ? -1 : 1));
  const hashes = Uint32Array.from(points, (p) => p.hash);
  const owners = points.map((p) => p.target);

  return (all, tried, key, now) => {
    if (key === undefined) return roundRobin(all, tried, key, now);
    // The walk below ends only at an available target: make sure there is one.
    let any = false;
    for (const t of all) if (available(t, tried, now)) { any = true; break; }
    if (!any) return null;
    const h = murmur3(key);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; ; i++) {
      const t = owners[i % owners.length]!;
      if (available(t, tried, now)) return t;
    }
  };
}

/**
 * `zone`: the master's buffer for this upstream (upstream-zone.ts), shared with
 * the other workers; `share`: this worker's in-flight counts. Private ones when
 * there are none (tests, benches): a balancer on its own.
 */
export function createBalancer(
  conf: UpstreamConf,
  zone: SharedArrayBuffer = createUpstreamZone(conf.targets.length),
  share: SharedArrayBuffer = createInFlightShare(conf.targets.length),
): Balancer {
  const passive: PassiveHealthcheckConf | null = conf.healthcheck.passive;
  const slots = new Int32Array(zone);
  const mine = new Int32Array(share);
  const targets = conf.targets.map((t, index) => new TargetState(index, t.address, t.weight, t.backup, slots, mine, passive?.fail_timeout ?? 0));
  const primaries = targets.filter((t) => !t.backup);
  const backups = targets.filter((t) => t.backup);
  const choosePrimary = chooserFor(conf.algorithm, primaries);
  const chooseBackup = backups.length === 0 ? null : chooserFor(conf.algorithm, backups);

  return {
    targets,
    pick(tried, key, now) {
      const chosen = choosePrimary(primaries, tried, key, now) ?? chooseBackup?.(backups, tried, key, now) ?? null;
      if (chosen !== null || tried !== 0) return chosen;
      // Every target is passively marked down: like nginx, try the one that failed longest ago
      // rather than refuse, a primary if any is actively healthy; actively unhealthy targets stay excluded.
      return leastRecentlyFailed(primaries, now) ?? leastRecentlyFailed(backups, now);
    },
    report(target, ok, ms, now) {
      if (conf.algorithm === 'ewma') {
        const decayed = target.ewma * Math.exp(-(now - target.ewmaStamp) / EWMA_DECAY_MS);
        target.ewma = ms > decayed ? ms : decayed + (ms - decayed) * 0.2; // peak-sensitive
        target.ewmaStamp = now;
      }
      if (passive === null) return;
      if (ok) target.succeeded();
      else target.failed(now, passive.max_fails);
    },
  };
}
