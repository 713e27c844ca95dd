import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { parse } from 'yaml';
import { ROOT, startGateway } from '../helpers/gateway.ts';

/**
 * What the master and the workers load on the shipped conf (conf/sluice.yaml with its conf.d,
 * on free ports): a worker runs the conf the master checked, so it never loads the schema
 * validator or the YAML parser; no thread loads a library for a plugin the conf does not name;
 * and once the compile cache is warm no thread loads amaro, Node's TypeScript stripper (about
 * 26 MB of RSS a thread). Modules, not RSS, are checked: a bound on RSS needs headroom that
 * would hide one of these coming back, a module list does not.
 */
interface Trace {
  readonly master: boolean;
  readonly amaro: boolean;
  readonly urls: readonly string[];
}

/** Libraries the shipped conf has no use for in a worker: the conf checker's, and plugins' the conf does not name. */
const NOT_IN_WORKERS = ['typebox', 'yaml', 'ajv', 'jose', 'ioredis', '@node-rs/argon2', 'bcryptjs', 'piscina', 'undici'];
/** The master checks confs (typebox, yaml) but runs no plugin and serves no file. */
const NOT_IN_MASTER = ['ajv', 'jose', 'ioredis', '@node-rs/argon2', 'bcryptjs', 'piscina', 'mime-types', 'undici'];

const shipped = (): Record<string, unknown> => {
  const conf = parse(readFileSync(join(ROOT, 'conf/sluice.yaml'), 'utf8')) as Record<string, unknown>;
  const { listen: _, ...server } = conf['server'] as Record<string, unknown>;
  const routes = (conf['routes'] as Record<string, unknown>[]).map((r) => (r['root'] === undefined ? r : { ...r, root: join(ROOT, r['root'] as string) }));
  // The brief's shape (master + 2 workers) on any machine; startGateway puts listen and status on free ports.
  return { ...conf, worker_processes: 2, server, routes, include: [join(ROOT, 'conf/conf.d/*.yaml')] };
};

let traceDir = '';
beforeAll(() => {
  traceDir = mkdtempSync(join(tmpdir(), 'sluice-modules-'));
});
afterAll(() => rmSync(traceDir, { recursive: true, force: true }));

/** Starts the gateway with the trace preload, makes a proxied and a `return:` request, stops it, and reads every thread's trace. */
async function run(): Promise<Trace[]> {
  for (const f of readdirSync(traceDir)) rmSync(join(traceDir, f));
  const env = { ...process.env, NODE_OPTIONS: `--import ${join(ROOT, 'test/helpers/module-trace.js')}`, SLUICE_MODULE_TRACE: traceDir };
  const gw = await startGateway(shipped, {}, { env });
  try {
    // Whatever the echo upstream answers (nothing listens on 9001 here: a 502), the request path has been loaded.
    await (await fetch(gw.url('/echo/x'))).arrayBuffer();
    expect((await fetch(gw.url('/ping'))).status).toBe(200);
  } finally {
    await gw.stop();
  }
  return readdirSync(traceDir).map((f) => JSON.parse(readFileSync(join(traceDir, f), 'utf8')) as Trace);
}

const packagesOf = (t: Trace): string[] =>
  [...new Set(t.urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []))].sort();

test('on the shipped conf, workers load no conf checker and no unused plugin library; the master no plugin library; with a warm compile cache no thread loads amaro', async () => {
  // The first run fills the compile cache (a fresh checkout starts cold); the second is what every later start looks like.
  await run();
  const traces = await run();
  const workers = traces.filter((t) => !t.master);
  const master = traces.find((t) => t.master);
  expect(workers).toHaveLength(2);
  expect(master).toBeDefined();
  for (const w of workers) expect(packagesOf(w).filter((p) => NOT_IN_WORKERS.includes(p))).toEqual([]);
  expect(packagesOf(master!).filter((p) => NOT_IN_MASTER.includes(p))).toEqual([]);
  expect(traces.filter((t) => t.amaro).map((t) => (t.master ? 'master' : 'worker'))).toEqual([]);
});
