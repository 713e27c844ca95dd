import type { PassiveHealthcheckConf, UpstreamConf } from '../config/types.ts';
import { HEALTHY, UNHEALTHY, createHealthBuffer } from '../contracts/health-layout.ts';

/**
 * Per-worker target selection. Each algorithm is compiled once per conf; `pick`
 * runs per request attempt and allocates nothing.
 *
 * Passive health is nginx's max_fails/fail_timeout: `max_fails` failures within
 * `fail_timeout` take a target out for `fail_timeout`. When every target is out,
 * nginx tries them anyway rather than failing closed; so do we, through `pick`
 * falling back to the least recently failed target. A target the master's active
 * checker reports down (`setHealthy(false)`) is never picked.
 */
export class TargetState {
  readonly index: number;
  readonly address: string;
  readonly weight: number;
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

  constructor(index: number, address: string, weight: number, health: Int32Array) {
    this.index = index;
    this.address = address;
    this.weight = weight;
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

/** What consistent hashing keys on, resolved by the caller from `hash_on`. */
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

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

type Chooser = (targets: readonly TargetState[], tried: number, key: HashKey, now: number) => TargetState | null;

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

/** A hash ring with 100 points per unit of weight; a target that is out passes its keys to the next point. */
function consistentHash(targets: readonly TargetState[]): Chooser {
  const points: { hash: number; target: TargetState }[] = [];
  for (const t of targets) {
    for (let v = 0; v < t.weight * 100; v++) points.push({ hash: fnv1a(`${t.address}#${v}`), target: t });
  }
  points.sort((a, b) => a.hash - b.hash);
  const hashes = Uint32Array.from(points, (p) => p.hash);
  const owners = points.map((p) => p.target);
  return (_targets, tried, key, now) => {
    if (key === undefined) return roundRobin(_targets, tried, key, now);
    const h = fnv1a(key);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < owners.length; i++) {
      const t = owners[(lo + i) % owners.length]!;
      if (available(t, tried, now)) return t;
    }
    return null;
  };
}

/** `health`: the master's shared active-health buffer for this upstream; a private one when there is none (tests). */
export function createBalancer(conf: UpstreamConf, health: SharedArrayBuffer = createHealthBuffer(conf.targets.length)): Balancer {
  const slots = new Int32Array(health);
  const targets = conf.targets.map((t, index) => new TargetState(index, t.address, t.weight, slots));
  const choose: Chooser =
    conf.algorithm === 'least-conn' ? leastConn
      : conf.algorithm === 'ewma' ? ewma
        : conf.algorithm === 'consistent-hash' ? consistentHash(targets)
          : roundRobin;
  const passive: PassiveHealthcheckConf | null = conf.healthcheck.passive;

  return {
    targets,
    pick(tried, key, now) {
      const chosen = choose(targets, tried, key, now);
      if (chosen !== null || tried !== 0) return chosen;
      // Every target is passively marked down: like nginx, try the one that failed longest ago
      // rather than refuse; actively unhealthy targets stay excluded.
      let fallback: TargetState | null = null;
      for (const t of targets) {
        if (t.healthy && (fallback === null || t.downUntil < fallback.downUntil)) fallback = t;
      }
      return fallback;
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
