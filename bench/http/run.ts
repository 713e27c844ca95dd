// HTTP benchmark: the upstream alone, nginx (proxy_pass, proxy_cache, return; when on PATH), the Node peers
// fastify + @fastify/http-proxy and fast-gateway (devDependencies)
// and Sluice scenarios, each under the same autocannon load, on this one box.
// Prints a table and writes bench/results/http.json. Run: npm run bench
//
//   BENCH_DURATION=10     measured seconds per scenario
//   BENCH_WARMUP=3        warm-up seconds before each measured run (same load)
//   BENCH_CONNECTIONS=50  client connections
//   BENCH_CLIENTS=1       load-generator processes sharing the connections
//   BENCH_WORKERS=2       workers of every system: Sluice worker_processes, nginx worker_processes, the peers' processes
//   BENCH_UPSTREAM_CPU=   pin the upstream process to these CPUs (taskset -c list: 2 or 2-3 or 2,5); empty = unpinned
//   BENCH_CLIENT_CPU=     pin the load-generator processes to these CPUs; empty = unpinned
//   BENCH_SUT_CPU=        pin the system under test (Sluice, nginx, a peer) to these CPUs; empty = unpinned
//   BENCH_ONLY=regex      run only the scenarios whose name matches
//   BENCH_ROUNDS=1        run the scenarios this many times, interleaved, and report each one's median run:
//                         a busy neighbour or a GC storm then spoils one run, not one scenario's figure
//   BENCH_QUIET_WAIT=60   seconds to wait, before each scenario, for other processes to leave the CPUs (0 = don't)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { envCpu, envInt } from './env.ts';
import { load } from './load.ts';
import type { ClientSettings, LoadResult } from './load.ts';
import { commandOutput, cpuSeconds } from './processes.ts';
import type { Scenario } from './scenarios.ts';
import { probe } from './request.ts';
import type { LoadRequest } from './request.ts';
import { loadRequest, SCENARIOS } from './scenarios.ts';
import { benchCertificate } from './certificate.ts';
import type { BenchCertificate } from './certificate.ts';
import { externalVersion, ROOT, startExternal, startSluice, startUpstream } from './targets.ts';
import type { ExternalKind, Running } from './targets.ts';

const settings = {
  duration: envInt('BENCH_DURATION', 10),
  warmup: envInt('BENCH_WARMUP', 3),
  connections: envInt('BENCH_CONNECTIONS', 50),
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
  ({ connections: settings.connections, duration, processes: settings.clients, cpu: settings.clientCpu });

/** CPU-seconds the whole machine spent busy so far, from /proc/stat (null off Linux). */
function machineBusy(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return (f.reduce((a, b) => a + b, 0) - f[3]! - (f[4] ?? 0)) / 100; // minus idle and iowait; USER_HZ = 100
  } catch {
    return null;
  }
}

/**
 * CPU used during the measured run, each in % of one core (200 = two cores
 * busy): the system under test, the upstream, the load generator, and
 * `foreign` — user processes outside this bench, which must be near 0 for the
 * numbers to mean anything on a shared box.
 */
interface Cpu {
  readonly sut: number | null;
  readonly upstream: number | null;
  readonly client: number | null;
  readonly foreign: number | null;
}

/**
 * Runs the measured load and samples CPU over a window inside it (from 1 s in
 * to the planned end), so client start-up and teardown are not counted.
 */
async function measure(req: LoadRequest, sut: number | null, upstream: number): Promise<Run> {
  const sample = () => {
    const c = cpuSeconds([process.pid, sut ?? -1, upstream]);
    return { at: performance.now(), tree: c?.of[0] ?? null, sut: sut === null ? 0 : c?.of[1] ?? null, up: c?.of[2] ?? null, others: c?.others ?? null };
  };
  type Sample = ReturnType<typeof sample>;
  let first: Sample | null = null;
  let last: Sample | null = null;
  const t1 = setTimeout(() => { first = sample(); }, 1000);
  const t2 = setTimeout(() => { last = sample(); }, Math.max(1500, settings.duration * 1000));
  const result = await load(req, client(settings.duration));
  clearTimeout(t1);
  clearTimeout(t2);
  const a = first as Sample | null;
  const b = last as Sample | null;
  if (a === null || b === null) return { result, cpu: { sut: null, upstream: null, client: null, foreign: null }, sutUs: null };
  const secs = (b.at - a.at) / 1000;
  const used = (k: keyof Omit<Sample, 'at'>): number | null => (a[k] === null || b[k] === null ? null : b[k]! - a[k]!);
  const pct = (v: number | null): number | null => (v === null ? null : Math.round((v / secs) * 100));
  const [sutS, upS, treeS] = [used('sut'), used('up'), used('tree')];
  return {
    result,
    sutUs: sut === null || sutS === null ? null : (sutS / secs / result.rps) * 1e6,
    cpu: {
      sut: sut === null ? null : pct(sutS),
      upstream: pct(upS),
      client: treeS === null || sutS === null || upS === null ? null : pct(treeS - sutS - upS),
      foreign: pct(used('others')),
    },
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

interface Run {
  readonly result: LoadResult;
  readonly cpu: Cpu;
  /**
   * CPU time the system under test spent per response (µs, user + system,
   * all its workers): its own cost, whatever shares the box. Same-box req/s
   * also moves with what the load generator and the upstream spend (more
   * response headers to parse, say); this does not.
   */
  readonly sutUs: number | null;
}

interface Row {
  readonly scenario: string;
  readonly kind: Scenario['kind'];
  readonly path: string;
  /** The run with the median req/s. */
  readonly result: LoadResult | null;
  readonly cpu: Cpu | null;
  /** Median over the rounds of the system under test's CPU µs per response. */
  readonly sutUs: number | null;
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
  const system = { workers: settings.workers, upstreamPort: upstream.port, cpu: settings.sutCpu, tls: certificateFor(s) };
  let target: Running | null = null;
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
  if (settings.warmup > 0) await load(req, client(settings.warmup));
  const wrong = s.expect === undefined ? null : await probe(req, s.expect);
  const run = wrong === null ? await measure(req, target?.child.pid ?? null, upstream.child.pid) : { reason: wrong, failed: true };
  await target?.child.stop();
  return run;
}

const upstream = await startUpstream(settings.upstreamCpu);
console.error(`bench: upstream on 127.0.0.1:${upstream.port}, ${settings.connections} connections, ` +
  `${settings.warmup}s warm-up + ${settings.duration}s per scenario, ${settings.workers} workers for every system` +
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

/** The median of `v` (the mean of the middle two for an even count), or null when empty. */
function medianOf(v: readonly number[]): number | null {
  if (v.length === 0) return null;
  const sorted = [...v].sort((p, q) => p - q);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const rows: Row[] = selected.map((s) => {
  const done = runs.get(s)!;
  const median = [...done].sort((a, b) => a.result.rps - b.result.rps)[(done.length - 1) >> 1] ?? null;
  return {
    scenario: s.name, kind: s.kind, path: s.path, result: median?.result ?? null, cpu: median?.cpu ?? null,
    sutUs: medianOf(done.flatMap((r) => (r.sutUs === null ? [] : [r.sutUs]))),
    rounds: done.map((r) => Math.round(r.result.rps)),
    ...(skipped.has(s) ? { [skipped.get(s)!.failed ? 'failed' : 'skipped']: skipped.get(s)!.reason } : {}),
  };
});

// The columns' baselines: the upstream alone, and nginx as a proxy (not as a cache).
const rpsOf = (is: (s: Scenario) => boolean): number | null => rows.find((r, i) => is(selected[i]!) && r.result !== null)?.result?.rps ?? null;
const nginxRps = rpsOf((s) => s.kind === 'nginx' && s.location === undefined);
const directRps = rpsOf((s) => s.kind === 'direct');
const ratio = (rps: number, base: number | null): number | null => (base === null ? null : Math.round((rps / base) * 100) / 100);

const cpuModel = cpus()[0]?.model ?? 'unknown cpu';
const versions = [...externals.values()].flatMap((v) => ('version' in v ? [v.version] : []));
const machine = [`node ${process.version}`, ...versions, `${cpuModel} x${cpus().length}`, `Linux ${release()}`].join(', ');
const header = ['scenario', 'req/s', ...(settings.rounds > 1 ? ['min-max'] : []), 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'non-2xx', 'x nginx', 'x direct', 'sut µs/req', 'cpu% sut/upstream/client/foreign'];
const table: string[][] = rows.map((r) => {
  if (r.result === null) return [r.scenario, r.failed !== undefined ? `FAILED: ${r.failed}` : `skipped: ${r.skipped ?? ''}`, ...header.slice(2).map(() => '')];
  const x = r.result;
  const c = r.cpu;
  return [
    r.scenario, Math.round(x.rps).toString(), ...(settings.rounds > 1 ? [`${Math.min(...r.rounds)}-${Math.max(...r.rounds)}`] : []), x.p50.toFixed(3), x.p90.toFixed(3), x.p99.toFixed(3),
    String(x.errors + x.timeouts), String(x.non2xx),
    ratio(x.rps, nginxRps)?.toFixed(2) ?? '-', ratio(x.rps, directRps)?.toFixed(2) ?? '-', r.sutUs?.toFixed(1) ?? '-',
    c === null ? '-' : [c.sut, c.upstream, c.client, c.foreign].map((v) => v ?? '-').join('/'),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(`\nSluice HTTP bench — ${machine}`);
const pins = ([['system under test', settings.sutCpu], ['upstream', settings.upstreamCpu], ['load generator', settings.clientCpu]] as const)
  .flatMap(([who, at]) => (at === null ? [] : [`${who} on CPU ${at}`]));
console.log(`same box: load generator, upstream and the system under test share ${cpus().length} cores` +
  `${pins.length > 0 ? ` (${pins.join(', ')})` : ''}; ` +
  `${settings.connections} connections, ${settings.duration}s after ${settings.warmup}s warm-up; Sluice access_log off unless named`);
console.log(`sut µs/req: CPU time the system under test spent per response, all its workers (median of the rounds)`);
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
 * a minute apart at most, so a slow spell of the box cancels out.
 */
const change = (a: number, b: number): number => Math.round((a / b - 1) * 1000) / 10;
function pairedChange(a: readonly Run[], b: readonly Run[], of: (x: Run, y: Run) => number | null): number | null {
  const m = medianOf(a.flatMap((x, i) => {
    const y = b[i];
    const c = y === undefined ? null : of(x, y);
    return c === null ? [] : [c];
  }));
  return m === null ? null : Math.round(m * 10) / 10;
}
const byName = new Map(selected.map((s) => [s.name, runs.get(s)!]));
const costs = selected.flatMap((s) => (s.versus ?? []).flatMap((v) => {
  const { scenario: base, atLeast } = typeof v === 'string' ? { scenario: v, atLeast: null } : v;
  const a = byName.get(s.name) ?? [];
  const b = byName.get(base) ?? [];
  const rps = pairedChange(a, b, (x, y) => change(x.result.rps, y.result.rps));
  if (rps === null) return [];
  const cpuBound = pairedChange(a, b, (x, y) => (x.sutUs === null || y.sutUs === null ? null : change(y.sutUs, x.sutUs)));
  // A target is judged on same-box req/s, the figure the issues state theirs in.
  const times = Math.round(100 + rps) / 100;
  return [{ scenario: s.name, versus: base, change: rps, cpu_bound: cpuBound, ratio: times, target: atLeast, met: atLeast === null ? null : times >= atLeast }];
}));
const signed = (v: number): string => `${v > 0 ? '+' : ''}${v}%`;
if (costs.length > 0) {
  console.log(`\nagainst another scenario${settings.rounds > 1 ? ` (median of the ${settings.rounds} rounds' changes)` : ''}: same-box req/s (as a ratio), and req/s predicted from sut µs/req`);
  for (const c of costs) {
    const target = c.target === null ? '' : `; target ≥ ${c.target.toFixed(2)}×: ${c.met === true ? 'met' : 'MISSED'}`;
    console.log(`  ${c.scenario} vs ${c.versus}: ${signed(c.change)} (${c.ratio.toFixed(2)}×${target}), ${c.cpu_bound === null ? '-' : signed(c.cpu_bound)}`);
  }
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
  results: rows.map((r) => ({
    ...r,
    ratio_to_nginx: r.result === null ? null : ratio(r.result.rps, nginxRps),
    ratio_to_direct: r.result === null ? null : ratio(r.result.rps, directRps),
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
