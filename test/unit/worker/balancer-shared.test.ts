import { describe, expect, test } from 'vitest';
import type { Algorithm, PassiveHealthcheckConf, UpstreamConf } from '../../../src/config/types.ts';
import { createUpstreamZone } from '../../../src/contracts/upstream-zone.ts';
import { createBalancer } from '../../../src/worker/balancer.ts';
import { upstreamConf } from '../../helpers/upstream-conf.ts';
import type { Balancer, TargetState } from '../../../src/worker/balancer.ts';

/**
 * Two balancers over one upstream zone are two workers (each with its own
 * in-flight share, as the supervisor hands them out): what one does, the other
 * sees.
 */
/** Targets named 10.0.0.1:80, 10.0.0.2:80, … by position. */
const upstream = (targets: readonly (readonly [weight: number, backup?: 'backup'])[], algorithm: Algorithm, passive: PassiveHealthcheckConf | null = null): UpstreamConf =>
  upstreamConf(targets.map(([weight, backup], i) => [`10.0.0.${i + 1}:80`, weight, backup] as const), algorithm, passive);

/** Two workers' balancers on one zone. */
function twoWorkers(conf: UpstreamConf): [Balancer, Balancer] {
  const zone = createUpstreamZone(conf.targets.length);
  return [createBalancer(conf, zone), createBalancer(conf, zone)];
}

const name = (t: TargetState | null): string => (t === null ? 'null' : 'abcd'[t.index]!);

describe('two workers on one upstream zone', () => {
  test('least-conn counts the other worker\'s requests in flight', () => {
    const [w1, w2] = twoWorkers(upstream([[1], [1]], 'least-conn'));
    // Worker 1 has three requests at a and none at b.
    for (let i = 0; i < 3; i++) w1.targets[0]!.begin();
    expect(w2.targets[0]!.active).toBe(3);
    expect(name(w2.pick(0, undefined, 0))).toBe('b');
    // They end: worker 2 sees a idle again, and the tie goes to a.
    for (let i = 0; i < 3; i++) w1.targets[0]!.end();
    expect(name(w2.pick(0, undefined, 0))).toBe('a');
  });

  test('least-conn breaks ties by weighted round-robin, as nginx does: idle targets share light traffic 3:1, not all to the first', () => {
    const [w1, w2] = twoWorkers(upstream([[3], [1]], 'least-conn'));
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 400; i++) counts[name((i % 2 === 0 ? w1 : w2).pick(0, undefined, 0)) as 'a' | 'b']++;
    expect(counts).toEqual({ a: 300, b: 100 });
  });

  test('max_fails split 1 + 1 over the workers takes the target out of both, for fail_timeout', () => {
    const [w1, w2] = twoWorkers(upstream([[1], [1]], 'round-robin', { max_fails: 2, fail_timeout: 10_000 }));
    w1.report(w1.targets[0]!, false, 5, 1_000);
    w2.report(w2.targets[0]!, false, 5, 1_500);
    for (const w of [w1, w2]) {
      for (let i = 0; i < 4; i++) expect(name(w.pick(0, undefined, 2_000))).toBe('b');
    }
    // Back for both once fail_timeout has passed since the failure that took it out.
    expect(new Set([w1, w2, w1, w2].map((w) => name(w.pick(0, undefined, 11_500))))).toEqual(new Set(['a', 'b']));
  });

  test('a success seen by one worker resets the count the other added to', () => {
    const [w1, w2] = twoWorkers(upstream([[1], [1]], 'least-conn', { max_fails: 2, fail_timeout: 10_000 }));
    w1.report(w1.targets[0]!, false, 5, 1_000);
    w2.report(w2.targets[0]!, true, 5, 1_100);
    w1.report(w1.targets[0]!, false, 5, 1_200);
    expect(name(w1.pick(0, undefined, 1_300))).toBe('a');
  });

  test('a 5:1 weighting holds exactly over the two workers\' picks, however they interleave', () => {
    const [w1, w2] = twoWorkers(upstream([[5], [1]], 'round-robin'));
    let seed = 7;
    const seq: string[] = [];
    for (let i = 0; i < 600; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      seq.push(name((seed & 0x100 ? w1 : w2).pick(0, undefined, 0)));
    }
    expect(seq.filter((n) => n === 'a')).toHaveLength(500);
    // Not only in total: nginx's smooth sequence a a a b a a, whichever worker picks.
    expect(seq.slice(0, 12).join('')).toBe('aaabaaaaabaa');
    for (let i = 0; i + 6 <= seq.length; i++) expect(seq.slice(i, i + 6).filter((n) => n === 'b'), `picks ${i}..${i + 5}`).toHaveLength(1);
  });

  test('primaries passively out by one worker\'s failures: the other uses the backup, and the primaries once they are back', () => {
    const [w1, w2] = twoWorkers(upstream([[1], [1], [1, 'backup']], 'round-robin', { max_fails: 1, fail_timeout: 10_000 }));
    w1.report(w1.targets[0]!, false, 5, 1_000);
    w1.report(w1.targets[1]!, false, 5, 1_000);
    for (let i = 0; i < 4; i++) expect(name(w2.pick(0, undefined, 2_000))).toBe('c');
    expect(['a', 'b']).toContain(name(w2.pick(0, undefined, 11_000)));
  });

  test('a down mark holds across the Int32 wrap of the clock, and an old one seen a wrap later is not taken for a new one', () => {
    // a far heavier than b: whenever a is up, the tie goes its way.
    const [w1, w2] = twoWorkers(upstream([[100], [1]], 'least-conn', { max_fails: 1, fail_timeout: 10_000 }));
    const nearWrap = 2 ** 31 - 4_000; // zoneClock ms near where (ms | 0) turns negative
    w1.report(w1.targets[0]!, false, 5, nearWrap);
    expect(name(w2.pick(0, undefined, nearWrap + 9_999))).toBe('b');
    expect(name(w2.pick(0, undefined, nearWrap + 10_000))).toBe('a');
    // Marked again, and nobody picks for 36 days: the Int32 difference has wrapped to "far ahead", which no fail_timeout is.
    w1.report(w1.targets[0]!, false, 5, nearWrap + 20_000);
    expect(name(w2.pick(0, undefined, nearWrap + 20_000 + 3 * 2 ** 30))).toBe('a');
  });
});
