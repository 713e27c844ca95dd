import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client, request } from 'undici';
import { parse, stringify } from 'yaml';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/free-port.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * The upstream zone through the real gateway (two workers): the balancing
 * state is one for both workers. Connections are pinned to a worker by asking
 * it who it is (the lifecycle-probe plugin's /whoami) on a keep-alive
 * connection, so that one worker can load a target and the other be asked.
 *
 * `lc` is least-conn over a and b, which park `/hold` requests until
 * released and answer anything else with their name. `pf` is least-conn over
 * a port nobody listens on (refused: the tie sends every request there first,
 * then the retry to b) and b, with max_fails 2.
 */
interface Target {
  readonly up: TestUpstream;
  readonly held: ServerResponse[];
  /** Resolves once `n` requests are parked. */
  holding(n: number): Promise<void>;
}

async function target(name: string): Promise<Target> {
  const held: ServerResponse[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const up = await startUpstream((req, res) => {
    if (!req.url!.includes('/hold')) {
      res.end(name);
      return;
    }
    held.push(res);
    for (const w of waiters.filter((w) => held.length >= w.n)) w.resolve();
  });
  return { up, held, holding: (n) => (held.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))) };
}

let gw: RunningGateway;
let a: Target;
let b: Target;
/** pf's first target: nothing listens there. */
let refused = '';
const clients: Client[] = [];

beforeAll(async () => {
  [a, b] = await Promise.all([target('a'), target('b')]);
  refused = `127.0.0.1:${await freePort()}`;
  gw = await startGateway(() => ({
    plugin_paths: [join(ROOT, 'test/fixtures/plugins')],
    shared_dicts: { probe: '1m' },
    upstreams: {
      lc: { algorithm: 'least-conn', targets: [a.up.address, b.up.address] },
      wrr: { targets: [{ address: a.up.address, weight: 5 }, { address: b.up.address, weight: 1 }] },
      pf: {
        algorithm: 'least-conn',
        // Idle targets tie, and ties go by weight: the refused one is every request's first try until it is out.
        targets: [{ address: refused, weight: 100 }, b.up.address],
        retries: 1,
        healthcheck: { passive: { max_fails: 2, fail_timeout: '60s' } },
      },
    },
    routes: [
      { name: 'probe', paths: ['= /whoami', '= /crash'], plugins: { 'lifecycle-probe': {} }, return: { status: 404 } },
      { name: 'lc', paths: ['/lc'], upstream: 'lc' },
      { name: 'wrr', paths: ['/wrr'], upstream: 'wrr' },
      { name: 'pf', paths: ['/pf'], upstream: 'pf' },
    ],
  }));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.destroy()));
  await gw?.stop();
  for (const t of [a, b]) for (const res of t?.held ?? []) res.end();
  await Promise.all([a, b].map((t) => t?.up.close()));
});

const text = async (client: Client, path: string): Promise<string> => (await client.request({ path, method: 'GET' })).body.text();

/** `perWorker` keep-alive connections on each of the two live workers, by worker id. */
async function pinned(perWorker: number): Promise<[Client[], Client[]]> {
  const byWorker = new Map<number, Client[]>();
  for (let i = 0; i < 200; i++) {
    const client = new Client(gw.url(''));
    clients.push(client);
    const worker = Number(await text(client, '/whoami'));
    const list = byWorker.get(worker) ?? [];
    byWorker.set(worker, list);
    if (list.length < perWorker) list.push(client);
    const [first, second] = [...byWorker.values()];
    if (first?.length === perWorker && second?.length === perWorker) return [first, second];
  }
  throw new Error(`no ${perWorker} connections on each of two workers: ${[...byWorker].map(([w, l]) => `${w}: ${l.length}`).join(', ')}`);
}

/** Tries of upstream `pf` that failed and went on to another target, as the workers logged them. */
const pfFailures = (): number => gw.stderr().split('\n').filter((l) => l.includes('upstream try failed') && l.includes('"upstream":"pf"')).length;

describe('one balancing state for all workers', () => {
  let crashed: Client;

  test('least-conn: requests one worker holds at a send the other worker\'s new requests to b', async () => {
    const [w1, w2] = await pinned(7);
    crashed = w1[6]!;
    // Six held requests on worker 1: least-conn alternates, three at a and three at b.
    const answers = w1.slice(0, 6).map((c) => text(c, '/lc/hold').catch(() => 'gone'));
    await Promise.all([a.holding(3), b.holding(3)]);
    expect([a.held.length, b.held.length]).toEqual([3, 3]);
    // b answers its three: worker 1 now has three in flight, all at a.
    for (const res of b.held.splice(0)) res.end('b');
    let answered = 0;
    await new Promise<void>((resolve) => answers.forEach((p) => void p.then(() => ++answered === 3 && resolve())));
    // Worker 2 has nothing in flight itself; on its own count a tie would send these to a.
    for (let i = 0; i < 6; i++) expect(await text(w2[i % w2.length]!, '/lc/quick')).toBe('b');
  });

  test('a worker that dies with requests in flight leaves no count behind', async () => {
    const mark = gw.stderr().length;
    expect(await text(crashed, '/crash')).toMatch(/crashing worker/);
    await gw.waitForLog('"msg":"replacement worker listening"', mark);
    // Its three requests at a are gone with it: a and b are both idle again and share the requests (a leaked count would send all to b).
    const served: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(gw.url('/lc/quick'), { reset: true });
      served.push(await res.body.text());
    }
    expect(served.filter((t) => t === 'a').length).toBeGreaterThanOrEqual(2);
  });

  test('weighted round-robin 5:1 holds across workers: one shared position, so every 6 picks in turn from both workers have one b', async () => {
    const [w1, w2] = await pinned(1);
    const picks: string[] = [];
    for (let i = 0; i < 600; i++) picks.push(await text((i % 2 === 0 ? w1 : w2)[0]!, '/wrr/x'));
    expect(picks.filter((p) => p === 'b').length).toBe(100);
    // Each worker keeping its own position would give both workers' b at once: two in one block, none in the next.
    const blocks = Array.from({ length: 100 }, (_, k) => picks.slice(6 * k, 6 * k + 6).filter((p) => p === 'b').length);
    expect(new Set(blocks)).toEqual(new Set([1]));
  });

  test('passive failures: one on each worker take the target out of both, and /status and /metrics say so', async () => {
    const [w1, w2] = await pinned(2);
    expect((await gw.status()).upstreams['pf']).toEqual({ [refused]: 'healthy', [b.up.address]: 'healthy' });
    expect(await text(w1[0]!, '/pf/x')).toBe('b');
    expect(pfFailures()).toBe(1);
    expect(await text(w2[0]!, '/pf/x')).toBe('b');
    expect(pfFailures()).toBe(2);
    // max_fails reached across the workers: neither tries the refused target again.
    for (let i = 0; i < 8; i++) expect(await text([w1, w2][i % 2]![i % 2 === 0 ? 1 : 0]!, '/pf/x')).toBe('b');
    expect(pfFailures()).toBe(2);
    // What the balancer goes by, though no active check runs: out until fail_timeout.
    expect((await gw.status()).upstreams['pf']).toEqual({ [refused]: 'unhealthy', [b.up.address]: 'healthy' });
    const metrics = await (await fetch(`http://127.0.0.1:${gw.statusPort}/metrics`)).text();
    expect(metrics).toContain(`sluice_upstream_target_healthy{upstream="pf",target="${refused}"} 0`);
  });

  test('a reload keeps the state of an unchanged upstream, and starts a changed one afresh', async () => {
    const edit = (change: (conf: { routes: unknown[]; upstreams: Record<string, { targets: unknown[] }> }) => void): void => {
      const conf = parse(readFileSync(gw.confFile, 'utf8'));
      change(conf);
      writeFileSync(gw.confFile, stringify(conf));
    };
    const tenRequests = async (): Promise<void> => {
      for (let i = 0; i < 10; i++) {
        const res = await request(gw.url('/pf/x'), { reset: true });
        expect(await res.body.text()).toBe('b');
      }
    };
    edit((conf) => conf.routes.push({ name: 'extra', paths: ['= /extra'], return: { status: 204 } }));
    await gw.reload();
    await tenRequests();
    expect(pfFailures()).toBe(2); // still out: the new workers got the zone the old ones filled

    edit((conf) => {
      const targets = conf.upstreams['pf']!.targets;
      targets[1] = { address: targets[1], weight: 2 };
    });
    await gw.reload();
    await tenRequests();
    expect(pfFailures()).toBe(4); // a changed target list: a fresh zone, where it takes max_fails failures again
  });
});
