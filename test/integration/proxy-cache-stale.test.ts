import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * proxy-cache past freshness, through the real gateway (two workers, one
 * zone) and real upstreams that record what they were asked:
 * stale_while_revalidate (STALE, UPDATING, one background refresh),
 * stale_if_error (an upstream 5xx, a refused connection), revalidation with
 * the cache's own validators (REVALIDATED), and the client's preconditions
 * kept from the upstream of a request that fills the cache.
 *
 * Entries live 300 ms (`ttl`, cache_control off): the tests wait that long
 * for an entry to expire, the one wait a clock in another process needs.
 */

const TTL_MS = 300;
let upstream: TestUpstream;
/** Closed by the stale_if_error test: its port then refuses. */
let flaky: TestUpstream;
let gw: RunningGateway;

/** What each upstream request carried, in order. */
const received: { url: string; headers: IncomingHttpHeaders }[] = [];
const asked = (url: string): IncomingHttpHeaders[] => received.filter((r) => r.url === url).map((r) => r.headers);
/** Paths answered 503 from now on. */
const failing = new Set<string>();
/** Paths whose answer waits for `release()`. */
const held = new Map<string, (() => void)[]>();
const release = (path: string): void => {
  for (const go of held.get(path) ?? []) go();
  held.delete(path);
};

/** `#n` counts the upstream's answers per path; `/same` keeps one ETag and answers a matching If-None-Match with 304. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url!;
  received.push({ url, headers: req.headers });
  const n = asked(url).length;
  if (failing.has(url)) {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('down');
    return;
  }
  if (url.endsWith('/same')) {
    if (req.headers['if-none-match'] === '"same"') {
      res.writeHead(304, { etag: '"same"', 'x-refreshed': String(n) });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', etag: '"same"', 'x-refreshed': String(n) });
    res.end(`${url} #${n}`);
    return;
  }
  const answer = (): void => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${url} #${n}`);
  };
  const wait = held.get(url);
  if (wait !== undefined) wait.push(answer);
  else answer();
}

const cache = (extra: Record<string, unknown>): Record<string, unknown> => ({ 'proxy-cache': { ttl: `${TTL_MS}ms`, cache_control: false, ...extra } });

beforeAll(async () => {
  upstream = await startUpstream(handler);
  flaky = await startUpstream(handler);
  gw = await startGateway(() => ({
    shared_dicts: { sluice_cache: '8m' },
    upstreams: {
      up: { targets: [{ address: upstream.address }] },
      flaky: { targets: [{ address: flaky.address }], retries: 0 },
      slow: { targets: [{ address: upstream.address }], read_timeout: '200ms', retries: 0 },
    },
    consumers: [{ username: 'alice', credentials: { 'key-auth': [{ key: 'alice-key' }] } }],
    routes: [
      { name: 'swr', paths: ['/swr/'], upstream: 'up', plugins: cache({ stale_while_revalidate: '1h' }) },
      { name: 'swrk', paths: ['/swrk/'], upstream: 'up', plugins: { 'key-auth': {}, ...cache({ stale_while_revalidate: '1h' }) } },
      { name: 'sie', paths: ['/sie/'], upstream: 'up', plugins: cache({ stale_if_error: '1h' }) },
      { name: 'flaky', paths: ['/flaky/'], upstream: 'flaky', plugins: cache({ stale_if_error: '1h' }) },
      { name: 'slow', paths: ['/slow/'], upstream: 'slow', plugins: cache({ stale_if_error: '1h' }) },
      { name: 'plain', paths: ['/plain/'], upstream: 'up', plugins: cache({}) },
    ],
  }));
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
  await flaky?.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; cache: string | null; age: string | null; body: string }> {
  // A new connection each time: the kernel spreads them over both workers.
  const r = await fetch(gw.url(path), { headers: { connection: 'close', ...headers } });
  return { status: r.status, cache: r.headers.get('x-cache-status'), age: r.headers.get('age'), body: await r.text() };
}

const expire = (): Promise<unknown> => sleep(TTL_MS + 50);

describe('proxy-cache stale_while_revalidate', () => {
  it('answers an expired entry at once while exactly one background request refreshes it', async () => {
    const first = await get('/swr/a');
    expect(first).toMatchObject({ status: 200, cache: 'MISS', body: '/swr/a #1' });
    await expire();
    held.set('/swr/a', []);
    // The refresh is held at the upstream: every answer below comes from the entry without waiting for it.
    const answers = await Promise.all(Array.from({ length: 20 }, () => get('/swr/a')));
    for (const a of answers) expect(a).toMatchObject({ status: 200, body: '/swr/a #1' });
    expect(answers.filter((a) => a.cache === 'STALE')).toHaveLength(1);
    expect(answers.filter((a) => a.cache === 'UPDATING')).toHaveLength(19);
    expect(asked('/swr/a')).toHaveLength(2);
    release('/swr/a');
    // Until the refresh is stored the entry still answers (UPDATING), so this asks the upstream nothing.
    let next = await get('/swr/a');
    for (let i = 0; i < 50 && next.cache !== 'HIT'; i++) next = await get('/swr/a');
    expect(next).toMatchObject({ status: 200, cache: 'HIT', body: '/swr/a #2' });
    expect(asked('/swr/a')).toHaveLength(2);
  });

  it('the background request goes as the client\'s did: its verified consumer, never a forged one', async () => {
    await get('/swrk/me', { apikey: 'alice-key' });
    await expire();
    const stale = await get('/swrk/me', { apikey: 'alice-key', 'x-consumer-username': 'mallory' });
    expect(stale).toMatchObject({ status: 200, cache: 'STALE' });
    await expect.poll(() => asked('/swrk/me').length).toBe(2);
    const refresh = asked('/swrk/me')[1]!;
    expect(refresh['x-consumer-username']).toBe('alice');
    expect(refresh.apikey).toBe('alice-key'); // key-auth's hide_credentials is off by default
  });

  it('a route without it answers an expired entry from the upstream (EXPIRED)', async () => {
    await get('/plain/a');
    await expire();
    expect(await get('/plain/a')).toMatchObject({ status: 200, cache: 'EXPIRED', body: '/plain/a #2' });
  });
});

describe('proxy-cache stale_if_error', () => {
  it('answers an upstream 503 with the expired entry (STALE); without it the 503 goes through', async () => {
    await get('/sie/b');
    await get('/plain/b');
    await expire();
    failing.add('/sie/b');
    failing.add('/plain/b');
    for (let i = 0; i < 4; i++) {
      const stale = await get('/sie/b');
      expect(stale).toMatchObject({ status: 200, cache: 'STALE', body: '/sie/b #1' });
    }
    expect(await get('/plain/b')).toMatchObject({ status: 503, cache: 'EXPIRED', body: 'down' });
    failing.delete('/sie/b');
    expect(await get('/sie/b')).toMatchObject({ status: 200, cache: 'EXPIRED', body: '/sie/b #6' });
    expect(await get('/sie/b')).toMatchObject({ status: 200, cache: 'HIT', body: '/sie/b #6' });
  });

  it('answers a refused connection with the expired entry, and logs the failure', async () => {
    const fresh = await get('/flaky/c');
    expect(fresh).toMatchObject({ status: 200, cache: 'MISS' });
    await expire();
    await flaky.close();
    const stale = await get('/flaky/c');
    expect(stale).toMatchObject({ status: 200, cache: 'STALE', body: fresh.body });
    // A key never stored has nothing to fall back on: the gateway's own 502.
    expect((await get('/flaky/never')).status).toBe(502);
    await gw.waitForLog('"answered_instead":200');
  });

  it('answers an upstream that times out with the expired entry, where it would be a 504', async () => {
    const fresh = await get('/slow/d');
    expect(fresh).toMatchObject({ status: 200, cache: 'MISS' });
    await expire();
    held.set('/slow/d', []); // the upstream now answers after read_timeout (200 ms)
    held.set('/slow/never', []);
    try {
      expect(await get('/slow/d')).toMatchObject({ status: 200, cache: 'STALE', body: fresh.body });
      expect((await get('/slow/never')).status).toBe(504);
    } finally {
      release('/slow/d');
      release('/slow/never');
    }
  });
});

describe('proxy-cache revalidation', () => {
  it('asks the upstream with the entry\'s ETag; a 304 renews the entry (REVALIDATED), then HITs', async () => {
    const first = await get('/plain/same');
    expect(first).toMatchObject({ status: 200, cache: 'MISS', body: '/plain/same #1' });
    await expire();
    const again = await get('/plain/same');
    expect(again).toMatchObject({ status: 200, cache: 'REVALIDATED', body: '/plain/same #1' });
    expect(asked('/plain/same')[1]!['if-none-match']).toBe('"same"');
    const hit = await get('/plain/same');
    expect(hit).toMatchObject({ status: 200, cache: 'HIT', body: '/plain/same #1' });
    expect(asked('/plain/same')).toHaveLength(2);
  });

  it('answers the client\'s own If-None-Match from the revalidated entry with a 304', async () => {
    await get('/plain/x/same');
    await expire();
    const r = await get('/plain/x/same', { 'if-none-match': '"same"' });
    expect(r).toMatchObject({ status: 304, cache: 'REVALIDATED', body: '' });
  });
});

describe('proxy-cache and the client\'s preconditions', () => {
  it('a request that fills the cache goes upstream without them, and the entry serves everyone', async () => {
    const r = await get('/plain/pre', { 'if-none-match': '"old"', 'if-modified-since': 'Mon, 30 Nov 2026 00:00:00 GMT', range: 'bytes=0-1' });
    expect(r).toMatchObject({ status: 200, cache: 'MISS', body: '/plain/pre #1' });
    const sent = asked('/plain/pre')[0]!;
    expect(sent['if-none-match']).toBeUndefined();
    expect(sent['if-modified-since']).toBeUndefined();
    expect(sent.range).toBeUndefined();
    expect(await get('/plain/pre')).toMatchObject({ status: 200, cache: 'HIT', body: '/plain/pre #1' });
  });
});
