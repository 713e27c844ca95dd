/**
 * Micro-bench for the balancer's share of a proxied request: one pick, the
 * in-flight count up and down around the attempt, and the report of its
 * outcome (what proxy.ts does per attempt), for round-robin (weights 5,1,1)
 * and least-conn over three targets, passive health on. Prints ns per
 * request, best of five runs of BENCH_N (default 2,000,000) requests.
 * Run: node_modules/.bin/node bench/micro/balancer.bench.ts
 */
import { upstreamConf } from '../../test/helpers/upstream-conf.ts';
import type { Algorithm, UpstreamConf } from '../../src/config/types.ts';
import { zoneClock } from '../../src/contracts/upstream-zone.ts';
import { createBalancer } from '../../src/worker/balancer.ts';

const N = Number(process.env['BENCH_N'] ?? 2_000_000);

const upstream = (algorithm: Algorithm): UpstreamConf =>
  upstreamConf([['10.0.0.1:80', 5], ['10.0.0.2:80', 1], ['10.0.0.3:80', 1]], algorithm, { max_fails: 3, fail_timeout: 10_000 });

function run(algorithm: Algorithm): number {
  const b = createBalancer(upstream(algorithm));
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const now = zoneClock();
      const t = b.pick(0, undefined, now)!;
      t.begin();
      t.end();
      b.report(t, true, 1, now);
    }
    best = Math.min(best, Number(process.hrtime.bigint() - start) / N);
  }
  return best;
}

for (const algorithm of ['round-robin', 'least-conn'] as const) {
  console.log(`${algorithm.padEnd(12)} pick + in-flight + report: ${run(algorithm).toFixed(1)} ns`);
}
