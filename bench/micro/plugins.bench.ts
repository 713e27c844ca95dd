/**
 * Micro-bench for plugin chains: what each chain costs a request on the
 * worker's thread up to the response head, without sockets or undici. It runs
 * the real pipeline (chain compiled from a conf, the Exchange, runRequestPhases,
 * the response writer's sendHead: header filters, Node's writeHead) on a request with an API
 * key, over a real shared dict, and prints ns per request and the cost over
 * the chain before it.
 * Run: npm run bench:plugins (writes bench/results/plugins.json)
 * (BENCH_ONLY=regex keeps the scenarios whose name matches; BENCH_N sets the requests per scenario.)
 *
 * The HTTP bench (`npm run bench`) is what the targets are judged on; this one
 * tells which part of a plugin's cost is its own code (a few hundred ns to a
 * few µs, against ~45 µs for a whole proxied request on one core).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { cpus } from 'node:os';
import pino from 'pino';
import type { ConsumerConf, RouteConf, SluiceConf } from '../../src/config/types.ts';
import { loadAllBuiltins } from '../../src/plugins/index.ts';
import { SharedDict } from '../../src/shdict/index.ts';
import { Exchange } from '../../src/worker/exchange.ts';
import type { Site } from '../../src/worker/exchange.ts';
import { compileChains } from '../../src/worker/pipeline/chain.ts';
import type { Chain } from '../../src/worker/pipeline/chain.ts';
import { compileConsumers } from '../../src/worker/pipeline/consumers.ts';
import { createPluginEnvs } from '../../src/worker/pipeline/env.ts';
import { runRequestPhases } from '../../src/worker/pipeline/run.ts';
import { createUpstream } from '../../src/worker/proxy.ts';
import { sendHead } from '../../src/worker/response-writer.ts';
import { ORIGIN_CANARY, TENANT_RULES } from '../http/scenarios.ts';
import { Tunnels } from '../../src/worker/websocket.ts';

const consumers: ConsumerConf[] = [
  { username: 'bench', attributes: { user_id: '1001', company_id: '42' }, credentials: { 'key-auth': [{ key: 'bench-key' }] } },
];

/** A browser-like request, as Node's rawHeaders. */
const REQUEST = ['Host', 'api.example.com', 'User-Agent', 'bench/1.0', 'Accept', '*/*', 'Accept-Encoding', 'gzip, deflate', 'apikey', 'bench-key', 'Connection', 'keep-alive'];
/** An upstream's answer, as undici hands it over. */
const RESPONSE = ['content-type', 'application/json', 'content-length', '27', 'date', 'Tue, 24 Nov 2026 21:00:00 GMT', 'connection', 'keep-alive', 'keep-alive', 'timeout=5'];

const KEY_AUTH = { 'key-auth': {} };
const RL = { limits: [{ by: 'user_id', second: 2 ** 25 }] };
const COMPANY_AND_USER = { limits: [{ by: 'company_id', hour: 2 ** 25 }, { by: 'user_id', second: 2 ** 25 }] };
const scenarios: [string, Record<string, unknown>][] = [
  ['rate-limiting alone (hide_client_headers)', { 'rate-limiting': { limits: [{ by: 'ip', second: 2 ** 25 }], hide_client_headers: true } }],
  ['key-auth', KEY_AUTH],
  ['key-auth + rate-limiting', { ...KEY_AUTH, 'rate-limiting': RL }],
  ['key-auth + rate-limiting (hide_client_headers)', { ...KEY_AUTH, 'rate-limiting': { ...RL, hide_client_headers: true } }],
  // As in the HTTP bench: a company quota and a per-user rate, two counters and seven headers.
  ['key-auth + rate-limiting (company + user)', { ...KEY_AUTH, 'rate-limiting': COMPANY_AND_USER }],
  ['key-auth + rate-limiting (company + user, hide_client_headers)', { ...KEY_AUTH, 'rate-limiting': { ...COMPANY_AND_USER, hide_client_headers: true } }],
  // The same seven fields as constants, through response-transformer: what any plugin pays to send them.
  ['key-auth + the same 7 headers, static', {
    ...KEY_AUTH,
    'response-transformer': {
      append: {
        headers: [
          'RateLimit-Limit:33554432', 'RateLimit-Remaining:33554431', 'RateLimit-Reset:1', 'X-RateLimit-Limit-Second:33554432',
          'X-RateLimit-Remaining-Second:33554431', 'X-RateLimit-Limit-Hour:33554432', 'X-RateLimit-Remaining-Hour:33554431',
        ],
      },
    },
  }],
  // Issue 15: a thousand tenant rules against one; the bench consumer's company has no rule of its own.
  ['key-auth + traffic-split (1 rule)', { ...KEY_AUTH, 'traffic-split': { rules: [ORIGIN_CANARY] } }],
  ['key-auth + traffic-split (1,000 tenant rules)', { ...KEY_AUTH, 'traffic-split': { rules: TENANT_RULES } }],
];

const zone = SharedDict.create(10 << 20);
const envs = createPluginEnvs({ log: pino({ level: 'silent' }), workerId: 1, zones: { sluice_limits: zone.buffer }, consumers: compileConsumers(consumers) });
const socket = { remoteAddress: '127.0.0.1', bytesWritten: 0 } as unknown as Socket;
const log = pino({ level: 'silent' });
/** The route's upstream, never asked (no request leaves this bench): what traffic-split may choose. */
const origin = createUpstream({
  name: 'origin', algorithm: 'round-robin', hash_on: 'ip', keepalive: 1, connect_timeout: 1000, send_timeout: 1000, read_timeout: 1000,
  retries: 0, host_header: null, tls: null, healthcheck: { active: null, passive: null },
  targets: [{ address: '127.0.0.1:9', host: '127.0.0.1', port: 9, weight: 1, backup: false }],
});
const stats = new Float64Array(64);
const site: Site = {
  log, accessLog: null, stats, lifecycle: { draining: false }, routes: 1, bodyLimits: { maxBody: 0, idleMs: 60_000 },
  upstreams: new Map([['origin', origin]]), tunnels: new Tunnels(stats),
};

const BUILTINS = new Map((await loadAllBuiltins()).map((d) => [d.name, d]));

function chainOf(plugins: Record<string, unknown>): Chain {
  const route = { name: 'bench', plugins } as unknown as RouteConf;
  const conf = { plugins: {}, routes: [route] } as unknown as SluiceConf;
  return compileChains({ conf, plugins: BUILTINS, envFor: envs.envFor, log }).routes[0]!;
}

/** What the Exchange and ServerResponse read of their request: a keep-alive HTTP/1.1 GET. */
const incoming = { method: 'GET', url: '/', rawHeaders: REQUEST, socket, httpVersionMajor: 1, httpVersionMinor: 1, headers: {} } as unknown as IncomingMessage;

/**
 * One request as the gateway runs it up to the response head: the exchange,
 * the request phases, and the response writer's head (header filters, then
 * Node's writeHead, which checks every field and joins them into the head
 * string: a plugin's response headers cost there too).
 */
function once(chain: Chain): number {
  const res = new ServerResponse(incoming);
  res.sendDate = false;
  const x = new Exchange(site, incoming, res, chain, 0);
  x.req.routeTo('/', '');
  x.proxyTo = origin;
  const exit = chain.request === null ? null : runRequestPhases(x, chain.request, 0);
  if (exit !== null) throw new Error(`bench request refused: ${JSON.stringify(exit)}`);
  sendHead(x, 200, RESPONSE, 'upstream');
  return (res as unknown as { _header: string })._header.length;
}

function nsPerRequest(chain: Chain, n: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += once(chain);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

const N = Number(process.env['BENCH_N'] ?? 300_000);
const only = new RegExp(process.env['BENCH_ONLY'] ?? '');
const chains = scenarios.filter(([name]) => only.test(name)).map(([name, plugins]) => ({ name, chain: chainOf(plugins) }));
for (const { chain } of chains) nsPerRequest(chain, N / 3); // warm up every shape before timing any
// Interleaved rounds, median per scenario: a GC or a busy neighbour hits one round, not one scenario.
const rounds = 7;
const samples = chains.map(() => [] as number[]);
for (let r = 0; r < rounds; r++) chains.forEach(({ chain }, i) => samples[i]!.push(nsPerRequest(chain, N / rounds)));
const median = (a: number[]): number => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const rows = chains.map(({ name }, i) => ({ scenario: name, 'ns/req': Math.round(median(samples[i]!)) }));
const keyAuthAlone = rows.find((r) => r.scenario === 'key-auth')?.['ns/req'];
const table = rows.map((r) => ({
  ...r,
  'over key-auth': keyAuthAlone !== undefined && r.scenario.startsWith('key-auth +') ? r['ns/req'] - keyAuthAlone : null,
}));
console.table(table.map((r) => ({ ...r, 'over key-auth': r['over key-auth'] ?? '' })));

const out = new URL('../results/plugins.json', import.meta.url);
mkdirSync(new URL('.', out), { recursive: true });
writeFileSync(out, `${JSON.stringify({
  node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, date: new Date().toISOString(),
  requestsPerScenario: N, rounds, unit: 'ns per request (median of the rounds)', rows: table,
}, null, 2)}\n`);
console.log(`wrote ${out.pathname}`);
