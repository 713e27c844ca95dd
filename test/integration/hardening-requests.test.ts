import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * Issue 13, "Requests": hostile request heads sent as raw bytes (an HTTP
 * client would normalise them), asserting what the upstream RECEIVED. The
 * upstream records every request; paths under /api/slow/ are held until the
 * test releases them, so that later pipelined requests are parsed while the
 * first is still in flight.
 */

interface Seen {
  readonly url: string;
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

const KEY = 'alice-key-1';
let up: TestUpstream;
let gw: RunningGateway;
const seen: Seen[] = [];
const held: ServerResponse[] = [];
const waiters: { url: string; resolve: () => void }[] = [];

function record(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const s: Seen = { url: req.url!, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() };
    seen.push(s);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.url === s.url) waiters.splice(i, 1)[0]!.resolve();
    }
    if (s.url.startsWith('/api/slow/')) {
      held.push(res);
      return;
    }
    const body = JSON.stringify(s);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

/** Resolves once the upstream has received `url`. */
function upstreamGot(url: string): Promise<void> {
  if (seen.some((s) => s.url === url)) return Promise.resolve();
  return new Promise((resolve) => waiters.push({ url, resolve }));
}

function releaseHeld(): void {
  for (const res of held.splice(0)) res.end('slow');
}

const urlsSeen = (): string[] => seen.map((s) => s.url);

beforeAll(async () => {
  up = await startUpstream(record);
  gw = await startGateway(() => ({
    upstreams: { rec: { targets: [{ address: up.address }], retries: 0 } },
    consumers: [{ username: 'alice', attributes: { user_id: '1001', company_id: '42' }, credentials: { 'key-auth': [{ key: KEY }] } }],
    plugins: { 'correlation-id': { header_name: 'X-Request-Id', generator: 'uuid', echo_downstream: true } },
    routes: [
      { name: 'api', paths: ['/api/'], upstream: 'rec' },
      { name: 'admin', paths: ['/admin'], upstream: 'rec', plugins: { 'key-auth': {} } },
      { name: 'preserve', paths: ['/preserve/'], preserve_host: true, upstream: 'rec' },
    ],
  }));
});

afterAll(async () => {
  releaseHeld();
  await gw?.stop();
  await up?.close();
});

/** What the upstream received for `url` (the last such request). */
function received(url: string): Seen {
  const s = seen.findLast((r) => r.url === url);
  if (s === undefined) throw new Error(`the upstream never received ${url}; it got ${JSON.stringify(urlsSeen())}`);
  return s;
}

function header(s: Seen, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.rawHeaders.length; i += 2) if (s.rawHeaders[i]!.toLowerCase() === name) out.push(s.rawHeaders[i + 1]!);
  return out;
}

const names = (s: Seen): string[] => s.rawHeaders.filter((_, i) => i % 2 === 0);

/** The status codes of every response in a raw byte stream, in order. */
const statuses = (out: string): number[] => [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

/** One connection: write bytes, collect everything until the gateway closes it. */
const pipelined = (bytes: string): Promise<string> => rawRequest(gw.port, bytes);

/**
 * One write of [a GET the upstream holds, `middle`, a third GET]: the answers
 * once the held one is released, and whether the third request got through.
 */
async function afterSlow(tag: string, middle: string): Promise<{ out: string; third: boolean }> {
  const slow = `/api/slow/${tag}`;
  const third = `/api/third/${tag}`;
  const done = pipelined(`GET ${slow} HTTP/1.1\r\nHost: a\r\n\r\n${middle}GET ${third} HTTP/1.1\r\nHost: a\r\n\r\n`);
  await upstreamGot(slow);
  releaseHeld();
  const out = await done;
  return { out, third: urlsSeen().includes(third) };
}

/** The access-log lines so far (written asynchronously, within a turn of the worker's loop). */
async function accessLogLine(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 200; i++) {
    const text = readFileSync(join(gw.dir, 'logs/access.log'), 'utf8').trim();
    const line = text === '' ? undefined : text.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find(match);
    if (line !== undefined) return line;
    await new Promise((r) => setImmediate(r));
  }
  return undefined;
}

describe('1. Host is validated', () => {
  test.each([
    'example.com/\\:552', 'a/b', '..example.com', '.example.com', 'a..b', 'a,b', 'a;b', 'user@a', 'a%2eb', 'a b', 'a\\b',
    '[::1', '[::1]x', '[fe80::1%25eth0]', '[v1.x]', '[1.2.3.4]', 'a:', 'a:8x', 'a:99999', 'a:123456', ':80', '.',
  ])('Host %j is 400 and never reaches the upstream', async (host) => {
    const url = `/preserve/host-${encodeURIComponent(host)}`;
    const res = await rawRequest(gw.port, `GET ${url} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(400);
    expect(res).toContain('GW_ERR_BAD_REQUEST');
    expect(urlsSeen()).not.toContain(url);
  });

  test.each(['example.com', 'API.Example.COM:8080', '127.0.0.1', '127.0.0.1:65535', '[::1]', '[::1]:8080', '[2001:db8::ff00:42:8329]', 'example.com.', 'under_score.example'])(
    'Host %j is forwarded as X-Forwarded-Host, and as Host on preserve_host',
    async (host) => {
      const url = `/preserve/ok-${encodeURIComponent(host)}`;
      const res = await rawRequest(gw.port, `GET ${url} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(statusOf(res)).toBe(200);
      const s = received(url);
      expect(header(s, 'host')).toEqual([host]);
      expect(header(s, 'x-forwarded-host')).toEqual([host]);
    },
  );

  test('an HTTP/1.1 request without Host is a 400 the gateway writes and logs; HTTP/1.0 needs none', async () => {
    const res = await rawRequest(gw.port, 'GET /api/no-host HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(res).toContain('GW_ERR_BAD_REQUEST');
    expect(urlsSeen()).not.toContain('/api/no-host');
    expect(await accessLogLine((l) => l['path'] === '/api/no-host')).toMatchObject({ status: 400 });
    const old = await rawRequest(gw.port, 'GET /api/http10 HTTP/1.0\r\n\r\n');
    expect(statusOf(old)).toBe(200);
    expect(header(received('/api/http10'), 'x-forwarded-host')).toEqual(['']);
  });

  test('the authority of an absolute-form target is validated too', async () => {
    const res = await rawRequest(gw.port, 'GET http://..example.com/api/absolute-bad HTTP/1.1\r\nHost: ..example.com\r\nConnection: close\r\n\r\n');
    expect(statusOf(res)).toBe(400);
    expect(urlsSeen()).not.toContain('/api/absolute-bad');
    const ok = await rawRequest(gw.port, 'GET http://api.example.com/api/absolute-ok HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n');
    expect(statusOf(ok)).toBe(200);
    expect(header(received('/api/absolute-ok'), 'x-forwarded-host')).toEqual(['api.example.com']);
  });
});

describe('2. pipelined requests: nothing after a 400 is served, answers stay in request order', () => {
  test.each([
    ['Transfer-Encoding: identity, chunked', 'POST /api/te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
    ['a duplicate Host', 'GET /api/dup HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['an invalid Host', 'GET /api/bad-host HTTP/1.1\r\nHost: a/b\r\n\r\n'],
    ['a bad path', 'GET /api/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an encoded slash', 'GET /api/a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('[slow GET, %s, GET]: 200, 400, close; the third never reaches the upstream', async (label, middle) => {
    const { out, third } = await afterSlow(label.replace(/\W+/g, '-'), middle);
    expect(statuses(out)).toEqual([200, 400]);
    expect(third).toBe(false);
  });

  test('[slow GET, a request with a NUL byte, GET]: the 400 comes after the 200, and is logged', async () => {
    const { out, third } = await afterSlow('nul', 'GET /api/nul HTTP/1.1\r\nHost: a\r\nX-Bad: a\0b\r\n\r\n');
    expect(statuses(out)).toEqual([200, 400]);
    expect(out.indexOf('slow')).toBeLessThan(out.indexOf('HTTP/1.1 400'));
    expect(out).toContain('GW_ERR_BAD_REQUEST');
    expect(out).toMatch(/connection: close/i);
    expect(third).toBe(false);
    expect(urlsSeen()).not.toContain('/api/nul');
    expect(await accessLogLine((l) => l['status'] === 400 && l['method'] === '-')).toMatchObject({ path: '-', route: null });
  });

  test('[slow GET, a header block over the limit, GET]: 200, then 431', async () => {
    const { out, third } = await afterSlow('big', `GET /api/big HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    expect(statuses(out)).toEqual([200, 431]);
    expect(out).toContain('GW_ERR_HEADERS_TOO_LARGE');
    expect(third).toBe(false);
  });

  test('[slow GET, a POST whose chunked body breaks]: the POST is answered 400 in its turn and never sent upstream', async () => {
    const slow = '/api/slow/broken-body';
    const done = pipelined(`GET ${slow} HTTP/1.1\r\nHost: a\r\n\r\nPOST /api/broken HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n`);
    await upstreamGot(slow);
    releaseHeld();
    const out = await done;
    expect(statuses(out)).toEqual([200, 400]);
    expect(urlsSeen()).not.toContain('/api/broken');
  });

  test('a chunked body that breaks while it streams upstream: 400 and a closed connection; the upstream never gets a whole request', async () => {
    const bad = ['zz', '3 ', '0x3', 'ffffffffffffffffff'];
    for (const [i, size] of bad.entries()) {
      const url = `/api/streamed-broken-${i}`;
      const res = await rawRequest(gw.port, `POST ${url} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n${size}\r\nabc\r\n0\r\n\r\n`);
      expect(statusOf(res), size).toBe(400);
      expect(res).toContain('GW_ERR_BAD_REQUEST');
      expect(res).toMatch(/\r\nconnection: close\r\n/i);
      expect(await accessLogLine((l) => l['path'] === url)).toMatchObject({ status: 400 });
    }
    expect(urlsSeen().filter((u) => u.startsWith('/api/streamed-broken-'))).toEqual([]);
  });

  test('requests pipelined behind good ones are each served, in order', async () => {
    const out = await pipelined(
      'GET /api/p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /api/p2 HTTP/1.1\r\nHost: a\r\n\r\nGET /api/p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statuses(out)).toEqual([200, 200, 200]);
    expect([...out.matchAll(/"url":"(\/api\/p\d)"/g)].map((m) => m[1])).toEqual(['/api/p1', '/api/p2', '/api/p3']);
  });
});

describe('3. dot segments with ; parameters', () => {
  test.each([
    '/api/..;/admin', '/api/..;x/admin', '/api/.;x/admin', '/api/.;/admin', '/api/%2e%2e;/admin', '/api/.%2E;x/admin',
    '/api/..%3b/admin', '/api/..%3Bx/admin', '/api/;x/admin', '/api/x/..;',
  ])('%s is 400 and never reaches the upstream', async (path) => {
    const res = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
    expect(statusOf(res)).toBe(400);
    expect(res).toContain('GW_ERR_BAD_PATH');
    expect(urlsSeen().filter((u) => /\/\.{0,2}(;|%3B)/i.test(u))).toEqual([]);
  });

  test('ordinary ; in segments is kept as sent', async () => {
    for (const path of ['/api/a;v=1/b', '/api/file;jsessionid=ABC', '/api/...;x', '/api/a.;b']) {
      const res = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      expect(statusOf(res), path).toBe(200);
      expect(received(path).url).toBe(path);
    }
  });
});

describe('4. Connection tokens remove only the client\'s own headers', () => {
  test('Connection: close, X-Request-Id: the upstream gets the id the client gets back', async () => {
    const res = await rawRequest(gw.port,
      'GET /api/conn-id HTTP/1.1\r\nHost: a\r\nConnection: close, X-Request-Id, X-Forwarded-For, X-Real-IP, X-Forwarded-Host, X-Forwarded-Proto\r\n\r\n');
    expect(statusOf(res)).toBe(200);
    const echoed = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(res)?.[1];
    expect(echoed).toBeDefined();
    const s = received('/api/conn-id');
    expect(header(s, 'x-request-id')).toEqual([echoed]);
    expect(header(s, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(header(s, 'x-real-ip')).toEqual(['127.0.0.1']);
    expect(header(s, 'x-forwarded-host')).toEqual(['a']);
    expect(header(s, 'x-forwarded-proto')).toEqual(['http']);
  });

  test('a client id listed in Connection is the client\'s own: removed, and the plugin makes a new one', async () => {
    const res = await rawRequest(gw.port,
      'GET /api/conn-own HTTP/1.1\r\nHost: a\r\nX-Request-Id: client-id\r\nX-Drop: 1\r\nConnection: close, x-request-id, X-DROP\r\n\r\n');
    expect(statusOf(res)).toBe(200);
    const s = received('/api/conn-own');
    expect(header(s, 'x-drop')).toEqual([]);
    expect(header(s, 'x-request-id')).toHaveLength(1);
    expect(header(s, 'x-request-id')[0]).not.toBe('client-id');
  });

  test('identity headers survive Connection tokens naming them', async () => {
    const res = await rawRequest(gw.port,
      `GET /admin/conn HTTP/1.1\r\nHost: a\r\napikey: ${KEY}\r\nConnection: close, X-Consumer-Username, X-User-Id, X-Company-Id\r\n\r\n`);
    expect(statusOf(res)).toBe(200);
    const s = received('/admin/conn');
    expect(header(s, 'x-consumer-username')).toEqual(['alice']);
    expect(header(s, 'x-user-id')).toEqual(['1001']);
    expect(header(s, 'x-company-id')).toEqual(['42']);
  });

  test('Connection cannot remove the framing: Content-Length listed still frames the body upstream', async () => {
    const res = await rawRequest(gw.port,
      'POST /api/conn-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close, Content-Length, Host\r\n\r\nhello');
    expect(statusOf(res)).toBe(200);
    const s = received('/api/conn-cl');
    expect(s.body).toBe('hello');
    expect(header(s, 'content-length')).toEqual(['5']);
  });
});

describe('5. _ and . spellings of headers never reach the upstream', () => {
  test('forwarded and identity aliases are dropped; the gateway\'s own headers stand alone', async () => {
    const res = await rawRequest(gw.port,
      'GET /api/aliases HTTP/1.1\r\nHost: a\r\nConnection: close\r\n' +
      'X_Forwarded_For: 6.6.6.6\r\nX.Forwarded.For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nx.real.ip: 6.6.6.6\r\n' +
      'X_Forwarded_Host: evil.example\r\nX_Forwarded_Proto: https\r\nX-Forwarded_Proto: https\r\n' +
      'X_User_Id: 1\r\nx.consumer.username: root\r\nX_Request_Id: forged\r\nX_Custom: 1\r\nX-Plain: kept\r\n\r\n');
    expect(statusOf(res)).toBe(200);
    const s = received('/api/aliases');
    expect(names(s).filter((n) => /[_.]/.test(n))).toEqual([]);
    expect(header(s, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(header(s, 'x-real-ip')).toEqual(['127.0.0.1']);
    expect(header(s, 'x-forwarded-host')).toEqual(['a']);
    expect(header(s, 'x-forwarded-proto')).toEqual(['http']);
    expect(header(s, 'x-plain')).toEqual(['kept']);
  });
});
