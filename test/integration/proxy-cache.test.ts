import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../helpers/free-port.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * proxy-cache through the real gateway (two workers sharing one zone) and a
 * real upstream that counts what it is asked: what the cache answers is
 * checked against what the upstream saw.
 */

const BIG = 256 * 1024;
let upstream: TestUpstream;
let gw: RunningGateway;
/** A port nobody listens on: the upstream of route `e` refuses. */
let dead = 0;
const seen = new Map<string, number>();
const count = (url: string): number => seen.get(url) ?? 0;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url!;
  seen.set(url, count(url) + 1);
  const n = count(url);
  const path = url.split('?')[0]!;
  if (path.endsWith('/cookie')) res.writeHead(200, { 'set-cookie': 'sid=1', 'content-type': 'text/plain' });
  else if (path.endsWith('/vary')) res.writeHead(200, { vary: 'Accept-Language', 'content-type': 'text/plain' });
  else if (path.endsWith('/big')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(BIG, 1));
    return;
  } else res.writeHead(200, { 'content-type': 'text/plain', etag: `"v${n}"` });
  res.end(`${url} #${n} ${req.headers['accept-language'] ?? ''} ${req.headers['x-consumer-username'] ?? ''}`);
}

const conf = (ttl: string) => (): Record<string, unknown> => ({
  shared_dicts: { sluice_cache: '8m' },
  upstreams: {
    up: { targets: [{ address: upstream.address }] },
    refused: { targets: [{ address: `127.0.0.1:${dead}` }], retries: 0 },
  },
  consumers: [
    { username: 'alice', credentials: { 'key-auth': [{ key: 'alice-key' }], 'basic-auth': [{ password: 'alice-pw' }] } },
    { username: 'bob', credentials: { 'key-auth': [{ key: 'bob-key' }], 'basic-auth': [{ password: 'bob-pw' }] } },
  ],
  plugins: { 'correlation-id': { echo_downstream: true, generator: 'uuid' } },
  routes: [
    { name: 'c', paths: ['/c/'], strip_path: true, upstream: 'up', plugins: { 'proxy-cache': { ttl, max_body_size: '64k' } } },
    { name: 'k', paths: ['/k/'], strip_path: true, upstream: 'up', plugins: { 'key-auth': {}, 'proxy-cache': { ttl } } },
    {
      name: 't', paths: ['/t/'], strip_path: true, upstream: 'up',
      plugins: { 'response-transformer': { append: { headers: ['x-via:sluice'] }, replace: { headers: ['etag:"for-browsers"'] } }, 'proxy-cache': { ttl } },
    },
    // Credentials hidden from the upstream, consumers not isolated: the answer to an Authorization request is not stored.
    {
      name: 'b', paths: ['/b/'], strip_path: true, upstream: 'up',
      plugins: { 'basic-auth': { hide_credentials: true }, 'proxy-cache': { ttl, consumer_isolation: false } },
    },
    // 502 listed as cacheable: the gateway's own 502 must still never be stored.
    { name: 'e', paths: ['/e/'], strip_path: true, upstream: 'refused', plugins: { 'proxy-cache': { ttl, statuses: [200, 502] } } },
  ],
});

beforeAll(async () => {
  upstream = await startUpstream(handler);
  dead = await freePort();
  gw = await startGateway(conf('5m'));
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Headers; body: string }> {
  // A new connection each time: the kernel spreads them over both workers.
  const r = await fetch(gw.url(path), { method, headers: { connection: 'close', ...headers } });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

function plain(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    request(gw.url(path), { method, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject).end();
  });
}

describe('proxy-cache', () => {
  it('stores only what the upstream said: the gateway\'s own 502 is never a HIT, even with 502 in statuses', async () => {
    const first = await get('/e/x');
    expect(first.status).toBe(502);
    const second = await get('/e/x');
    expect(second.status).toBe(502);
    expect(second.headers.get('x-cache-status')).toBe('MISS');
  });

  it('MISS then HIT: the upstream sees one request, the HIT has Age and passes the global plugins\' header filters', async () => {
    const miss = await get('/c/a');
    expect(miss.headers.get('x-cache-status')).toBe('MISS');
    for (let i = 0; i < 6; i++) {
      const hit = await get('/c/a');
      expect(hit.headers.get('x-cache-status')).toBe('HIT');
      expect(hit.body).toBe(miss.body);
      expect(hit.headers.get('age')).toMatch(/^\d+$/);
      expect(hit.headers.get('x-cache-key')).toBe(miss.headers.get('x-cache-key'));
      expect(hit.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(hit.headers.get('x-request-id')).not.toBe(miss.headers.get('x-request-id'));
    }
    expect(count('/a')).toBe(1);
  });

  it('stores what the upstream said, not what header filters made of it: a HIT passes them once', async () => {
    const miss = await plain('GET', '/t/filtered');
    expect(miss.headers['x-cache-status']).toBe('MISS');
    expect(miss.headers['x-via']).toBe('sluice');
    const hit = await plain('GET', '/t/filtered');
    expect(hit.headers['x-cache-status']).toBe('HIT');
    expect(hit.headers['x-via']).toBe('sluice'); // once: Node would join two as "sluice, sluice"
    expect(hit.headers.etag).toBe('"for-browsers"');
    // The entry's validator is the upstream's: a client's If-None-Match with it is a 304 from the cache.
    const revalidate = await plain('GET', '/t/filtered', { 'if-none-match': '"v1"' });
    expect(revalidate.status).toBe(304);
  });

  it('//x and /x are one entry', async () => {
    await get('/c/same');
    const raw = await rawRequest(gw.port, `GET /c//same HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: close\r\n\r\n`);
    expect(raw).toMatch(/x-cache-status: HIT/i);
    expect(count('/same')).toBe(1);
  });

  it('never stores a Set-Cookie response', async () => {
    await get('/c/cookie');
    const again = await get('/c/cookie');
    expect(again.headers.get('x-cache-status')).toBe('MISS');
    expect(count('/cookie')).toBe(2);
  });

  it('two consumers never share an entry', async () => {
    const a = await get('/k/me', { apikey: 'alice-key' });
    const b = await get('/k/me', { apikey: 'bob-key' });
    expect(b.headers.get('x-cache-status')).toBe('MISS');
    expect(a.body).toContain('alice');
    expect(b.body).toContain('bob');
    const a2 = await get('/k/me', { apikey: 'alice-key' });
    const b2 = await get('/k/me', { apikey: 'bob-key' });
    expect([a2.headers.get('x-cache-status'), b2.headers.get('x-cache-status')]).toEqual(['HIT', 'HIT']);
    expect(a2.body).toBe(a.body);
    expect(b2.body).toBe(b.body);
    expect(count('/me')).toBe(2);
  });

  it('an answer to a request with Authorization is not stored, though basic-auth hid the header before the cache looked', async () => {
    const basic = (user: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${user}-pw`).toString('base64')}` });
    const a = await get('/b/private', basic('alice'));
    const b = await get('/b/private', basic('bob'));
    expect([a.status, a.body]).toEqual([200, '/private #1 * alice']);
    expect([b.status, b.headers.get('x-cache-status'), b.body]).toEqual([200, 'MISS', '/private #2 * bob']);
    expect(count('/private')).toBe(2);
  });

  it('the response\'s Vary splits entries by the request header', async () => {
    const en = await get('/c/vary', { 'accept-language': 'en' });
    const fr = await get('/c/vary', { 'accept-language': 'fr' });
    expect(fr.headers.get('x-cache-status')).toBe('MISS');
    const en2 = await get('/c/vary', { 'accept-language': 'en' });
    const fr2 = await get('/c/vary', { 'accept-language': 'fr' });
    expect(en2.headers.get('x-cache-status')).toBe('HIT');
    expect(en2.body).toBe(en.body);
    expect(fr2.body).toBe(fr.body);
    expect(en.body).toContain(' en ');
    expect(fr.body).toContain(' fr ');
    expect(count('/vary')).toBe(2);
  });

  it('HEAD is answered from the GET entry, with its length and no body', async () => {
    const full = await get('/c/head');
    const head = await plain('HEAD', '/c/head');
    expect(head.headers['x-cache-status']).toBe('HIT');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(full.body)));
    expect(head.body).toBe('');
    expect(count('/head')).toBe(1);
  });

  it('a matching If-None-Match gets 304 from the cache', async () => {
    const full = await get('/c/etag');
    const etag = full.headers.get('etag')!;
    // node:http, not fetch: fetch adds Cache-Control: no-cache to a conditional request (which would bypass).
    const r = await plain('GET', '/c/etag', { 'if-none-match': etag });
    expect([r.status, r.headers['x-cache-status'], r.headers['etag'], r.body]).toEqual([304, 'HIT', etag, '']);
    expect(count('/etag')).toBe(1);
  });

  it('a body over max_body_size passes through whole and unstored', async () => {
    const one = await get('/c/big');
    const two = await get('/c/big');
    expect(one.body.length).toBe(BIG);
    expect(two.body.length).toBe(BIG);
    expect(two.headers.get('x-cache-status')).toBe('MISS');
    expect(count('/big')).toBe(2);
  });

  it('a GET with a body is never answered from the cache', async () => {
    await get('/c/with-body');
    expect((await get('/c/with-body')).headers.get('x-cache-status')).toBe('HIT');
    const raw = await rawRequest(gw.port, 'GET /c/with-body HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    expect(raw).toMatch(/\r\nx-cache-status: BYPASS\r\n/i);
    expect(raw).toContain('/with-body #2');
  });

  it('entries survive a reload that leaves the zone and the route alone; a changed ttl does not serve entries stored under the old conf', async () => {
    await get('/c/reload');
    expect((await get('/c/reload')).headers.get('x-cache-status')).toBe('HIT');
    writeFileSync(gw.confFile, stringify({ ...confOf(gw), ...conf('5m')() }));
    await gw.reload();
    for (let i = 0; i < 4; i++) expect((await get('/c/reload')).headers.get('x-cache-status')).toBe('HIT'); // new workers: no local copies, the zone's entry
    expect(count('/reload')).toBe(1);
    writeFileSync(gw.confFile, stringify({ ...confOf(gw), ...conf('10m')() }));
    await gw.reload();
    const after = await get('/c/reload');
    expect(after.headers.get('x-cache-status')).toBe('MISS');
    expect(count('/reload')).toBe(2);
    expect((await get('/c/reload')).headers.get('x-cache-status')).toBe('HIT');
  });
});

/** The parts of the running conf the helper wrote that the test does not change (listen, logs). */
function confOf(g: RunningGateway): Record<string, unknown> {
  return {
    worker_processes: 2,
    error_log: { path: 'stderr', level: 'info' },
    access_log: { path: 'logs/access.log' },
    server: { listen: [`127.0.0.1:${g.port}`] },
    status: { listen: `127.0.0.1:${g.statusPort}` },
  };
}
