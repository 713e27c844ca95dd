import type { PassiveHealthcheckConf, UpstreamConf } from '../config/types.ts';
import { HEALTHY, UNHEALTHY, createHealthBuffer } from '../contracts/health-layout.ts';
import { murmur3 } from '../plugins/pdk/murmur3.ts';

/**
 * Per-worker target selection. Each algorithm is compiled once per conf; `pick`
 * runs per request attempt and allocates nothing.
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
  /** Requests in flight to this target from this worker (least-conn). */
  active = 0;
  /** Smooth weighted round-robin state (nginx ngx_http_upstream_get_peer). */
  current = 0;
  fails = 0;
  failWindowStart = 0;
  downUntil = 0;
  /** Peak-EWMA of response time in ms (ewma). */
  ewma = 0;
  ewmaStamp = 0;
  /** The upstream's shared active-health slots (health-state.ts). */
  private readonly health: Int32Array;

  constructor(index: number, address: string, weight: number, backup: boolean, health: Int32Array) {
    this.index = index;
    this.address = address;
    this.weight = weight;
    this.backup = backup;
    this.health = health;
  }

  /** Active health, as the master's prober last saw it. */
  get healthy(): boolean {
    return this.health[this.index] !== UNHEALTHY;
  }

  /** Only the prober (and tests) write the state. */
  set healthy(up: boolean) {
    this.health[this.index] = up ? HEALTHY : UNHEALTHY;
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
  t.healthy && (tried & triedBit(t.index)) === 0 && t.downUntil <= now;

type Chooser = (targets: readonly TargetState[], tried: number, key: HashKey, now: number) => TargetState | null;

/** The chooser for one group of targets: consistent hashing needs the group's own ring. */
const chooserFor = (algorithm: UpstreamConf['algorithm'], group: readonly TargetState[]): Chooser =>
  algorithm === 'least-conn' ? leastConn
    : algorithm === 'ewma' ? ewma
      : algorithm === 'consistent-hash' ? consistentHash(group)
        : roundRobin;

/** The healthy target that failed longest ago: nginx's try-anyway when every target is passively out. */
function leastRecentlyFailed(group: readonly TargetState[]): TargetState | null {
  let fallback: TargetState | null = null;
  for (const t of group) {
    if (t.healthy && (fallback === null || t.downUntil < fallback.downUntil)) fallback = t;
  }
  return fallback;
}

/** nginx smooth weighted round-robin: spreads a 5:1:1 split as a,a,b,a,c,a,a rather than a×5,b,c. */
const roundRobin: Chooser = (targets, tried, _key, now) => {
  let best: TargetState | null = null;
  let total = 0;
  for (const t of targets) {
    if (!available(t, tried, now)) continue;
    t.current += t.weight;
    total += t.weight;
    if (best === null || t.current > best.current) best = t;
  }
  if (best !== null) best.current -= total;
  return best;
};

/** Fewest in-flight requests relative to weight; ties go round-robin-ish by index order. */
const leastConn: Chooser = (targets, tried, _key, now) => {
  let best: TargetState | null = null;
  for (const t of targets) {
    if (!available(t, tried, now)) continue;
    if (best === null || t.active * best.weight < best.active * t.weight) best = t;
  }
  return best;
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

/** `health`: the master's shared active-health buffer for this upstream; a private one when there is none (tests). */
export function createBalancer(conf: UpstreamConf, health: SharedArrayBuffer = createHealthBuffer(conf.targets.length)): Balancer {
  const slots = new Int32Array(health);
  const targets = conf.targets.map((t, index) => new TargetState(index, t.address, t.weight, t.backup, slots));
  const primaries = targets.filter((t) => !t.backup);
  const backups = targets.filter((t) => t.backup);
  const choosePrimary = chooserFor(conf.algorithm, primaries);
  const chooseBackup = backups.length === 0 ? null : chooserFor(conf.algorithm, backups);
  const passive: PassiveHealthcheckConf | null = conf.healthcheck.passive;

  return {
    targets,
    pick(tried, key, now) {
      const chosen = choosePrimary(primaries, tried, key, now) ?? chooseBackup?.(backups, tried, key, now) ?? null;
      if (chosen !== null || tried !== 0) return chosen;
      // Every target is passively marked down: like nginx, try the one that failed longest ago
      // rather than refuse, a primary if any is actively healthy; actively unhealthy targets stay excluded.
      return leastRecentlyFailed(primaries) ?? leastRecentlyFailed(backups);
    },
    report(target, ok, ms, now) {
      if (conf.algorithm === 'ewma') {
        const decayed = target.ewma * Math.exp(-(now - target.ewmaStamp) / EWMA_DECAY_MS);
        target.ewma = ms > decayed ? ms : decayed + (ms - decayed) * 0.2; // peak-sensitive
        target.ewmaStamp = now;
      }
      if (passive === null) return;
      if (ok) { target.fails = 0; return; }
      if (now - target.failWindowStart > passive.fail_timeout) {
        target.failWindowStart = now;
        target.fails = 0;
      }
      if (++target.fails >= passive.max_fails) {
        target.downUntil = now + passive.fail_timeout;
        target.fails = 0;
      }
    },
  };
}
