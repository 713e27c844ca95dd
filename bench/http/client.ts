import { createRequire } from 'node:module';
import { Tally } from './histogram.ts';
import { withNewQuery } from './request.ts';
import type { ClientProcessSettings } from './request.ts';

/**
 * One load-generator process: autocannon's programmatic API on its own event
 * loop. autocannon's own histogram keeps whole milliseconds, which turns every
 * sub-millisecond p50 into 0 or 1; so each response's time (autocannon measures
 * it with hrtime) also goes into a 1 µs bucket array that the bench merges over
 * all client processes. Every second it prints `tick N`, N the responses so far,
 * which the bench samples the system's CPU time at; after `duration` ticks, or
 * on SIGTERM, it stops. Prints one JSON line at the end.
 * Usage: node client.ts '<json settings>'
 */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
interface Instance {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  stop(): void;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, r: AutocannonResult) => void) => Instance;

// autocannon ships CommonJS without type declarations: load it through require with the slice of its API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
const s = JSON.parse(process.argv[2]!) as ClientProcessSettings;

const tally = new Tally();
// autocannon's idReplacement puts a fresh id (hyperid: a random prefix and a counter) wherever the request says [<id>].
const url = s.newQueryEachRequest ? withNewQuery(s.url, '[<id>]') : s.url;
// The ticks end the run, not autocannon's timer (a second later, never reached); it looks at its stop flag
// every sampleInt ms, so a stop takes effect within 0.1 s rather than at its next whole second.
const inst = autocannon({ url, connections: s.connections, duration: s.duration + 1, sampleInt: 100, headers: s.headers, idReplacement: s.newQueryEachRequest }, (err, r) => {
  clearInterval(ticks);
  if (err !== null) throw err;
  tally.non2xx = r.non2xx;
  tally.report({ duration: r.duration, errors: r.errors, timeouts: r.timeouts });
});
inst.on('response', (_c, _status, _bytes, ms) => {
  tally.responses++;
  tally.add(Math.round(ms * 1000));
});
let seconds = 0;
const ticks = setInterval(() => {
  tally.tick();
  if (++seconds === s.duration) inst.stop();
}, 1000);
process.on('SIGTERM', () => inst.stop());
