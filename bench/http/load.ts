import { join } from 'node:path';
import { h2load } from './h2load.ts';
import { merge, percentiles } from './histogram.ts';
import type { Sparse } from './histogram.ts';
import { pinned, start } from './processes.ts';
import type { LoadRequest } from './request.ts';
import { ROOT } from './targets.ts';

/**
 * The load generator: `processes` autocannon processes (client.ts) started
 * together, the connections split between them, their counts summed and their
 * µs latency histograms merged. Several processes rather than autocannon's
 * `-w` threads because autocannon's workers do not forward per-response
 * timings, and a separate process keeps the generator off the bench's loop.
 * HTTP/2 scenarios are loaded by one h2load process instead (h2load.ts).
 */
export interface ClientSettings {
  readonly connections: number;
  /** Seconds. */
  readonly duration: number;
  readonly processes: number;
  /** CPUs to pin the client processes to (a taskset -c list), or null for none. */
  readonly cpu: string | null;
}

export interface LoadResult {
  readonly rps: number;
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

async function one(req: LoadRequest, connections: number, c: ClientSettings): Promise<ClientOutput> {
  const [cmd, args] = pinned(process.execPath, [CLIENT, JSON.stringify({ ...req, connections, duration: c.duration })], c.cpu);
  const child = start(cmd, args);
  const code = await new Promise<number | null>((resolve) => child.proc.once('exit', resolve));
  const out = child.output();
  const line = out.split('\n').find((l) => l.startsWith('{"responses"'));
  if (code !== 0 || line === undefined) throw new Error(`load client failed (${code}):\n${out}`);
  return JSON.parse(line) as ClientOutput;
}

export async function load(req: LoadRequest, c: ClientSettings): Promise<LoadResult> {
  const n = Math.max(1, Math.min(c.processes, c.connections));
  const parts = req.http2 ? [await h2load(req, c.connections, c.duration, c.cpu)] : await Promise.all(Array.from({ length: n }, (_, i) =>
    one(req, Math.floor(c.connections / n) + (i < c.connections % n ? 1 : 0), c)));
  const [p50, p90, p99] = percentiles(merge(parts.map((p) => p.hist)), [50, 90, 99]) as [number, number, number];
  const sum = (f: (p: ClientOutput) => number): number => parts.reduce((a, p) => a + f(p), 0);
  const requests = sum((p) => p.responses);
  const duration = Math.max(...parts.map((p) => p.duration));
  return {
    // Every response over the measured time, not a mean of per-second samples.
    rps: requests / duration,
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
