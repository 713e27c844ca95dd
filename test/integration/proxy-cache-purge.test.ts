import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * proxy-cache purge on the status listener, and its request counters, through
 * the real gateway (two workers, one zone) and an upstream that counts what
 * it is asked: a purged entry is one the upstream is asked for again.
 */

let upstream: TestUpstream;
let gw: RunningGateway;
const seen = new Map<string, number>();
const count = (url: string): number => seen.get(url) ?? 0;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url!;
  seen.set(url, count(url) + 1);
  const headers: Record<string, string> = { 'content-type': 'text/plain' };
  if (url.startsWith('/v/')) headers['vary'] = 'Accept-Language';
  res.writeHead(200, headers);
  res.end(`${url} #${count(url)} ${req.headers['accept-language'] ?? ''} ${req.headers['x-consumer-username'] ?? ''}`);
}

beforeAll(async () => {
  upstream = await startUpstream(handler);
  gw = await startGateway(() => ({
    shared_dicts: { sluice_cache: '8m', other_cache: '2m' },
    upstreams: { up: { targets: [{ address: upstream.address }] } },
    consumers: [
      { username: 'alice', credentials: { 'key-auth': [{ key: 'alice-key' }] } },
      { username: 'bob', credentials: { 'key-auth': [{ key: 'bob-key' }] } },
    ],
    routes: [
      { name: 'k', paths: ['/k/'], upstream: 'up', plugins: { 'key-auth': {}, 'proxy-cache': {} } },
      { name: 'v', paths: ['/v/'], upstream: 'up', plugins: { 'proxy-cache': {} } },
      { name: 'm', paths: ['/m/'], upstream: 'up', plugins: { 'proxy-cache': { dict: 'other_cache' } } },
      { name: 'h', paths: ['/h/'], upstream: 'up', plugins: { 'proxy-cache': {} } },
      { name: 'plain', paths: ['/plain/'], upstream: 'up' },
    ],
  }));
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; cache: string | null; body: string }> {
  // A new connection each time: the kernel spreads them over both workers.
  const r = await fetch(gw.url(path), { method, headers: { connection: 'close', ...headers } });
  return { status: r.status, cache: r.headers.get('x-cache-status'), body: await r.text() };
}

async function purge(query: string, method = 'DELETE'): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`http://127.0.0.1:${gw.statusPort}/cache${query}`, { method });
  return { status: r.status, body: await r.json() };
}

const alice = { apikey: 'alice-key' };
const bob = { apikey: 'bob-key' };

describe('proxy-cache purge on the status listener', () => {
  it('purge by path removes every variant (consumers, query, Vary values) and nothing else; the next request is a MISS', async () => {
    expect((await get('/k/doc', alice)).cache).toBe('MISS');
    expect((await get('/k/doc', bob)).cache).toBe('MISS');
    expect((await get('/k/doc?x=1', alice)).cache).toBe('MISS');
    expect((await get('/k/doc', alice)).cache).toBe('HIT');
    expect((await get('/k/keep', alice)).cache).toBe('MISS');
    expect((await get('/v/doc', { 'accept-language': 'en' })).cache).toBe('MISS');
    expect((await get('/v/doc', { 'accept-language': 'fr' })).cache).toBe('MISS');
    expect((await get('/v/doc', { 'accept-language': 'fr' })).cache).toBe('HIT');

    expect(await purge('?route=k&path=/k/doc')).toEqual({ status: 200, body: { purged: 3 } });
    // Normalised as the gateway normalises request paths: //v/./doc is /v/doc.
    expect(await purge('?route=v&path=//v/./doc')).toEqual({ status: 200, body: { purged: 2 } });
    expect(await purge('?route=k&path=/k/doc')).toEqual({ status: 200, body: { purged: 0 } });

    const a = await get('/k/doc', alice);
    expect([a.cache, a.body]).toEqual(['MISS', '/k/doc #3 * alice']); // alice's and bob's first fetches were #1 and #2
    expect((await get('/k/doc', bob)).cache).toBe('MISS');
    expect(count('/k/doc')).toBe(4);
    expect((await get('/k/doc?x=1', alice)).cache).toBe('MISS');
    expect((await get('/v/doc', { 'accept-language': 'en' })).cache).toBe('MISS');
    expect((await get('/v/doc', { 'accept-language': 'fr' })).cache).toBe('MISS');
    expect(count('/v/doc')).toBe(4);
    // Another path of the route stays.
    expect((await get('/k/keep', alice)).cache).toBe('HIT');
    expect(count('/k/keep')).toBe(1);
  });

  it('every worker stops answering from its own copy of a purged entry at once', async () => {
    const first = await get('/h/hot');
    // Enough HITs, on new connections, that both workers have read the entry and keep a copy of it (local.ts).
    for (let i = 0; i < 12; i++) expect(await get('/h/hot')).toMatchObject({ cache: 'HIT', body: first.body });
    expect(await purge('?route=h&path=/h/hot')).toEqual({ status: 200, body: { purged: 1 } });
    const after = await get('/h/hot');
    expect(after.cache).toBe('MISS');
    expect(after.body).not.toBe(first.body);
    for (let i = 0; i < 12; i++) expect((await get('/h/hot')).body).toBe(after.body);
    expect(count('/h/hot')).toBe(2);
  });

  it('purge by route removes that route\'s entries only', async () => {
    expect((await get('/v/stay', { 'accept-language': 'en' })).cache).toBe('MISS');
    expect((await get('/k/gone', alice)).cache).toBe('MISS');
    // /k/doc (alice, bob, ?x=1), /k/keep and /k/gone.
    expect(await purge('?route=k')).toEqual({ status: 200, body: { purged: 5 } });
    expect((await get('/k/gone', alice)).cache).toBe('MISS');
    expect((await get('/k/keep', alice)).cache).toBe('MISS');
    expect((await get('/v/stay', { 'accept-language': 'en' })).cache).toBe('HIT');
  });

  it('bad purge requests answer the error catalogue\'s JSON', async () => {
    expect(await purge('')).toEqual({ status: 400, body: { code: 'GW_ERR_BAD_REQUEST', message: 'bad request' } });
    expect(await purge('?path=/k/doc')).toMatchObject({ status: 400, body: { code: 'GW_ERR_BAD_REQUEST' } });
    expect(await purge('?route=nope')).toMatchObject({ status: 404, body: { code: 'GW_ERR_NO_CACHE' } });
    expect(await purge('?route=plain')).toMatchObject({ status: 404, body: { code: 'GW_ERR_NO_CACHE' } });
    expect(await purge('?route=k&path=doc')).toMatchObject({ status: 400, body: { code: 'GW_ERR_BAD_PATH' } });
    expect(await purge('?route=k', 'POST')).toMatchObject({ status: 405, body: { code: 'GW_ERR_METHOD_NOT_ALLOWED' } });
  });
});

describe('proxy-cache metrics', () => {
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${gw.statusPort}/metrics`)).text();
  const sample = (text: string, route: string, status: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`sluice_cache_requests_total{route="${route}",status="${status}"} `));
    return line === undefined ? NaN : Number(line.split(' ')[1]);
  };

  it('sluice_cache_requests_total counts a known sequence over both workers, /status shows the hit ratio, a reload takes nothing away', async () => {
    const seq: [string, Record<string, string>, string, string][] = [
      ['GET', {}, '/m/a', 'MISS'],
      ['GET', {}, '/m/a', 'HIT'],
      ['GET', {}, '/m/a', 'HIT'],
      ['GET', {}, '/m/a', 'HIT'],
      ['GET', { 'cache-control': 'no-cache' }, '/m/a', 'BYPASS'],
      ['POST', {}, '/m/a', 'BYPASS'],
      ['GET', {}, '/m/b', 'MISS'],
      ['HEAD', {}, '/m/b', 'HIT'],
    ];
    for (const [method, headers, path, want] of seq) expect((await get(path, headers, method)).cache).toBe(want);
    const want = { HIT: 4, MISS: 2, EXPIRED: 0, STALE: 0, UPDATING: 0, REVALIDATED: 0, BYPASS: 2 };
    // Counted in the log phase, once the response is done: wait for the last one.
    await vi.waitFor(async () => expect(sample(await scrape(), 'm', 'HIT')).toBe(4), { timeout: 2000, interval: 20 });
    const text = await scrape();
    for (const [status, n] of Object.entries(want)) expect(sample(text, 'm', status)).toBe(n);
    expect(text).toContain('# TYPE sluice_cache_requests_total counter');
    const cache = (await gw.status())['cache'] as Record<string, { requests: Record<string, number>; hit_ratio: number | null }>;
    expect(cache['m']).toEqual({ requests: want, hit_ratio: 0.5 });

    await gw.reload();
    const after = await scrape();
    for (const [status, n] of Object.entries(want)) expect(sample(after, 'm', status)).toBe(n);
  });
});
