import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tally } from './histogram.ts';
import type { ClientProcessSettings } from './request.ts';

/**
 * The wrk load-generator process (BENCH_CLIENT=wrk), speaking client.ts's
 * protocol to the bench: `tick N` each second, then one JSON line of totals
 * and µs buckets. wrk parses responses in C, so on a box the load generator
 * shares it leaves the systems under test more of the cores than autocannon
 * does: issue 17 stated its table under `wrk -t1 -c50`.
 *
 * wrk reports only at its end, so the load is a run of one-second wrk
 * invocations (-t1, the scenario's connections, kept alive within each
 * second): each one's end is a tick. Its done() hook prints the count, the
 * errors, and the latency at every 0.1 percentile, each standing for a
 * thousandth of that second's responses in the merged buckets. Reconnecting
 * 50 connections a second costs the system under test a few handshakes in
 * tens of thousands of requests.
 */
const s = JSON.parse(process.argv[2]!) as ClientProcessSettings;
const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-wrk-'));
const script = join(dir, 'report.lua');
// A new `n` query argument for every request when the scenario asks (a new cache key each time; see LoadRequest).
writeFileSync(script, `${s.newQueryEachRequest ? `
local n = 0
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1e9)) .. "-"
request = function()
  n = n + 1
  local sep = string.find(wrk.path, "?", 1, true) and "&" or "?"
  return wrk.format(nil, wrk.path .. sep .. "n=" .. prefix .. n)
end` : ''}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-done %d %d %d %d\\n", summary.requests, e.connect + e.read + e.write, e.timeout, e.status))
  for i = 1, 1000 do io.write(string.format("wrk-p %d\\n", latency:percentile(i / 10))) end
end
`);

const tally = new Tally();
let errors = 0;
let timeouts = 0;
let stopped = false;
process.on('SIGTERM', () => (stopped = true));

function second(): Promise<void> {
  const wrk = spawn('wrk', ['-t1', `-c${s.connections}`, '-d1s', '-s', script,
    ...Object.entries(s.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), s.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  wrk.stdout.on('data', (c: Buffer) => (out += c.toString()));
  wrk.stderr.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => wrk.once('exit', (code) => {
    const done = /^wrk-done (\d+) (\d+) (\d+) (\d+)$/m.exec(out);
    if (code !== 0 || done === null) return reject(new Error(`wrk failed (${code}):\n${out}`));
    const n = Number(done[1]);
    tally.responses += n;
    errors += Number(done[2]);
    timeouts += Number(done[3]);
    tally.non2xx += Number(done[4]);
    for (const [, us] of out.matchAll(/^wrk-p (\d+)$/gm)) tally.add(Number(us), n / 1000);
    resolve();
  }));
}

const started = performance.now();
for (let i = 0; i < s.duration && !stopped; i++) {
  await second();
  tally.tick();
}
rmSync(dir, { recursive: true, force: true });
tally.report({ duration: (performance.now() - started) / 1000, errors, timeouts });
