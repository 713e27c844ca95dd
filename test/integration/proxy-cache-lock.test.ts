import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * proxy-cache single flight through the real gateway: two workers, one zone,
 * a slow upstream that counts what it is asked. Concurrent misses of one key
 * arrive on fresh connections, so the kernel spreads them over both workers.
 */

const SLOW_MS = 300;
const LOCK_TIMEOUT_MS = 5000;
const N = 50;
let upstream: TestUpstream;
let gw: RunningGateway;
const seen = new Map<string, number>();
const count = (path: string): number => seen.get(path) ?? 0;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url!;
  seen.set(path, count(path) + 1);
  const n = count(path);
  setTimeout(() => {
    // The first fetch of /flaky fails (a dropped connection would be retried by the gateway on a pooled one).
    if (path === '/flaky' && n === 1) return void res.writeHead(503).end('down');
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    if (path === '/cookie') headers['set-cookie'] = `sid=${n}`;
    res.writeHead(200, headers);
    res.end(`${path} #${n}`);
  }, SLOW_MS);
}

beforeAll(async () => {
  upstream = await startUpstream(handler);
  gw = await startGateway(() => ({
    shared_dicts: { sluice_cache: '8m' },
    upstreams: { up: { targets: [{ address: upstream.address }], retries: 0 } },
    routes: [{ name: 'c', paths: ['/c/'], strip_path: true, upstream: 'up', plugins: { 'proxy-cache': { lock_timeout: `${LOCK_TIMEOUT_MS}ms` } } }],
  }));
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

interface Answer { status: number; cache: string | null; body: string; ms: number }

/** N requests at once, each on its own connection; with the time each took. */
async function burst(path: string): Promise<Answer[]> {
  return Promise.all(Array.from({ length: N }, async () => {
    const t = performance.now();
    const r = await fetch(gw.url(path), { headers: { connection: 'close' } });
    const body = await r.text();
    return { status: r.status, cache: r.headers.get('x-cache-status'), body, ms: performance.now() - t };
  }));
}

const tally = (xs: readonly (string | number | null)[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
};

describe('proxy-cache single flight across workers', () => {
  it(`${N} concurrent misses of one key on both workers: one upstream request, ${N} × 200 with its body`, async () => {
    const before = (await gw.status()).workers.map((w) => w.requests);
    const rs = await burst('/c/one');
    const after = (await gw.status()).workers.map((w) => w.requests);
    expect(after.every((n, i) => n > before[i]!)).toBe(true); // both workers answered some
    expect(count('/one')).toBe(1);
    expect(tally(rs.map((r) => r.status))).toEqual({ 200: N });
    expect(new Set(rs.map((r) => r.body))).toEqual(new Set(['/one #1']));
    expect(tally(rs.map((r) => r.cache))).toEqual({ MISS: 1, HIT: N - 1 });
    // The waiters were answered when the entry was stored, not at lock_timeout.
    expect(Math.max(...rs.map((r) => r.ms))).toBeLessThan(SLOW_MS + 1000);
    console.log(`single flight: ${count('/one')} upstream request; latency max ${Math.max(...rs.map((r) => r.ms)).toFixed(0)} ms, upstream ${SLOW_MS} ms`);
  });

  it('a Set-Cookie answer is not stored: the waiters are let go at once and each fetches itself', async () => {
    const rs = await burst('/c/cookie');
    expect(tally(rs.map((r) => r.status))).toEqual({ 200: N });
    expect(tally(rs.map((r) => r.cache))).toEqual({ MISS: N });
    expect(count('/cookie')).toBe(N);
    // Holder (300 ms), then every waiter's own fetch in parallel (300 ms): far below lock_timeout.
    const slowest = Math.max(...rs.map((r) => r.ms));
    expect(slowest).toBeLessThan(3 * SLOW_MS + 1000);
    console.log(`not storable: ${count('/cookie')} upstream requests; latency max ${slowest.toFixed(0)} ms (lock_timeout ${LOCK_TIMEOUT_MS} ms)`);
  });

  it('the fetching request fails upstream: one waiter takes over and stores, the others HIT', async () => {
    const rs = await burst('/c/flaky');
    expect(count('/flaky')).toBe(2);
    expect(tally(rs.map((r) => r.status))).toEqual({ 200: N - 1, 503: 1 });
    expect(new Set(rs.filter((r) => r.status === 200).map((r) => r.body))).toEqual(new Set(['/flaky #2']));
    expect(tally(rs.map((r) => r.cache))).toEqual({ MISS: 2, HIT: N - 2 });
    const slowest = Math.max(...rs.map((r) => r.ms));
    expect(slowest).toBeLessThan(2 * SLOW_MS + 1000);
    console.log(`fetch failed: ${count('/flaky')} upstream requests; latency max ${slowest.toFixed(0)} ms`);
  });
});

describe('a worker that dies holding a lock', () => {
  const LONG_LOCK_MS = 10_000;
  let held: ServerResponse | null = null;
  let arrived: () => void = () => {};
  const firstArrived = new Promise<void>((resolve) => (arrived = resolve));
  let up: TestUpstream;
  let gw2: RunningGateway;
  const clients: Client[] = [];

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      if (held === null) {
        held = res; // the first fetch never ends: its worker dies holding the lock
        arrived();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' }).end(`${req.url!} fetched again`);
    });
    gw2 = await startGateway(() => ({
      plugin_paths: [join(ROOT, 'test/fixtures/plugins')],
      shared_dicts: { sluice_cache: '8m', probe: '1m' },
      upstreams: { up: { targets: [{ address: up.address }], retries: 0 } },
      routes: [
        { name: 'probe', paths: ['= /whoami', '= /crash'], plugins: { 'lifecycle-probe': {} }, return: { status: 404 } },
        { name: 'c', paths: ['/c/'], strip_path: true, upstream: 'up', plugins: { 'proxy-cache': { lock_timeout: `${LONG_LOCK_MS}ms` } } },
      ],
    }));
  });
  afterAll(async () => {
    held?.destroy();
    for (const c of clients) await c.destroy();
    await gw2?.stop();
    await up?.close();
  });

  /** A kept-alive connection that reached worker `want` (or any worker but `not`), and its worker id. */
  async function connection(pick: (worker: string) => boolean): Promise<[Client, string]> {
    for (let i = 0; i < 100; i++) {
      const c = new Client(gw2.url(''));
      clients.push(c);
      const worker = await (await c.request({ path: '/whoami', method: 'GET' })).body.text();
      if (pick(worker)) return [c, worker];
    }
    throw new Error('no connection reached the worker wanted');
  }

  it('is released when the master sees the worker exit: a waiter on the other worker takes over, long before lock_timeout', async () => {
    const [holder, doomed] = await connection(() => true);
    const [crasher] = await connection((w) => w === doomed);
    const [waiter] = await connection((w) => w !== doomed);
    void holder.request({ path: '/c/item', method: 'GET' }).catch(() => {}); // takes the lock, then waits on the upstream
    await firstArrived;
    const waited = (async () => {
      const r = await waiter.request({ path: '/c/item', method: 'GET' });
      return { status: r.statusCode, cache: r.headers['x-cache-status'], body: await r.body.text(), at: performance.now() };
    })();
    expect((await crasher.request({ path: '/crash', method: 'GET' })).statusCode).toBe(202);
    const crashedAt = performance.now();
    const r = await waited;
    expect({ status: r.status, cache: r.cache, body: r.body }).toEqual({ status: 200, cache: 'MISS', body: '/item fetched again' });
    expect(r.at - crashedAt).toBeLessThan(LONG_LOCK_MS / 2);
  });
});
