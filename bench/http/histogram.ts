/** Latency buckets of 1 µs up to 1 s; slower responses share the last bucket (their max is kept apart). */
export const LIMIT_US = 1_000_000;

/** Sparse [µs, count] pairs, merged over client processes. */
export type Sparse = readonly (readonly [number, number])[];

export function merge(parts: readonly Sparse[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of parts) for (const [us, n] of p) m.set(us, (m.get(us) ?? 0) + n);
  return m;
}

/** The given percentiles (0–100) in milliseconds: the smallest bucket at or above each rank. */
export function percentiles(h: Map<number, number>, ps: readonly number[]): number[] {
  const sorted = [...h].sort((a, b) => a[0] - b[0]);
  let total = 0;
  for (const [, n] of sorted) total += n;
  return ps.map((p) => {
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [us, n] of sorted) {
      seen += n;
      if (seen >= rank) return us / 1000;
    }
    return Number.NaN;
  });
}
