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

/**
 * What a load-generator process (client.ts, h2load.ts, wrk.ts) counts and
 * tells the bench (load.ts reads it): `tick N` each second with the responses
 * so far, and at the end one JSON line of totals and the sparse µs buckets.
 * `add` takes a weight for wrk, whose latencies come as percentiles, each
 * standing for a share of its responses.
 */
export class Tally {
  responses = 0;
  non2xx = 0;
  /** ms, unclamped: the buckets stop at LIMIT_US. */
  max = 0;
  private readonly buckets = new Float64Array(LIMIT_US + 1);

  add(us: number, weight = 1): void {
    if (us / 1000 > this.max) this.max = us / 1000;
    this.buckets[us < LIMIT_US ? us : LIMIT_US]! += weight;
  }

  tick(): void {
    process.stdout.write(`tick ${this.responses}\n`);
  }

  report(totals: { readonly duration: number; readonly errors: number; readonly timeouts: number }): void {
    const hist: [number, number][] = [];
    for (let us = 0; us <= LIMIT_US; us++) {
      const n = Math.round(this.buckets[us]!);
      if (n > 0) hist.push([us, n]);
    }
    process.stdout.write(`${JSON.stringify({ responses: this.responses, ...totals, non2xx: this.non2xx, max: this.max, hist })}\n`);
  }
}
