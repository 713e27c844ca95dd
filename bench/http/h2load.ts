import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tally } from './histogram.ts';
import type { ClientProcessSettings } from './request.ts';

/**
 * The HTTP/2 load-generator process: h2load (Debian's nghttp2-client; the
 * bench installs it, see load.ts) in place of autocannon, which speaks
 * HTTP/1.1 only, speaking client.ts's protocol to the bench: a `tick N` line
 * each second with the responses so far, then one JSON line of totals and µs
 * buckets. h2load writes a row per response to its --log-file as it goes
 * (start, status, µs to the response's end), so both come from that file.
 *
 * The same concurrency as the HTTP/1.1 scenarios, multiplexed as HTTP/2
 * clients do: `connections` streams in flight over connections /
 * STREAMS_PER_CONNECTION connections. Usage: node h2load.ts '<json settings>'
 */
const STREAMS_PER_CONNECTION = 10;

const s = JSON.parse(process.argv[2]!) as ClientProcessSettings;
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-h2load-'));
const log = join(dir, 'requests.tsv');
const clients = Math.max(1, Math.ceil(s.connections / STREAMS_PER_CONNECTION));
const h2load = spawn('h2load', [
  '-c', String(clients), '-m', String(Math.ceil(s.connections / clients)), '-t', '1', '-D', String(s.duration + 1),
  '--log-file', log, ...Object.entries(s.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), s.url,
], { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
h2load.stdout.on('data', (c: Buffer) => (out += c.toString()));
h2load.stderr.on('data', (c: Buffer) => (out += c.toString()));

const tally = new Tally();
let fd = -1;
let partial = '';
const chunk = Buffer.alloc(1 << 20);

/** Reads the rows h2load has added since the last call. */
function readRows(): void {
  if (fd < 0) {
    try {
      fd = openSync(log, 'r');
    } catch {
      return; // not there until the first response
    }
  }
  for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
    const rows = (partial + chunk.toString('latin1', 0, n)).split('\n');
    partial = rows.pop()!;
    for (const row of rows) {
      const [, status, us] = row.split('\t');
      tally.responses++;
      if (status![0] !== '2') tally.non2xx++;
      tally.add(Number(us));
    }
  }
}

// As client.ts: the ticks end the run, h2load's own -D (a second longer) is never reached.
let seconds = 0;
const ticks = setInterval(() => {
  readRows();
  tally.tick();
  if (++seconds === s.duration) h2load.kill('SIGINT');
}, 1000);
const stop = (): void => void h2load.kill('SIGINT');
process.on('SIGTERM', stop);

const started = performance.now();
h2load.once('exit', (code, signal) => {
  clearInterval(ticks);
  readRows();
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0 && signal === null) {
    process.stderr.write(`h2load failed (${code}):\n${out}`);
    process.exit(1);
  }
  // Stopped by a signal, h2load prints no summary: the errors are the failures it reported as it ran.
  const errors = out.split('\n').filter((l) => l.startsWith('Process Request Failure') || l.includes('could not connect')).length;
  tally.report({ duration: (performance.now() - started) / 1000, errors, timeouts: 0 });
});
