import { describe, expect, test } from 'vitest';
import { createBalancer, triedBit } from '../../src/worker/balancer.ts';
import type { Balancer, TargetState } from '../../src/worker/balancer.ts';
import type { Algorithm, PassiveHealthcheckConf } from '../../src/config/types.ts';
import { upstreamConf } from '../helpers/upstream-conf.ts';

const upstream = upstreamConf;

const A = '10.0.0.1:80';
const B = '10.0.0.2:80';
const C = '10.0.0.3:80';
const D = '10.0.0.4:80';
const NAMES: Readonly<Record<string, string>> = { [A]: 'a', [B]: 'b', [C]: 'c', [D]: 'd' };

const name = (t: TargetState | null): string => (t === null ? 'null' : NAMES[t.address]!);

function picks(b: Balancer, n: number, now = 0, key?: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(name(b.pick(0, key, now)));
  return out;
}

/** Brings `t`'s requests in flight to `n` (they only go up here). */
function load(t: TargetState, n: number): void {
  while (t.active < n) t.begin();
}

function count(seq: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of seq) out[s] = (out[s] ?? 0) + 1;
  return out;
}

describe('smooth weighted round-robin', () => {
  test('weights 5,1,1 give nginx\'s sequence a a b a c a a, and it repeats', () => {
    const b = createBalancer(upstream([[A, 5], [B, 1], [C, 1]]));
    expect(picks(b, 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    expect(picks(b, 7)).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  test('equal weights alternate', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]]));
    expect(picks(b, 6)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('exact proportions over many picks', () => {
    const b = createBalancer(upstream([[A, 3], [B, 2], [C, 7], [D, 1]]));
    const total = 3 + 2 + 7 + 1;
    expect(count(picks(b, total * 1000))).toEqual({ a: 3000, b: 2000, c: 7000, d: 1000 });
  });

  test('the tried bitmask skips targets already attempted for this request', () => {
    const b = createBalancer(upstream([[A, 5], [B, 1], [C, 1]]));
    const first = b.pick(0, undefined, 0)!;
    expect(name(first)).toBe('a');
    let tried = triedBit(first.index);
    const second = b.pick(tried, undefined, 0)!;
    expect(name(second)).not.toBe('a');
    tried |= triedBit(second.index);
    const third = b.pick(tried, undefined, 0)!;
    expect(new Set([name(first), name(second), name(third)])).toEqual(new Set(['a', 'b', 'c']));
    tried |= triedBit(third.index);
    // Every target tried: a retry has nowhere to go (no fallback once the request has tried one).
    expect(b.pick(tried, undefined, 0)).toBeNull();
  });

  test('triedBit gives one bit per index below 31 and none beyond', () => {
    expect(triedBit(0)).toBe(1);
    expect(triedBit(5)).toBe(32);
    expect(triedBit(30)).toBe(1 << 30);
    expect(triedBit(31)).toBe(0);
  });
});

describe('passive health (max_fails / fail_timeout)', () => {
  const passive = { max_fails: 2, fail_timeout: 10_000 };

  test('max_fails failures within fail_timeout take a target out for fail_timeout', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'round-robin', passive));
    const [a] = b.targets;
    b.report(a!, false, 5, 1_000);
    // One failure is not enough.
    expect(picks(b, 4, 1_500).sort()).toEqual(['a', 'a', 'b', 'b']);
    b.report(a!, false, 5, 2_000);
    expect(picks(b, 6, 2_001)).toEqual(['b', 'b', 'b', 'b', 'b', 'b']);
    expect(picks(b, 4, 11_999)).toEqual(['b', 'b', 'b', 'b']);
    // Back once fail_timeout has passed since the failure that took it out.
    expect(picks(b, 4, 12_000).sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  test('failures spread wider than fail_timeout never add up', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'round-robin', passive));
    const [a] = b.targets;
    b.report(a!, false, 5, 0);
    b.report(a!, false, 5, 10_001); // a new window starts: this is failure 1 again
    expect(picks(b, 4, 10_002).sort()).toEqual(['a', 'a', 'b', 'b']);
    b.report(a!, false, 5, 10_500);
    expect(picks(b, 2, 10_501)).toEqual(['b', 'b']);
  });

  test('a success resets the failure count', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'round-robin', passive));
    const [a] = b.targets;
    b.report(a!, false, 5, 100);
    b.report(a!, true, 5, 200);
    b.report(a!, false, 5, 300);
    expect(picks(b, 4, 301).sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  test('without passive health, failures change nothing', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]]));
    const [a] = b.targets;
    for (let i = 0; i < 10; i++) b.report(a!, false, 5, i);
    expect(picks(b, 4, 20).sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  test('all targets down: pick falls back to the one that failed longest ago', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'round-robin', { max_fails: 1, fail_timeout: 10_000 }));
    const [a, bb, c] = b.targets;
    b.report(bb!, false, 5, 1_000);
    b.report(a!, false, 5, 2_000);
    b.report(c!, false, 5, 3_000);
    expect(name(b.pick(0, undefined, 4_000))).toBe('b');
    // A retry (something already tried) gets no fallback.
    expect(b.pick(triedBit(1), undefined, 4_000)).toBeNull();
  });

  test('an actively unhealthy target is never picked, not even as the fallback', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'round-robin', { max_fails: 1, fail_timeout: 10_000 }));
    const [a, bb] = b.targets;
    a!.healthy = false;
    expect(picks(b, 3)).toEqual(['b', 'b', 'b']);
    b.report(bb!, false, 5, 100);
    expect(name(b.pick(0, undefined, 200))).toBe('b');
    bb!.healthy = false;
    expect(b.pick(0, undefined, 200)).toBeNull();
  });
});

describe('least-conn', () => {
  test('picks the target with the fewest requests in flight', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'least-conn'));
    const [a, bb, c] = b.targets;
    load(a!, 3);
    load(bb!, 1);
    load(c!, 2);
    expect(name(b.pick(0, undefined, 0))).toBe('b');
    load(bb!, 5);
    expect(name(b.pick(0, undefined, 0))).toBe('c');
  });

  test('load is relative to weight (active / weight)', () => {
    const b = createBalancer(upstream([[A, 4], [B, 1]], 'least-conn'));
    const [a, bb] = b.targets;
    load(a!, 6); // 1.5 per unit of weight
    load(bb!, 2); // 2 per unit
    expect(name(b.pick(0, undefined, 0))).toBe('a');
    load(a!, 9); // 2.25
    expect(name(b.pick(0, undefined, 0))).toBe('b');
  });

  test('skips tried and passively-down targets', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'least-conn', { max_fails: 1, fail_timeout: 1_000 }));
    const [a, bb] = b.targets;
    load(bb!, 10);
    expect(name(b.pick(triedBit(0), undefined, 0))).toBe('b');
    b.report(a!, false, 1, 0);
    expect(name(b.pick(0, undefined, 1))).toBe('b');
  });
});

describe('consistent-hash', () => {
  const keys = Array.from({ length: 4000 }, (_, i) => `user-${i}`);

  /**
   * Keys "1".."1000" over k equal targets: every count within 3.5 binomial
   * standard deviations of 1000/k, and Pearson's chi-square under its 0.1%
   * critical value. FNV-1a without a finaliser fails both (chi-square 54 for 3
   * targets, 174 for 10, one of 10 targets with 32 keys).
   */
  test.each([
    [3, 13.82],
    [10, 27.88],
  ])('keys "1".."1000" spread evenly over %i equal targets', (k, chiSquareLimit) => {
    const addresses = Array.from({ length: k }, (_, i) => `10.0.0.${i + 1}:80`);
    const b = createBalancer(upstream(addresses.map((a) => [a, 1] as const), 'consistent-hash'));
    const counts = new Array<number>(k).fill(0);
    for (let i = 1; i <= 1000; i++) counts[b.pick(0, String(i), 0)!.index]!++;
    const expected = 1000 / k;
    const sd = Math.sqrt(1000 * (1 / k) * (1 - 1 / k));
    for (const c of counts) expect(Math.abs(c - expected), `counts ${counts.join(',')}`).toBeLessThan(3.5 * sd);
    const chiSquare = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    expect(chiSquare, `counts ${counts.join(',')}`).toBeLessThan(chiSquareLimit);
  });

  /**
   * Companies 11, 22, 33 (and 12, 24, 36 …) on three targets: all three share
   * one no more often than three random keys would, about 1/9. Over 200 target
   * sets with ports as the kernel hands them out; FNV-1a without a finaliser
   * puts such triples together about 25% of the time.
   */
  test('sequential company ids share a target about as often as chance (1/9)', () => {
    let seed = 1;
    const port = (): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; // Numerical Recipes' LCG: deterministic ports
      return 32768 + (seed % 28232);
    };
    let together = 0;
    let triples = 0;
    for (let set = 0; set < 200; set++) {
      const b = createBalancer(upstream([[`127.0.0.1:${port()}`, 1], [`127.0.0.1:${port()}`, 1], [`127.0.0.1:${port()}`, 1]], 'consistent-hash'));
      for (let c = 11; c <= 20; c++) {
        const [x, y, z] = [c, 2 * c, 3 * c].map((id) => b.pick(0, String(id), 0)!.index);
        if (x === y && y === z) together++;
        triples++;
      }
    }
    expect(together / triples).toBeGreaterThan(0.09);
    expect(together / triples).toBeLessThan(0.14);
  });

  test('weights share the keys out in proportion', () => {
    const b = createBalancer(upstream([[A, 1], [B, 2], [C, 3]], 'consistent-hash'));
    const spread = count(Array.from({ length: 6000 }, (_, i) => name(b.pick(0, String(i), 0))));
    for (const [n, share] of [['a', 1], ['b', 2], ['c', 3]] as const) {
      expect(Math.abs(spread[n]! - share * 1000), JSON.stringify(spread)).toBeLessThan(share * 100);
    }
  });

  test('weights with a common factor make the same ring as their quotients', () => {
    const small = createBalancer(upstream([[A, 1], [B, 2]], 'consistent-hash'));
    const large = createBalancer(upstream([[A, 100], [B, 200]], 'consistent-hash'));
    expect(keys.map((k) => name(large.pick(0, k, 0)))).toEqual(keys.map((k) => name(small.pick(0, k, 0))));
  });

  test('the same key always lands on the same target, whatever came before', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1], [D, 1]], 'consistent-hash'));
    const first = keys.map((k) => name(b.pick(0, k, 0)));
    const again = [...keys].reverse().map((k) => name(b.pick(0, k, 0))).reverse();
    expect(again).toEqual(first);
    // And a fresh balancer on the same conf agrees (another worker).
    const other = createBalancer(upstream([[A, 1], [B, 1], [C, 1], [D, 1]], 'consistent-hash'));
    expect(keys.map((k) => name(other.pick(0, k, 0)))).toEqual(first);
    // Keys are spread over every target, roughly evenly.
    const spread = count(first);
    for (const n of ['a', 'b', 'c', 'd']) expect(spread[n]!).toBeGreaterThan(keys.length / 4 / 2);
  });

  test('removing one of N targets moves only that target\'s keys (~1/N)', () => {
    const four = createBalancer(upstream([[A, 1], [B, 1], [C, 1], [D, 1]], 'consistent-hash'));
    const three = createBalancer(upstream([[A, 1], [B, 1], [D, 1]], 'consistent-hash'));
    let moved = 0;
    for (const k of keys) {
      const before = name(four.pick(0, k, 0));
      const after = name(three.pick(0, k, 0));
      if (before !== 'c') expect(after, k).toBe(before);
      if (before !== after) moved++;
    }
    expect(moved / keys.length).toBeGreaterThan(0.15);
    expect(moved / keys.length).toBeLessThan(0.35);
  });

  test('a target that is out passes its keys on, and gets them back when it returns', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'consistent-hash'));
    const before = keys.map((k) => name(b.pick(0, k, 0)));
    b.targets[1]!.healthy = false;
    const during = keys.map((k) => name(b.pick(0, k, 0)));
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== 'b') expect(during[i]).toBe(before[i]);
      else expect(during[i]).not.toBe('b');
    }
    b.targets[1]!.healthy = true;
    expect(keys.map((k) => name(b.pick(0, k, 0)))).toEqual(before);
  });

  test('a passively down target passes its keys on until fail_timeout is over', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'consistent-hash', { max_fails: 1, fail_timeout: 10_000 }));
    const before = keys.map((k) => name(b.pick(0, k, 0)));
    b.report(b.targets[0]!, false, 5, 1_000);
    const during = keys.map((k) => name(b.pick(0, k, 2_000)));
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== 'a') expect(during[i]).toBe(before[i]);
      else expect(during[i]).not.toBe('a');
    }
    expect(keys.map((k) => name(b.pick(0, k, 11_000)))).toEqual(before);
  });

  test('every target out: a key gets the fallback the other algorithms get', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'consistent-hash', { max_fails: 1, fail_timeout: 10_000 }));
    const [a, bb, c] = b.targets;
    b.report(bb!, false, 5, 1_000);
    b.report(a!, false, 5, 2_000);
    b.report(c!, false, 5, 3_000);
    expect(name(b.pick(0, 'k1', 4_000))).toBe('b');
    expect(b.pick(triedBit(1), 'k1', 4_000)).toBeNull();
  });

  test('a retry for a key skips the tried target', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1]], 'consistent-hash'));
    const first = b.pick(0, 'k1', 0)!;
    const second = b.pick(triedBit(first.index), 'k1', 0)!;
    expect(second).not.toBeNull();
    expect(second.index).not.toBe(first.index);
  });

  test('no key: round-robin', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'consistent-hash'));
    expect(picks(b, 4)).toEqual(['a', 'b', 'a', 'b']);
  });
});

describe('ewma', () => {
  test('prefers the faster target once latencies are known', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'ewma'));
    const [a, bb] = b.targets;
    b.report(a!, true, 200, 1_000);
    b.report(bb!, true, 10, 1_000);
    expect(picks(b, 5, 1_001)).toEqual(['b', 'b', 'b', 'b', 'b']);
  });

  test('a target that turns slow loses to one that is now faster (peak-sensitive)', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'ewma'));
    const [a, bb] = b.targets;
    for (let t = 0; t < 10; t++) {
      b.report(a!, true, 10, t * 10);
      b.report(bb!, true, 20, t * 10);
    }
    expect(name(b.pick(0, undefined, 100))).toBe('a');
    b.report(a!, true, 500, 100); // one slow answer counts at once
    expect(name(b.pick(0, undefined, 101))).toBe('b');
  });

  test('in-flight requests count against a target', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1]], 'ewma'));
    const [a, bb] = b.targets;
    b.report(a!, true, 10, 0);
    b.report(bb!, true, 15, 0);
    load(a!, 5);
    expect(name(b.pick(0, undefined, 1))).toBe('b');
  });
});

describe('backup targets (nginx backup)', () => {
  const ALGORITHMS: readonly Algorithm[] = ['round-robin', 'least-conn', 'consistent-hash', 'ewma'];
  const passive: PassiveHealthcheckConf = { max_fails: 1, fail_timeout: 10_000 };
  /** a and b primaries, c and d backups. */
  const withBackups = (algorithm: Algorithm) => createBalancer(upstream([[A, 1], [B, 1], [C, 1, 'backup'], [D, 1, 'backup']], algorithm, passive));

  for (const algorithm of ALGORITHMS) {
    describe(algorithm, () => {
      const key = algorithm === 'consistent-hash' ? 'company-42' : undefined;

      test('backups get nothing while a primary is available', () => {
        const b = withBackups(algorithm);
        b.targets[0]!.healthy = false; // one primary down: the other takes everything
        const seen = new Set<string>();
        for (let i = 0; i < 50; i++) seen.add(name(b.pick(0, i % 2 === 0 ? key : `k${i}`, 0)));
        expect(seen).toEqual(new Set(['b']));
      });

      test('every primary actively down: the backups share the traffic, and it goes back when a primary recovers', () => {
        const b = withBackups(algorithm);
        b.targets[0]!.healthy = false;
        b.targets[1]!.healthy = false;
        const seen = new Set<string>();
        for (let i = 0; i < 50; i++) {
          const t = b.pick(0, algorithm === 'consistent-hash' ? `k${i}` : undefined, 0)!;
          seen.add(name(t));
          t.begin(); // least-conn and ewma spread by load; round-robin and the ring spread anyway
        }
        expect(seen).toEqual(new Set(['c', 'd']));
        b.targets[1]!.healthy = true;
        expect(name(b.pick(0, key, 0))).toBe('b');
      });

      test('every primary passively out: backups until fail_timeout is over, then the primaries', () => {
        const b = withBackups(algorithm);
        b.report(b.targets[0]!, false, 5, 1_000);
        b.report(b.targets[1]!, false, 5, 1_000);
        expect(['c', 'd']).toContain(name(b.pick(0, key, 2_000)));
        expect(['a', 'b']).toContain(name(b.pick(0, key, 11_001)));
      });

      test('a retry after every primary was tried goes to a backup', () => {
        const b = withBackups(algorithm);
        const tried = triedBit(0) | triedBit(1);
        expect(['c', 'd']).toContain(name(b.pick(tried, key, 0)));
      });

      test('everything out: the try-anyway fallback comes after the backups and prefers a primary', () => {
        const b = withBackups(algorithm);
        b.report(b.targets[1]!, false, 5, 1_000); // b failed longest ago of the primaries
        b.report(b.targets[0]!, false, 5, 2_000);
        b.report(b.targets[2]!, false, 5, 500); // backups failed even earlier: still not chosen over a primary
        b.report(b.targets[3]!, false, 5, 500);
        expect(name(b.pick(0, key, 3_000))).toBe('b');
        b.targets[0]!.healthy = false;
        b.targets[1]!.healthy = false;
        expect(['c', 'd']).toContain(name(b.pick(0, key, 3_000)));
      });
    });
  }

  test('round-robin: the weights of the backups hold among themselves', () => {
    const b = createBalancer(upstream([[A, 1], [B, 3, 'backup'], [C, 1, 'backup']]));
    b.targets[0]!.healthy = false;
    expect(count(picks(b, 400))).toEqual({ b: 300, c: 100 });
  });

  test('consistent-hash: backups do not move any key among the primaries', () => {
    const plain = createBalancer(upstream([[A, 1], [B, 1]], 'consistent-hash'));
    const backed = createBalancer(upstream([[A, 1], [B, 1], [C, 1, 'backup'], [D, 1, 'backup']], 'consistent-hash'));
    for (let i = 0; i < 2_000; i++) {
      const k = `company-${i}`;
      expect(name(backed.pick(0, k, 0))).toBe(name(plain.pick(0, k, 0)));
    }
  });

  test('consistent-hash: with the primaries down, a key stays on one backup', () => {
    const b = createBalancer(upstream([[A, 1], [B, 1], [C, 1, 'backup'], [D, 1, 'backup']], 'consistent-hash'));
    b.targets[0]!.healthy = false;
    b.targets[1]!.healthy = false;
    for (let i = 0; i < 200; i++) {
      const k = `company-${i}`;
      const first = name(b.pick(0, k, 0));
      expect(name(b.pick(0, k, 0))).toBe(first);
    }
  });
});
