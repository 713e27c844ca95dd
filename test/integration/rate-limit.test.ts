import { request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { fresh } from '../fixtures/ratelimit/http.ts';
import type { Reply } from '../fixtures/ratelimit/http.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * rate-limiting, limit-req and limit-conn through the real master and its two
 * workers: exact counts under concurrency, counters surviving a SIGHUP, and
 * limit-conn released when a client goes away.
 */

const who = (consumer: string, user?: string, company?: string): Record<string, string> => ({
  'x-test-consumer': consumer, ...(user === undefined ? {} : { 'x-test-user': user }), ...(company === undefined ? {} : { 'x-test-company': company }),
});

const passes = async (n: number, send: (i: number) => Promise<Reply>): Promise<number> => {
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => send(i)));
  for (const r of replies) expect([200, 429]).toContain(r.status);
  return replies.filter((r) => r.status === 200).length;
};

let gw: RunningGateway;
let slow: TestUpstream;
/** Requests the slow upstream holds, answered when the test says so. */
const held: ServerResponse[] = [];
const arrivals: (() => void)[] = [];

beforeAll(async () => {
  slow = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    held.push(res);
    arrivals.shift()?.();
  });
  const ok = { status: 200, body: 'ok\n' };
  const rl = (limits: object[], extra: object = {}) => ({ 'identity-from-headers': {}, 'rate-limiting': { limits, ...extra } });
  gw = await startGateway(() => ({
    plugin_paths: [join(ROOT, 'test/fixtures/ratelimit-plugins')],
    shared_dicts: { sluice_limits: '2m' },
    upstreams: { slow: { targets: [{ address: slow.address }] } },
    routes: [
      { name: 'by-consumer', paths: ['= /consumer'], return: ok, plugins: rl([{ by: 'consumer', hour: 20 }]) },
      { name: 'by-user', paths: ['= /user'], return: ok, plugins: rl([{ by: 'user_id', hour: 15 }]) },
      { name: 'by-company', paths: ['= /company'], return: ok, plugins: rl([{ by: 'company_id', hour: 25 }]) },
      { name: 'by-ip', paths: ['= /ip'], return: ok, plugins: rl([{ by: 'ip', day: 10 }]) },
      { name: 'by-header', paths: ['= /header'], return: ok, plugins: rl([{ by: 'header:X-Api-Key', day: 12 }]) },
      { name: 'combined', paths: ['= /combined'], return: ok, plugins: rl([{ by: ['company_id', 'user_id'], hour: 7 }]) },
      { name: 'two-limits', paths: ['= /two'], return: ok, plugins: rl([{ by: 'company_id', hour: 30 }, { by: 'user_id', hour: 12 }]) },
      { name: 'fixed', paths: ['= /fixed'], return: ok, plugins: rl([{ by: 'consumer', day: 9 }], { algorithm: 'fixed-window' }) },
      { name: 'reload', paths: ['= /reload'], return: ok, plugins: rl([{ by: 'consumer', day: 6 }]) },
      { name: 'req', paths: ['= /req'], return: ok, plugins: { 'limit-req': { rate: 0.1, burst: 4, nodelay: true } } },
      { name: 'conn', paths: ['/conn'], upstream: 'slow', plugins: { 'limit-conn': { conn: 1, default_conn_delay: 0 } } },
    ],
  }));
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  for (const res of held) res.destroy();
  await slow?.close();
});

describe('exact across workers: N concurrent requests on fresh connections, limit L, exactly L pass', () => {
  test('per consumer, user, company, ip, header, and a fixed window', async () => {
    const [consumer, user, company, ip, header, fixed] = await Promise.all([
      passes(60, () => fresh(gw.port, '/consumer', who('alice'))),
      passes(60, () => fresh(gw.port, '/user', who('any', 'u1'))),
      passes(60, () => fresh(gw.port, '/company', who('any', undefined, 'acme'))),
      passes(60, () => fresh(gw.port, '/ip')),
      passes(60, () => fresh(gw.port, '/header', { 'x-api-key': 'k' })),
      passes(60, () => fresh(gw.port, '/fixed', who('bob'))),
    ]);
    expect({ consumer, user, company, ip, header, fixed }).toEqual({ consumer: 20, user: 15, company: 25, ip: 10, header: 12, fixed: 9 });
    const status = await gw.status();
    // Both workers took part (the kernel spreads fresh connections over SO_REUSEPORT listeners).
    expect(status.workers.filter((w) => w.requests > 0).length).toBe(2);
  });

  test('combined key [company_id, user_id]: each pair its own exact limit', async () => {
    const pairs = [['acme', 'u1'], ['acme', 'u2'], ['globex', 'u1']] as const;
    const counts = await Promise.all(pairs.map(([c, u]) => passes(30, () => fresh(gw.port, '/combined', who('x', u, c)))));
    expect(counts).toEqual([7, 7, 7]);
  });

  test('a company quota and a per-user limit at once: refused requests use no quota', async () => {
    // 4 users of one company, 20 requests each: each user stops at 12, the company at 30 in total.
    const perUser = await Promise.all(['a', 'b', 'c', 'd'].map((u) => passes(20, () => fresh(gw.port, '/two', who('x', u, 'initech')))));
    expect(perUser.reduce((a, b) => a + b, 0)).toBe(30);
    for (const n of perUser) expect(n).toBeLessThanOrEqual(12);
  });

  test('limit-req nodelay: 1 + burst pass at once, the rest is refused (503)', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => fresh(gw.port, '/req')));
    expect(replies.filter((r) => r.status === 200).length).toBe(5);
    expect(replies.filter((r) => r.status === 503).length).toBe(15);
  });
});

describe('headers', () => {
  test('RateLimit-*, X-RateLimit-*-Hour, Retry-After on 429', async () => {
    const first = await fresh(gw.port, '/user', who('h', 'hdr-user'));
    expect(first.headers['ratelimit-limit']).toBe('15');
    expect(first.headers['ratelimit-remaining']).toBe('14');
    expect(first.headers['x-ratelimit-limit-hour']).toBe('15');
    expect(first.headers['x-ratelimit-remaining-hour']).toBe('14');
    const reset = Number(first.headers['ratelimit-reset']);
    expect(reset).toBeGreaterThanOrEqual(1);
    expect(reset).toBeLessThanOrEqual(3600);
    await passes(14, () => fresh(gw.port, '/user', who('h', 'hdr-user')));
    const no = await fresh(gw.port, '/user', who('h', 'hdr-user'));
    expect(no.status).toBe(429);
    expect(no.headers['ratelimit-remaining']).toBe('0');
    const retry = Number(no.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(7200);
  });
});

describe('counters survive a reload (SIGHUP)', () => {
  test('4 of 6 used before the reload, exactly 2 pass after', async () => {
    expect(await passes(4, () => fresh(gw.port, '/reload', who('carol')))).toBe(4);
    const old = (await gw.status()).workers.map((w) => w.id);
    gw.signal('SIGHUP');
    await gw.waitForLog('"msg":"reload complete');
    // New connections go to the new workers only once the old ones have closed their listeners.
    for (const id of old) await gw.waitForLog(`"worker":${id},"generation":1,"code":0,"msg":"worker exited"`);
    expect(await passes(10, () => fresh(gw.port, '/reload', who('carol')))).toBe(2);
  });
});

describe('limit-conn', () => {
  test('a client that goes away releases its slot; the slot is held while its request is in flight', async () => {
    const arrived = new Promise<void>((resolve) => arrivals.push(resolve));
    const aborted = httpRequest({ host: '127.0.0.1', port: gw.port, path: '/conn/a', agent: false });
    aborted.on('error', () => {});
    aborted.end();
    await arrived;
    // In flight: a second request from the same client is refused.
    expect((await fresh(gw.port, '/conn/b')).status).toBe(503);
    aborted.destroy();
    // The gateway runs log (and releases) when it sees the close; wait for that, bounded.
    let status = 503;
    for (let i = 0; i < 100 && status === 503; i++) {
      const next = new Promise<void>((resolve) => arrivals.push(resolve));
      const probe = httpRequest({ host: '127.0.0.1', port: gw.port, path: '/conn/c', agent: false });
      const reply = new Promise<number>((resolve) => probe.on('response', (r) => { r.resume(); resolve(r.statusCode!); }));
      probe.on('error', () => {});
      probe.end();
      status = await Promise.race([reply, next.then(() => 200)]);
      if (status === 200) {
        held.pop()!.end('done');
        await reply;
      } else arrivals.pop();
    }
    expect(status).toBe(200);
  });
});
