// A/B bench: what one Sluice scenario costs against another, to the percent, on a noisy box.
// Run: npm run bench:ab -- "sluice key-auth" "sluice key-auth + rate-limiting (nobody limited)"
//
// The HTTP bench's rows move ±5% from one 10 s run to the next on a shared VM, which hides
// a plugin's cost. Here both gateways run at once, each with its worker(s) on the same
// CPUs (BENCH_SUT_CPU), and are loaded in turn for short windows (A B B A …); each window's
// cost is the gateway's own CPU time per response, from /proc. Consecutive windows see the
// same state of the box, so their ratio cancels its drift, and fresh process pairs average
// out what one process's JIT and memory layout add or take (a pair alone can be 7% off).
// Prints each pair's ratio and the mean with its standard error; writes bench/results/ab.json.
//
//   BENCH_AB_PAIRS=6      process pairs (fresh gateways for each; A and B take turns going first)
//   BENCH_AB_WINDOWS=8    load windows per gateway and pair
//   BENCH_AB_WINDOW=1     seconds per window (after a 2 s warm-up of each gateway)
//   BENCH_WORKERS=1       workers per gateway
//   BENCH_SUT_CPU=0       the gateways' CPUs; BENCH_UPSTREAM_CPU and BENCH_CLIENT_CPU (default: the
//                         other CPUs) keep the upstream and autocannon off them
//   BENCH_CONNECTIONS=50  client connections
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchCertificate } from './certificate.ts';
import { envCpu, envInt } from './env.ts';
import { load } from './load.ts';
import type { ClientSettings } from './load.ts';
import { cpuSeconds } from './processes.ts';
import { probe } from './request.ts';
import { loadRequest, SCENARIOS } from './scenarios.ts';
import type { Scenario } from './scenarios.ts';
import { ROOT, startSluice, startUpstream } from './targets.ts';
import type { Running } from './targets.ts';

const others = cpus().length > 1 ? `1-${cpus().length - 1}` : null;
const settings = {
  pairs: Math.max(1, envInt('BENCH_AB_PAIRS', 6)),
  windows: Math.max(1, envInt('BENCH_AB_WINDOWS', 8)),
  window: Math.max(1, envInt('BENCH_AB_WINDOW', 1)),
  workers: Math.max(1, envInt('BENCH_WORKERS', 1)),
  connections: envInt('BENCH_CONNECTIONS', 50),
  sutCpu: envCpu('BENCH_SUT_CPU') ?? (others === null ? null : '0'),
  upstreamCpu: envCpu('BENCH_UPSTREAM_CPU') ?? others,
  clientCpu: envCpu('BENCH_CLIENT_CPU') ?? others,
};

type SluiceScenario = Extract<Scenario, { kind: 'sluice' }>;
function scenario(name: string | undefined): SluiceScenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (s === undefined || s.kind !== 'sluice') {
    const names = SCENARIOS.filter((x) => x.kind === 'sluice').map((x) => `  ${x.name}`).join('\n');
    throw new Error(`usage: npm run bench:ab -- "<scenario A>" "<scenario B>"; "${name ?? ''}" is not one of:\n${names}`);
  }
  return s;
}
const [a, b] = [scenario(process.argv[2]), scenario(process.argv[3])];

const client = (duration: number): ClientSettings =>
  ({ connections: settings.connections, duration, processes: 1, cpu: settings.clientCpu, generator: 'autocannon' });

/** CPU µs the gateway spent per response over one load window. */
async function measureWindow(s: SluiceScenario, g: Running, seconds: number): Promise<number> {
  const before = cpuSeconds([g.child.pid])?.of[0] ?? null;
  const r = await load(loadRequest(s, g.port), client(seconds));
  const after = cpuSeconds([g.child.pid])?.of[0] ?? null;
  if (before === null || after === null) throw new Error('bench:ab needs /proc to read the gateways\' CPU time');
  if (r.errors + r.timeouts + r.non2xx > 0) throw new Error(`${s.name}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`);
  return ((after - before) / r.requests) * 1e6;
}

const mean = (v: readonly number[]): number => v.reduce((p, q) => p + q, 0) / v.length;
function sd(v: readonly number[]): number {
  if (v.length < 2) return 0;
  const m = mean(v);
  return Math.sqrt(v.reduce((p, q) => p + (q - m) ** 2, 0) / (v.length - 1));
}

const upstream = await startUpstream(settings.upstreamCpu);
console.error(`bench:ab: ${settings.pairs} pairs × ${settings.windows} windows of ${settings.window} s, ` +
  `${settings.workers} worker(s) per gateway on CPU ${settings.sutCpu ?? 'any'}`);
interface Pair { readonly a: number; readonly b: number; readonly ratio: number }
interface Side { readonly s: SluiceScenario; readonly g: Running; readonly w: number[] }
const pairs: Pair[] = [];
for (let p = 0; p < settings.pairs; p++) {
  const sluice = { workers: settings.workers, upstreamPort: upstream.port, cpu: settings.sutCpu };
  // Every other pair starts, warms and first loads B: the gateway that went first in a pair measured a few
  // percent dearer (key-auth against itself, 6 pairs: B/A -4.3% ± 1.1% with A always first, +2.0% ± 0.8%
  // alternated, which is about this method's floor on a 2-core VM).
  const aFirst = p % 2 === 0;
  const order: Side[] = [];
  for (const s of aFirst ? [a, b] : [b, a]) order.push({ s, g: await startSluice({ ...sluice, tls: s.tls ? benchCertificate() : null, http2: s.http2 ?? false }, s.conf), w: [] });
  const [sa, sb] = aFirst ? [order[0]!, order[1]!] : [order[1]!, order[0]!];
  for (const side of order) {
    await measureWindow(side.s, side.g, 2);
    const wrong = side.s.expect === undefined ? null : await probe(loadRequest(side.s, side.g.port), side.s.expect);
    if (wrong !== null) throw new Error(`${side.s.name}: ${wrong}`);
  }
  for (let w = 0; w < settings.windows; w++) {
    // First second, then second first: neither always follows the other's load.
    for (const side of w % 2 === 0 ? order : [...order].reverse()) side.w.push(await measureWindow(side.s, side.g, settings.window));
  }
  await Promise.all(order.map((side) => side.g.child.stop()));
  const pair = { a: mean(sa.w), b: mean(sb.w), ratio: mean(sb.w.map((x, i) => x / sa.w[i]!)) };
  pairs.push(pair);
  console.error(`bench:ab: pair ${p + 1} (${aFirst ? 'A' : 'B'} first): ${pair.a.toFixed(1)} µs, ${pair.b.toFixed(1)} µs per response, B/A ${pair.ratio.toFixed(3)}`);
}
await upstream.child.stop();

const ratios = pairs.map((p) => p.ratio);
const ratio = mean(ratios);
const se = sd(ratios) / Math.sqrt(ratios.length);
const pct = (v: number): string => `${v > 0 ? '+' : ''}${(v * 100).toFixed(1)}%`;
console.log(`\nA: ${a.name}\nB: ${b.name}`);
console.log(`CPU per response, B against A: ${pct(ratio - 1)}` + (pairs.length > 1
  ? ` ± ${(se * 100).toFixed(1)}% (mean of ${pairs.length} process pairs ± standard error)`
  : ' (one process pair: no error estimate)'));
console.log(`req/s on cores of its own, B against A: ${pct(1 / ratio - 1)}`);
const results = join(ROOT, 'bench/results');
mkdirSync(results, { recursive: true });
writeFileSync(join(results, 'ab.json'), `${JSON.stringify({
  date: new Date().toISOString(), node: process.version, cpu: { model: cpus()[0]?.model, cores: cpus().length },
  settings, a: a.name, b: b.name, pairs, cpu_ratio: ratio, cpu_ratio_se: pairs.length > 1 ? se : null, rps_change: 1 / ratio - 1,
}, null, 2)}\n`);
console.log(`wrote ${join(results, 'ab.json')}`);
