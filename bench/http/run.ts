// HTTP benchmark: the upstream alone, nginx (proxy_pass, proxy_cache, return; when on PATH), the Node peers
// fastify + @fastify/http-proxy and fast-gateway (devDependencies)
// and Sluice scenarios, each under the same autocannon load, on this one box.
// Prints a table and writes bench/results/http.json. Run: npm run bench
//
//   BENCH_DURATION=10     measured seconds per scenario
//   BENCH_WARMUP=3        warm-up seconds at least before each measured run (same load; 0 = none), then on
//                         until two seconds' figures agree within BENCH_SETTLE % (a cold JIT doubles CPU per
//                         response at first), BENCH_WARMUP_MAX seconds at most; the table says "moving" if not
//   BENCH_WARMUP_MAX=20   the warm-up's cap
//   BENCH_SETTLE=3        % two consecutive seconds of the warm-up may differ by and count as settled
//   BENCH_CONNECTIONS=50  client connections
//   BENCH_CLIENT=autocannon  the HTTP/1.1 load generator: autocannon, or wrk (issue 17's harness; needs wrk on PATH)
//   BENCH_CLIENTS=1       load-generator processes sharing the connections
//   BENCH_WORKERS=2       workers of every system: Sluice worker_processes, nginx worker_processes, the peers' processes
//   BENCH_UPSTREAM_CPU=   pin the upstream process to these CPUs (taskset -c list: 2 or 2-3 or 2,5); empty = unpinned
//   BENCH_CLIENT_CPU=     pin the load-generator processes to these CPUs; empty = unpinned
//   BENCH_SUT_CPU=        pin the system under test (Sluice, nginx, a peer) to these CPUs; empty = unpinned
//   BENCH_ONLY=regex      run only the scenarios whose name matches
//   BENCH_ROUNDS=1        run the scenarios this many times, interleaved, and report each one's median run:
//                         a busy neighbour or a GC storm then spoils one run, not one scenario's figure
//   BENCH_QUIET_WAIT=60   seconds to wait, before each scenario, for other processes to leave the CPUs (0 = don't)
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { envCpu, envInt } from './env.ts';
import { h2loadMissing, load } from './load.ts';
import type { ClientSettings, Generator, LoadResult } from './load.ts';
import { commandOutput, cpuSeconds, machineBusy, onPath } from './processes.ts';
import type { Scenario } from './scenarios.ts';
import { changeNoise, describeChange, medianOf, settled, spread, trimmed, verdict } from './noise.ts';
import { probe } from './request.ts';
import type { LoadRequest } from './request.ts';
import { loadRequest, SCENARIOS } from './scenarios.ts';
import { benchCertificate } from './certificate.ts';
import type { BenchCertificate } from './certificate.ts';
import { externalVersion, ROOT, startExternal, startSluice, startUpstream } from './targets.ts';
import type { ExternalKind, Running } from './targets.ts';

function generatorOf(name: string): Generator {
  if (name !== 'autocannon' && name !== 'wrk') throw new Error(`BENCH_CLIENT=${name}: autocannon or wrk`);
  if (name === 'wrk' && onPath('wrk') === null) throw new Error('BENCH_CLIENT=wrk: wrk is not on PATH (apt-get install wrk)');
  return name;
}

const settings = {
  duration: envInt('BENCH_DURATION', 10),
  warmup: envInt('BENCH_WARMUP', 3),
  warmupMax: envInt('BENCH_WARMUP_MAX', 20),
  settle: envInt('BENCH_SETTLE', 3),
  connections: envInt('BENCH_CONNECTIONS', 50),
  generator: generatorOf(process.env['BENCH_CLIENT'] ?? 'autocannon'),
  clients: Math.max(1, envInt('BENCH_CLIENTS', 1)),
  workers: Math.max(1, envInt('BENCH_WORKERS', 2)),
  upstreamCpu: envCpu('BENCH_UPSTREAM_CPU'),
  clientCpu: envCpu('BENCH_CLIENT_CPU'),
  sutCpu: envCpu('BENCH_SUT_CPU'),
  only: process.env['BENCH_ONLY'] ?? '',
  rounds: Math.max(1, envInt('BENCH_ROUNDS', 1)),
  quietWait: envInt('BENCH_QUIET_WAIT', 60),
  sluiceAccessLog: 'off unless the scenario sets it',
  sluiceErrorLog: 'warn',
};
const only = settings.only === '' ? null : new RegExp(settings.only, 'i');
const client = (duration: number): ClientSettings =>
  ({ connections: settings.connections, duration, processes: settings.clients, cpu: settings.clientCpu, generator: settings.generator });

/**
 * CPU used during the measured run, each in % of one core (200 = two cores
 * busy): the system under test, the upstream, the load generator, and
 * `foreign` — what the machine's tasks spent outside this bench (neighbours in
 * other containers too, see cpuSeconds), which must be near 0 for the numbers
 * to mean anything on a shared box.
 */
interface Cpu {
  readonly sut: number | null;
  readonly upstream: number | null;
  readonly client: number | null;
  readonly foreign: number | null;
}

/** CPU seconds so far: the bench's tree (load generator included), the system under test, the upstream, and everyone else. */
interface Sample {
  readonly at: number;
  readonly tree: number | null;
  readonly sut: number | null;
  readonly up: number | null;
  readonly others: number | null;
}

function sampler(sut: number | null, upstream: number): () => Sample {
  return () => {
    const c = cpuSeconds([process.pid, sut ?? -1, upstream]);
    return { at: performance.now(), tree: c?.of[0] ?? null, sut: sut === null ? 0 : c?.of[1] ?? null, up: c?.of[2] ?? null, others: c?.others ?? null };
  };
}

/** A second's figures: req/s, and the system under test's CPU µs per response (null for the upstream alone). */
function secondOf(from: Sample, to: Sample, responses: number, hasSut: boolean): { rps: number; us: number | null } {
  const us = !hasSut || from.sut === null || to.sut === null || responses === 0 ? null : ((to.sut - from.sut) / responses) * 1e6;
  return { rps: responses / ((to.at - from.at) / 1000), us };
}

/**
 * Loads `req` in seconds until the system's figure settles (noise.ts): its CPU
 * µs per response, what a cold JIT inflates, or req/s for the upstream alone;
 * at least `warmup` seconds, at most `warmupMax`.
 */
async function warmUp(req: LoadRequest, sut: number | null, upstream: number): Promise<Warm> {
  const sample = sampler(sut, upstream);
  let last = sample();
  const figures: number[] = [];
  const done = (): boolean => settled(figures, settings.warmup, settings.settle);
  await load(req, client(Math.max(settings.warmup, settings.warmupMax)), (responses) => {
    const now = sample();
    const f = secondOf(last, now, responses, sut !== null);
    figures.push(f.us ?? f.rps);
    last = now;
    return done();
  });
  return { seconds: figures.length, settled: done() };
}

/**
 * Runs the measured load, sampling CPU as each second ends, and reports over
 * the window from the end of the first second (connections set up, the
 * client's own JIT warm) to the last: req/s, CPU, and how much the seconds
 * inside it disagreed.
 */
async function measure(req: LoadRequest, sut: number | null, upstream: number, warm: Warm | null): Promise<Run> {
  const sample = sampler(sut, upstream);
  const at: Sample[] = [];
  const result = await load(req, client(settings.duration), () => {
    at.push(sample());
    return false;
  });
  const a = at[0];
  const b = at.at(-1);
  if (a === undefined || b === undefined || a === b) {
    return { result, rps: result.rps, cpu: { sut: null, upstream: null, client: null, foreign: null }, sutUs: null, seconds: [], noise: { rps: null, us: null }, warm };
  }
  const secs = (b.at - a.at) / 1000;
  const answered = result.seconds.slice(1, at.length).reduce((p, q) => p + q, 0);
  const used = (k: keyof Omit<Sample, 'at'>): number | null => (a[k] === null || b[k] === null ? null : b[k]! - a[k]!);
  // The counters are read a moment apart: a share a hair below 0 is 0.
  const pct = (v: number | null): number | null => (v === null ? null : Math.max(0, Math.round((v / secs) * 100)));
  const [sutS, upS, treeS] = [used('sut'), used('up'), used('tree')];
  const seconds = at.slice(1).map((s, i) => secondOf(at[i]!, s, result.seconds[i + 1]!, sut !== null));
  return {
    result,
    rps: answered / secs,
    sutUs: sut === null || sutS === null || answered === 0 ? null : (sutS / answered) * 1e6,
    cpu: {
      sut: sut === null ? null : pct(sutS),
      upstream: pct(upS),
      client: treeS === null || sutS === null || upS === null ? null : pct(treeS - sutS - upS),
      foreign: pct(used('others')),
    },
    seconds,
    noise: { rps: spread(seconds.map((x) => x.rps)), us: spread(seconds.flatMap((x) => (x.us === null ? [] : [x.us]))) },
    warm,
  };
}

/**
 * On a shared development box a test suite running next to the bench halves
 * every figure. Before each scenario (with nothing of ours under load) wait,
 * up to `quietWait` seconds, for a half-second in which the machine is under
 * 15% of one core busy; say so when it never comes.
 */
async function quiet(name: string): Promise<void> {
  const deadline = Date.now() + settings.quietWait * 1000;
  let said = false;
  for (;;) {
    const a = machineBusy();
    await new Promise((r) => setTimeout(r, 500));
    const b = machineBusy();
    if (a === null || b === null || (b - a) / 0.5 < 0.15) return;
    if (Date.now() > deadline) {
      console.error(`bench: ${name}: the machine is still busy (${Math.round(((b - a) / 0.5) * 100)}% of a core) — measuring anyway`);
      return;
    }
    if (!said) console.error(`bench: ${name}: waiting for other processes to leave the CPUs (${Math.round(((b - a) / 0.5) * 100)}% of a core busy)`);
    said = true;
  }
}

/** How long the warm-up went on, and whether the figure settled before the cap. */
interface Warm {
  readonly seconds: number;
  readonly settled: boolean;
}

/** ± in % of a figure (noise.ts `spread`): the req/s and the CPU µs per response; null where unknown. */
interface Noise {
  readonly rps: number | null;
  readonly us: number | null;
}

interface Run {
  readonly result: LoadResult;
  /** Responses per second over the measured window (see measure). */
  readonly rps: number;
  readonly cpu: Cpu;
  /**
   * CPU time the system under test spent per response (µs, user + system,
   * all its workers): its own cost, whatever shares the box. Same-box req/s
   * also moves with what the load generator and the upstream spend (more
   * response headers to parse, say); this does not.
   */
  readonly sutUs: number | null;
  /** Each measured second's figures (after the first), and how much they disagreed. */
  readonly seconds: readonly { readonly rps: number; readonly us: number | null }[];
  readonly noise: Noise;
  /** Null when BENCH_WARMUP=0. */
  readonly warm: Warm | null;
}

interface Row {
  readonly scenario: string;
  readonly kind: Scenario['kind'];
  readonly path: string;
  /** The run with the median req/s. */
  readonly result: LoadResult | null;
  /** Median over the rounds of req/s over the measured window. */
  readonly rps: number | null;
  readonly cpu: Cpu | null;
  /** Median over the rounds of the system under test's CPU µs per response. */
  readonly sutUs: number | null;
  /** The larger of the median run's own spread and the rounds' spread (noise.ts `trimmed`). */
  readonly noise: Noise;
  /** The longest warm-up of the rounds, settled only if every one did (null: none ran). */
  readonly warm: Warm | null;
  /** req/s of every round, in round order. */
  readonly rounds: readonly number[];
  readonly skipped?: string;
  readonly failed?: string;
}

/** Why a scenario has no run: it cannot run here (`skipped`), or it did not measure what it names (`failed`). */
interface NoRun {
  readonly reason: string;
  readonly failed: boolean;
}

const certificateFor = (s: Scenario): BenchCertificate | null => (s.tls ? benchCertificate() : null);

/** One measured run of `s` on a fresh system under test, or why there is none. */
async function runScenario(s: Scenario, upstream: Running): Promise<Run | NoRun> {
  const system = { workers: settings.workers, upstreamPort: upstream.port, cpu: settings.sutCpu, tls: certificateFor(s), http2: s.http2 ?? false };
  let target: Running | null = null;
  const noH2load = s.http2 ? h2loadMissing() : null;
  if (noH2load !== null) return { reason: noH2load, failed: false };
  if (s.kind === 'sluice') target = await startSluice(system, s.conf);
  else if (s.kind !== 'direct') {
    const v = externals.get(s.kind);
    if (v !== undefined && 'missing' in v) return { reason: v.missing, failed: false };
    try {
      target = await startExternal(s, system);
    } catch (err) {
      return { reason: `${s.kind} did not start: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`, failed: false };
    }
  }
  const req = loadRequest(s, target?.port ?? upstream.port);
  console.error(`bench: ${s.name}: ${req.url}${req.newQueryEachRequest ? ' (a new query each request)' : ''}`);
  if (settings.quietWait > 0) await quiet(s.name);
  const sut = target?.child.pid ?? null;
  const warm = settings.warmup > 0 ? await warmUp(req, sut, upstream.child.pid) : null;
  if (warm !== null) console.error(`bench: ${s.name}: ${warm.settled ? 'settled' : 'still moving'} after ${warm.seconds}s of warm-up`);
  const wrong = s.expect === undefined ? null : await probe(req, s.expect);
  const run = wrong === null ? await measure(req, sut, upstream.child.pid, warm) : { reason: wrong, failed: true };
  await target?.child.stop();
  return run;
}

const upstream = await startUpstream(settings.upstreamCpu);
console.error(`bench: upstream on 127.0.0.1:${upstream.port}, ${settings.connections} connections, ` +
  `a warm-up of ${settings.warmup}s at least (until settled, ${settings.warmupMax}s at most) + ${settings.duration}s per scenario, ` +
  `${settings.workers} workers for every system` +
  (settings.rounds > 1 ? `, ${settings.rounds} rounds` : ''));

const selected = SCENARIOS.filter((s) => only === null || only.test(s.name));
// The external systems the selected scenarios run, each looked up once: its version, or why it is missing.
const externals = new Map(selected.flatMap((s) => (s.kind === 'direct' || s.kind === 'sluice' ? [] : [s.kind]))
  .map((k: ExternalKind) => [k, externalVersion(k)] as const));
const runs = new Map<Scenario, Run[]>(selected.map((s) => [s, []]));
const skipped = new Map<Scenario, NoRun>();
for (let round = 1; round <= settings.rounds; round++) {
  if (settings.rounds > 1) console.error(`bench: round ${round} of ${settings.rounds}`);
  for (const s of selected) {
    if (skipped.has(s)) continue;
    const run = await runScenario(s, upstream);
    if ('reason' in run) {
      console.error(`bench: ${s.name}: ${run.failed ? 'FAILED' : 'skipped'}, ${run.reason}`);
      skipped.set(s, run);
    } else runs.get(s)!.push(run);
  }
}
await upstream.child.stop();

function longest(w: readonly Warm[]): Warm | null {
  return w.length === 0 ? null : { seconds: Math.max(...w.map((x) => x.seconds)), settled: w.every((x) => x.settled) };
}
const rows: Row[] = selected.map((s) => {
  const done = runs.get(s)!;
  const median = [...done].sort((a, b) => a.rps - b.rps)[(done.length - 1) >> 1] ?? null;
  const us = done.flatMap((r) => (r.sutUs === null ? [] : [r.sutUs]));
  const larger = (p: number | null, q: number | null): number | null => (p === null ? q : q === null ? p : Math.max(p, q));
  return {
    scenario: s.name, kind: s.kind, path: s.path, result: median?.result ?? null, rps: median?.rps ?? null, cpu: median?.cpu ?? null,
    sutUs: medianOf(us),
    noise: { rps: larger(median?.noise.rps ?? null, spread(trimmed(done.map((r) => r.rps)))), us: larger(median?.noise.us ?? null, spread(trimmed(us))) },
    warm: longest(done.flatMap((r) => (r.warm === null ? [] : [r.warm]))),
    rounds: done.map((r) => Math.round(r.rps)),
    ...(skipped.has(s) ? { [skipped.get(s)!.failed ? 'failed' : 'skipped']: skipped.get(s)!.reason } : {}),
  };
});

// The columns' baselines: the upstream alone, and nginx as a proxy (not as a cache).
const rpsOf = (is: (s: Scenario) => boolean): number | null => rows.find((r, i) => is(selected[i]!) && r.rps !== null)?.rps ?? null;
const nginxRps = rpsOf((s) => s.kind === 'nginx' && s.location === undefined);
const directRps = rpsOf((s) => s.kind === 'direct');
const ratio = (rps: number, base: number | null): number | null => (base === null ? null : Math.round((rps / base) * 100) / 100);

const cpuModel = cpus()[0]?.model ?? 'unknown cpu';
const versions = [...externals.values()].flatMap((v) => ('version' in v ? [v.version] : []));
const machine = [`node ${process.version}`, ...versions, `${cpuModel} x${cpus().length}`, `Linux ${release()}`].join(', ');
const pct = (v: number | null): string => (v === null ? '-' : `±${v < 10 ? v.toFixed(1) : Math.round(v)}`);
const header = [
  'scenario', 'req/s', '±%', '× nginx', 'CPU µs/req', '±%', 'p99 ms', 'warm-up', ...(settings.rounds > 1 ? ['min-max'] : []),
  'p50 ms', 'p90 ms', 'errors', 'non-2xx', '× direct', 'cpu% sut/upstream/client/foreign',
];
const nginxNoise = rows.find((r, i) => selected[i]!.kind === 'nginx' && r.rps === nginxRps)?.noise.rps ?? null;
const table: string[][] = rows.map((r) => {
  if (r.result === null || r.rps === null) return [r.scenario, r.failed !== undefined ? `FAILED: ${r.failed}` : `skipped: ${r.skipped ?? ''}`, ...header.slice(2).map(() => '')];
  const x = r.result;
  const c = r.cpu;
  // × nginx is a difference too: `?` when the two req/s are nearer than their spreads.
  const vsNginx = ratio(r.rps, nginxRps);
  const unclear = vsNginx !== null && r.rps !== nginxRps && Math.abs(vsNginx - 1) * 100 <= (changeNoise(r.noise.rps, nginxNoise, []) ?? 0);
  return [
    r.scenario, Math.round(r.rps).toString(), pct(r.noise.rps), vsNginx === null ? '-' : `${vsNginx.toFixed(2)}${unclear ? '?' : ''}`,
    r.sutUs?.toFixed(1) ?? '-', pct(r.noise.us), x.p99.toFixed(3), r.warm === null ? 'none' : `${r.warm.seconds}s${r.warm.settled ? '' : ' moving'}`,
    ...(settings.rounds > 1 ? [`${Math.min(...r.rounds)}-${Math.max(...r.rounds)}`] : []),
    x.p50.toFixed(3), x.p90.toFixed(3), String(x.errors + x.timeouts), String(x.non2xx), ratio(r.rps, directRps)?.toFixed(2) ?? '-',
    c === null ? '-' : [c.sut, c.upstream, c.client, c.foreign].map((v) => v ?? '-').join('/'),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`\nSluice HTTP bench — ${machine}`);
const pins = ([['system under test', settings.sutCpu], ['upstream', settings.upstreamCpu], ['load generator', settings.clientCpu]] as const)
  .flatMap(([who, at]) => (at === null ? [] : [`${who} on CPU ${at}`]));
console.log(`same box: load generator, upstream and the system under test share ${cpus().length} cores` +
  `${pins.length > 0 ? ` (${pins.join(', ')})` : ''}; ${settings.connections} connections, ${settings.workers} workers each; ` +
  `${settings.duration}s measured after a warm-up of ${settings.warmup}s at least, on until two seconds' figures agree within ` +
  `${settings.settle}% (${settings.warmupMax}s at most); Sluice access_log off unless named`);
console.log(`req/s and CPU µs/req (CPU time the system under test spent per response, all its workers): the measured seconds after the first` +
  `${settings.rounds > 1 ? ', median of the rounds' : ''}`);
console.log(`±%: half the spread of the measured seconds${settings.rounds > 1 ? ` or of the rounds${settings.rounds >= 5 ? ' (less the lowest and the highest)' : ''}, the larger` : ''}; ` +
  `? after × nginx: nearer 1 than the spreads; warm-up "moving": the figure had not settled when the warm-up ended`);
console.log(`cpu: % of one core during the measured run; foreign = processes outside this bench (${cpus().length * 100} = the whole machine)`);
console.log(line(header));
for (const t of table) console.log(line(t));

/*
 * The costs the scenarios name (`versus`), e.g. a plugin pair against the
 * bare proxy, two ways: the change in same-box req/s, and the change in req/s
 * that the system under test's CPU per response predicts when it has the
 * cores to itself (base µs / scenario µs), as on a gateway host with the load
 * generator elsewhere, where Kong's and APISIX's published figures come from.
 * Each is the median of the per-round changes: the two ran in the same round,
 * a minute apart at most, so a slow spell of the box cancels out. Each comes
 * with its noise (noise.ts `changeNoise`), and one the noise covers is printed
 * without a sign.
 */
const change = (a: number, b: number): number => (a / b - 1) * 100;
const byName = new Map(selected.map((s) => [s.name, runs.get(s)!]));
const rowByName = new Map(rows.map((r) => [r.scenario, r]));
const round1 = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
function paired(a: readonly Run[], b: readonly Run[], of: (x: Run, y: Run) => number | null): number[] {
  return a.flatMap((x, i) => {
    const y = b[i];
    const c = y === undefined ? null : of(x, y);
    return c === null ? [] : [c];
  });
}
const costs = selected.flatMap((s) => (s.versus ?? []).flatMap((v) => {
  const { scenario: base, atLeast } = typeof v === 'string' ? { scenario: v, atLeast: null } : v;
  const [a, b] = [byName.get(s.name) ?? [], byName.get(base) ?? []];
  const [ra, rb] = [rowByName.get(s.name), rowByName.get(base)];
  const perRound = paired(a, b, (x, y) => change(x.rps, y.rps));
  const rps = medianOf(perRound);
  if (rps === null || ra === undefined || rb === undefined) return [];
  const cpuRounds = paired(a, b, (x, y) => (x.sutUs === null || y.sutUs === null ? null : change(y.sutUs, x.sutUs)));
  const cpuBound = medianOf(cpuRounds);
  const rpsChange = { change: rps, noise: changeNoise(ra.noise.rps, rb.noise.rps, perRound) };
  const cpuChange = cpuBound === null ? null : { change: cpuBound, noise: changeNoise(ra.noise.us, rb.noise.us, cpuRounds) };
  return [{
    scenario: s.name, versus: base,
    // A target is judged on same-box req/s, the figure the issues state theirs in.
    change: round1(rps), noise: round1(rpsChange.noise), ratio: Math.round(100 + rps) / 100,
    cpu_bound: round1(cpuBound), cpu_bound_noise: round1(cpuChange?.noise ?? null),
    target: atLeast, verdict: atLeast === null ? null : verdict(rpsChange, atLeast),
    text: `${describeChange(rpsChange)} (${(Math.round(100 + rps) / 100).toFixed(2)}×` +
      `${atLeast === null ? '' : `; target ≥ ${atLeast.toFixed(2)}×: ${verdict(rpsChange, atLeast)}`}), ${cpuChange === null ? '-' : describeChange(cpuChange)}`,
  }];
}));
if (costs.length > 0) {
  console.log(`\nagainst another scenario${settings.rounds > 1 ? ` (median of the ${settings.rounds} rounds' changes)` : ''}: ` +
    `same-box req/s (as a ratio), and req/s predicted from CPU µs/req; ± the noise: ` +
    `${settings.rounds >= 3 ? 'half the spread of the per-round changes' : 'the spreads of the two figures added'}`);
  for (const c of costs) console.log(`  ${c.scenario} vs ${c.versus}: ${c.text}`);
}

const commit = commandOutput('git', ['-C', ROOT, 'rev-parse', 'HEAD']) || null;
const dirty = commit === null ? null : commandOutput('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'bin']) !== '';
const results = join(ROOT, 'bench/results');
mkdirSync(results, { recursive: true });
writeFileSync(join(results, 'http.json'), `${JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  systems: Object.fromEntries(externals),
  cpu: { model: cpuModel, cores: cpus().length },
  os: `Linux ${release()}`,
  git: { commit, dirty },
  settings,
  note: 'same-box numbers: load generator, upstream and system under test share the machine',
  costs,
  results: rows.map((r, i) => ({
    ...r,
    ratio_to_nginx: r.rps === null ? null : ratio(r.rps, nginxRps),
    ratio_to_direct: r.rps === null ? null : ratio(r.rps, directRps),
    // Every round's seconds, to see what a spread was made of.
    runs: runs.get(selected[i]!)!.map((x) => ({ rps: x.rps, sut_us: x.sutUs, warm: x.warm, seconds: x.seconds })),
  })),
}, null, 2)}\n`);
const noisy = rows.filter((r) => (r.cpu?.foreign ?? 0) > 10).map((r) => r.scenario);
if (noisy.length > 0) console.log(`\nWARNING: other processes used over 10% of a core during: ${noisy.join(', ')}; those numbers are unreliable`);
console.log(`\nwrote ${join(results, 'http.json')}`);
const failed = rows.filter((r) => r.failed !== undefined);
if (failed.length > 0) {
  console.log(`\nFAILED: ${failed.map((r) => `${r.scenario} (${r.failed ?? ''})`).join('; ')}`);
  process.exitCode = 1;
}
