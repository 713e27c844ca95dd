import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIMIT_US } from './histogram.ts';
import type { ClientOutput } from './load.ts';
import { onPath, pinned, start, tempDir } from './processes.ts';
import type { LoadRequest } from './request.ts';

/**
 * The HTTP/2 load generator: h2load, from Debian's nghttp2-client (autocannon
 * speaks HTTP/1.1 only). Installed here when missing, as the issue asks, when
 * the bench may run apt-get (as root); otherwise the HTTP/2 scenarios are
 * skipped with the command that would install it.
 *
 * The same concurrency as the HTTP/1.1 scenarios, multiplexed as browsers
 * and HTTP/2 clients do: `connections` requests in flight over
 * connections / STREAMS_PER_CONNECTION connections. Per-request timings come
 * from h2load's --log-file (start, status, µs to the response's end), so the
 * percentiles are computed as the autocannon clients' are.
 */
export const STREAMS_PER_CONNECTION = 10;

let available: string | null | undefined;

/** Null when h2load can run, or why it cannot. */
export function h2loadMissing(): string | null {
  if (available !== undefined) return available;
  if (onPath('h2load') === null && process.getuid?.() === 0 && onPath('apt-get') !== null) {
    console.error('bench: h2load missing; apt-get install nghttp2-client');
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', 'nghttp2-client'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (install().status !== 0) {
      spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'inherit'] });
      install();
    }
  }
  available = onPath('h2load') === null ? 'h2load not on PATH (apt-get install nghttp2-client)' : null;
  return available;
}

export async function h2load(req: LoadRequest, connections: number, duration: number, cpu: string | null): Promise<ClientOutput> {
  const log = join(tempDir(mkdtempSync(join(tmpdir(), 'sluice-bench-h2load-'))), 'requests.tsv');
  const clients = Math.max(1, Math.ceil(connections / STREAMS_PER_CONNECTION));
  const args = [
    '-c', String(clients), '-m', String(Math.ceil(connections / clients)), '-t', '1', '-D', String(duration),
    '--log-file', log, ...Object.entries(req.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), req.url,
  ];
  const child = start(...pinned('h2load', args, cpu));
  const code = await new Promise<number | null>((resolve) => child.proc.once('exit', resolve));
  // "finished in 5.00s, 41234.56 req/s, …" and "requests: N total, N started, N done, N succeeded, F failed, E errored, T timeout"
  const out = child.output();
  const finished = /finished in ([\d.]+)(m?s)/.exec(out);
  const counts = /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (code !== 0 || finished === null || counts === null) throw new Error(`h2load failed (${code}):\n${out}`);
  const buckets = new Map<number, number>();
  let responses = 0;
  let non2xx = 0;
  let max = 0;
  for (const row of readFileSync(log, 'utf8').split('\n')) {
    const [, status, us] = row.split('\t');
    if (us === undefined) continue;
    const t = Number(us);
    responses++;
    if (!status!.startsWith('2')) non2xx++;
    if (t / 1000 > max) max = t / 1000;
    const b = t < LIMIT_US ? t : LIMIT_US;
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  return {
    responses,
    duration: Number(finished[1]) / (finished[2] === 'ms' ? 1000 : 1),
    errors: Number(counts[2]),
    timeouts: Number(counts[3]),
    non2xx,
    max,
    hist: [...buckets],
  };
}
