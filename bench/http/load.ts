import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { merge, percentiles } from './histogram.ts';
import type { Sparse } from './histogram.ts';
import { onPath, pinned, start } from './processes.ts';
import type { Child } from './processes.ts';
import type { LoadRequest } from './request.ts';
import { ROOT } from './targets.ts';

/**
 * The load generator: `processes` autocannon processes (client.ts) started
 * together, the connections split between them, their counts summed and their
 * µs latency histograms merged. Several processes rather than autocannon's
 * `-w` threads because autocannon's workers do not forward per-response
 * timings, and a separate process keeps the generator off the bench's loop.
 * HTTP/2 scenarios are loaded by one h2load process instead (h2load.ts), and
 * with BENCH_CLIENT=wrk the others by wrk (wrk.ts): the same protocol.
 */
export interface ClientSettings {
  readonly connections: number;
  /** Seconds. */
  readonly duration: number;
  readonly processes: number;
  /** CPUs to pin the client processes to (a taskset -c list), or null for none. */
  readonly cpu: string | null;
  /** What loads HTTP/1.1 (HTTP/2 is always h2load): autocannon (client.ts) or wrk (wrk.ts). */
  readonly generator: Generator;
}

export type Generator = 'autocannon' | 'wrk';

export interface LoadResult {
  /** Every response over the whole run, client start-up included. */
  readonly rps: number;
  /** Responses in each whole second of the run, all client processes together (see EachSecond). */
  readonly seconds: readonly number[];
  readonly requests: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly duration: number;
}

/** What one load-generator process reports. */
export interface ClientOutput {
  responses: number;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  max: number;
  hist: Sparse;
}

const CLIENT = join(ROOT, 'bench/http/client.ts');
const H2_CLIENT = join(ROOT, 'bench/http/h2load.ts');
const WRK_CLIENT = join(ROOT, 'bench/http/wrk.ts');

let h2loadState: string | null | undefined;

/**
 * Null when h2load (the HTTP/2 scenarios' load generator) can run, or why it
 * cannot. Installed here when missing, as issue 16 asks, when the bench may
 * run apt-get (as root); otherwise the scenarios are skipped with this reason.
 */
export function h2loadMissing(): string | null {
  if (h2loadState !== undefined) return h2loadState;
  if (onPath('h2load') === null && process.getuid?.() === 0 && onPath('apt-get') !== null) {
    console.error('bench: h2load missing; apt-get install nghttp2-client');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', 'nghttp2-client'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'], env });
      install();
    }
  }
  h2loadState = onPath('h2load') === null ? 'h2load not on PATH (apt-get install nghttp2-client)' : null;
  return h2loadState;
}

/**
 * Called as each second of load ends (once every client process has said so),
 * with the responses in that second; true ends the load there. The bench samples
 * CPU time here, and the warm-up stops once the gateway's figure has settled.
 */
export type EachSecond = (responses: number) => boolean;

async function one(req: LoadRequest, connections: number, c: ClientSettings, tick: (total: number) => void, children: Child[]): Promise<ClientOutput> {
  const [cmd, args] = pinned(process.execPath, [req.http2 ? H2_CLIENT : c.generator === 'wrk' ? WRK_CLIENT : CLIENT, JSON.stringify({ ...req, connections, duration: c.duration })], c.cpu);
  const child = start(cmd, args);
  children.push(child);
  child.onLine((line) => {
    if (line.startsWith('tick ')) tick(Number(line.slice(5)));
  });
  const code = await new Promise<number | null>((resolve) => child.proc.once('exit', resolve));
  const out = child.output();
  const line = out.split('\n').find((l) => l.startsWith('{"responses"'));
  if (code !== 0 || line === undefined) throw new Error(`load client failed (${code}):\n${out}`);
  return JSON.parse(line) as ClientOutput;
}

export async function load(req: LoadRequest, c: ClientSettings, eachSecond: EachSecond = () => false): Promise<LoadResult> {
  // One h2load process: its connections multiplex the streams (h2load.ts).
  const n = req.http2 ? 1 : Math.max(1, Math.min(c.processes, c.connections));
  // Each process's running totals, one a second; a second ends when the last process reports it.
  const totals: number[][] = Array.from({ length: n }, () => []);
  const seconds: number[] = [];
  let before = 0;
  let stopping = false;
  const tick = (p: number, total: number): void => {
    totals[p]!.push(total);
    const done = Math.min(...totals.map((t) => t.length));
    if (done === seconds.length) return;
    const sum = totals.reduce((a, t) => a + t[done - 1]!, 0);
    seconds.push(sum - before);
    before = sum;
    // Once: a process that ticks again before it stops would otherwise get a second SIGTERM as it exits.
    if (eachSecond(seconds.at(-1)!) && !stopping) {
      stopping = true;
      for (const ch of children) ch.proc.kill('SIGTERM');
    }
  };
  const children: Child[] = [];
  const parts = await Promise.all(Array.from({ length: n }, (_, i) =>
    one(req, Math.floor(c.connections / n) + (i < c.connections % n ? 1 : 0), c, (total) => tick(i, total), children)));
  const [p50, p90, p99] = percentiles(merge(parts.map((p) => p.hist)), [50, 90, 99]) as [number, number, number];
  const sum = (f: (p: ClientOutput) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const requests = sum((p) => p.responses);
  const duration = Math.max(...parts.map((p) => p.duration));
  return {
    // Every response over the measured time, not a mean of per-second samples.
    rps: requests / duration,
    seconds,
    requests,
    p50,
    p90,
    p99,
    max: Math.max(...parts.map((p) => p.max)),
    errors: sum((p) => p.errors),
    timeouts: sum((p) => p.timeouts),
    non2xx: sum((p) => p.non2xx),
    duration,
  };
}
