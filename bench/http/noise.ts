/**
 * How far the bench can trust its own figures. A quick run on a shared box
 * once printed the bare proxy at twice its CPU per request and a plugin pair
 * "+18.3%" faster than the bare proxy it decorates: the first scenarios ran on
 * a cold JIT. So the warm-up goes on until the figure stops moving, each
 * figure carries the spread it was measured with, and a difference smaller
 * than the spreads behind it is reported as no difference rather than signed.
 */

/** The median of `v` (the mean of the middle two for an even count), or null when empty. */
export function medianOf(v: readonly number[]): number | null {
  if (v.length === 0) return null;
  const sorted = [...v].sort((p, q) => p - q);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Half the range of `v` in % of its median: the ± a figure is known to, from
 * the seconds of one run or the rounds of a scenario. Null with fewer than two
 * values (nothing to compare: one round, a one-second run).
 */
export function spread(v: readonly number[]): number | null {
  const m = medianOf(v);
  if (v.length < 2 || m === null || m === 0) return null;
  return ((Math.max(...v) - Math.min(...v)) / 2 / Math.abs(m)) * 100;
}

/**
 * Whether a warm-up can stop: the last two seconds' figures agree within
 * `tolerance` % of each other, at least `minimum` seconds in. The first second
 * never counts: it holds the connections' set-up and the client's cold start.
 */
export function settled(perSecond: readonly number[], minimum: number, tolerance: number): boolean {
  const n = perSecond.length;
  if (n < Math.max(3, minimum)) return false;
  const [a, b] = [perSecond[n - 2]!, perSecond[n - 1]!];
  return Math.abs(a - b) <= (tolerance / 100) * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * The rounds a spread is taken over: all of them, or without the lowest and
 * the highest from five on. The bench reports medians, which one disturbed
 * round does not move; a spread that one disturbed round sets would call
 * every difference noise.
 */
export function trimmed(rounds: readonly number[]): number[] {
  const sorted = [...rounds].sort((p, q) => p - q);
  return sorted.length >= 5 ? sorted.slice(1, -1) : sorted;
}

/**
 * A change in % (B against A) with the noise behind it. Null noise means it
 * is unknown.
 */
export interface Change {
  readonly change: number;
  readonly noise: number | null;
}

/**
 * The noise of a change, in points of %: from three rounds on, half the range
 * of the per-round changes (`trimmed`), since each round measured A and B
 * back to back and a slow spell of the box moved both; with fewer, the
 * spreads `a` and `b` of the two figures added, or the two rounds' disagreement
 * when that is larger.
 */
export function changeNoise(a: number | null, b: number | null, perRound: readonly number[]): number | null {
  const r = trimmed(perRound);
  const rounds = r.length > 1 ? (r.at(-1)! - r[0]!) / 2 : null;
  if (perRound.length >= 3) return rounds;
  const both = a === null || b === null ? null : a + b;
  return rounds === null ? both : both === null ? rounds : Math.max(rounds, both);
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** `+4.2% ±1.5%`; a change the noise covers has no sign to print, and says so; an unknown noise is named. */
export function describeChange(c: Change): string {
  if (c.noise === null) return `${c.change > 0 ? '+' : ''}${round1(c.change)}% (noise unknown)`;
  if (Math.abs(c.change) <= c.noise) return `within the noise (±${round1(c.noise)}%)`;
  return `${c.change > 0 ? '+' : ''}${round1(c.change)}% ±${round1(c.noise)}%`;
}

/**
 * A ratio target judged with the noise: met only when even the low end of the
 * change meets it, missed only when even the high end does not.
 */
export function verdict(c: Change, atLeast: number): 'met' | 'MISSED' | 'too noisy to tell' {
  const n = c.noise ?? 0;
  if ((100 + c.change - n) / 100 >= atLeast) return 'met';
  if ((100 + c.change + n) / 100 < atLeast) return 'MISSED';
  return 'too noisy to tell';
}
