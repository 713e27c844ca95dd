import { describe, expect, test } from 'vitest';
import { changeNoise, describeChange, settled, spread, trimmed, verdict } from '../../../bench/http/noise.ts';

describe('warm-up settling', () => {
  test('a cold JIT: CPU per response falling second by second is not settled', () => {
    expect(settled([190, 120, 95, 70, 55], 1, 3)).toBe(false);
  });

  test('settled once the last two seconds agree within the tolerance', () => {
    expect(settled([190, 120, 95, 49, 48], 1, 3)).toBe(true);
    expect(settled([190, 120, 95, 49, 46], 1, 3)).toBe(false);
  });

  test('the first second never counts: it holds the connections and the client cold start', () => {
    // The first two agree, but one of them is the first second.
    expect(settled([48, 48], 1, 3)).toBe(false);
    expect(settled([90, 48, 48], 1, 3)).toBe(true);
  });

  test('BENCH_WARMUP is a minimum', () => {
    expect(settled([90, 48, 48], 5, 3)).toBe(false);
    expect(settled([90, 48, 48, 48, 48], 5, 3)).toBe(true);
  });
});

describe('spread', () => {
  test('half the range in % of the median', () => {
    expect(spread([90, 100, 110])).toBe(10);
  });

  test('unknown with one value', () => {
    expect(spread([100])).toBeNull();
    expect(spread([])).toBeNull();
  });
});

describe('a change and its noise', () => {
  test('one or two rounds: the spreads of both figures add up; two rounds that disagree more win', () => {
    expect(changeNoise(3, 4, [])).toBe(7);
    expect(changeNoise(3, 4, [-10, 10])).toBe(10);
    expect(changeNoise(null, 4, [-2, 2])).toBe(2);
    expect(changeNoise(null, 4, [5])).toBeNull();
  });

  test('three rounds or more: the per-round changes alone, each round paired A with B', () => {
    expect(changeNoise(30, 40, [-9, -10, -11])).toBe(1);
  });

  test('from five rounds, one disturbed round at either end does not set the noise of a median', () => {
    expect(changeNoise(null, null, [-60, -10, -11, -9, 30])).toBe(1);
    expect(spread(trimmed([9344, 20500, 20711, 10411, 22419]))).toBeCloseTo(((20711 - 10411) / 2 / 20500) * 100, 5);
  });

  test('issue 17: a plugin pair "+18.3%" faster than the bare proxy, within 25% of noise, prints no sign', () => {
    const text = describeChange({ change: 18.3, noise: 25 });
    expect(text).toBe('within the noise (±25%)');
    expect(text).not.toMatch(/[+-]\d/);
  });

  test('a change beyond its noise keeps its sign and says its ±', () => {
    expect(describeChange({ change: -9.44, noise: 2.06 })).toBe('-9.4% ±2.1%');
    expect(describeChange({ change: 12, noise: 3 })).toBe('+12% ±3%');
  });

  test('an unknown noise is named', () => {
    expect(describeChange({ change: -4, noise: null })).toBe('-4% (noise unknown)');
  });

  test('a target is met or missed only when the whole noise band is on one side', () => {
    expect(verdict({ change: -30, noise: 3 }, 0.65)).toBe('met'); // 0.67 to 0.73
    expect(verdict({ change: -40, noise: 3 }, 0.65)).toBe('MISSED'); // 0.57 to 0.63
    expect(verdict({ change: -33, noise: 3 }, 0.65)).toBe('too noisy to tell'); // 0.64 to 0.70
    expect(verdict({ change: -33, noise: null }, 0.65)).toBe('met');
  });
});
