import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { acceptKey, startWebSocketUpstream } from '../helpers/websocket-upstream.ts';
import type { WebSocketUpstream } from '../helpers/websocket-upstream.ts';

/**
 * WebSocket proxying (issue 16) through the real gateway (two workers) to a
 * real WebSocket upstream, with Node's global WebSocket client: the handshake
 * passes routing and the plugins, then bytes flow both ways; the hardening
 * refusals reach nothing upstream.
 */

const KEY = 'alice-ws-key-9d1e';

let up: WebSocketUpstream;
/** least-conn's two targets (`realtime`). */
let pair: [WebSocketUpstream, WebSocketUpstream];
let gw: RunningGateway;

beforeAll(async () => {
  up = await startWebSocketUpstream();
  pair = [await startWebSocketUpstream(), await startWebSocketUpstream()];
  gw = await startGateway(() => ({
    worker_shutdown_timeout: '1s',
    shared_dicts: { sluice_limits: '1m' },
    upstreams: {
      live: { targets: [{ address: up.address }] },
      quiet: { targets: [{ address: up.address }], read_timeout: '300ms' },
      realtime: { algorithm: 'least-conn', targets: pair.map((u) => u.address) },
    },
    consumers: [{ username: 'alice', attributes: { user_id: '1001' }, credentials: { 'key-auth': [{ key: KEY }] } }],
    plugins: { 'correlation-id': { header_name: 'X-Request-Id', echo_downstream: true } },
    routes: [
      { name: 'live', paths: ['/live'], upstream: 'live', websocket: true, plugins: { 'key-auth': {} } },
      { name: 'open', paths: ['/open'], upstream: 'live', websocket: true },
      { name: 'one', paths: ['/one'], upstream: 'live', websocket: true, plugins: { 'limit-conn': { conn: 1, by: 'route' } } },
      { name: 'quiet', paths: ['/quiet'], upstream: 'quiet', websocket: true },
      { name: 'plain', paths: ['/plain'], upstream: 'live' },
      { name: 'realtime', paths: ['/rt'], upstream: 'realtime', websocket: true },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await up?.close();
  for (const u of pair ?? []) await u.close();
});

const wsUrl = (path: string): string => `ws://127.0.0.1:${gw.port}${path}`;

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('WebSocket failed to open')), { once: true });
  });
}

const closed = (ws: WebSocket): Promise<CloseEvent> => new Promise((resolve) => ws.addEventListener('close', resolve, { once: true }));

function nextMessage(ws: WebSocket): Promise<unknown> {
  return new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
}

const handshake = (path: string, extra = '', head = 'GET', version = '1.1'): string =>
  `${head} ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** Sends a handshake on a raw socket and resolves with the response head and the socket, left open. */
function rawHandshake(request: string): Promise<{ head: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1');
    let got = '';
    socket.setEncoding('latin1');
    const onData = (c: string): void => {
      got += c;
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      resolve({ head: got.slice(0, end), socket });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(request);
  });
}

const header = (head: string, name: string): string | undefined =>
  head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim();

describe('WebSocket proxying', () => {
  test('echo through the gateway with key-auth on the handshake (query key), identity and X-Forwarded-For upstream', async () => {
    const before = up.upgrades.length;
    const ws = new WebSocket(wsUrl(`/live/chat?apikey=${KEY}`));
    await opened(ws);
    const reply = nextMessage(ws);
    ws.send('hello through sluice');
    expect(await reply).toBe('hello through sluice');
    const seen = up.upgrades[before]!;
    expect(seen.url).toBe(`/live/chat?apikey=${KEY}`);
    expect(seen.headers['x-consumer-username']).toBe('alice');
    expect(seen.headers['x-user-id']).toBe('1001');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-request-id']).toBeTruthy();
    const done = closed(ws);
    ws.close(1000, 'bye');
    expect((await done).code).toBe(1000);
  });

  test('refused without a key: 401 on the handshake, the upstream never saw it', async () => {
    const before = { upgrades: up.upgrades.length, requests: up.requests.length };
    const ws = new WebSocket(wsUrl('/live/chat'));
    const event = await closed(ws);
    expect(event.code).toBe(1006);
    const raw = await rawRequest(gw.port, handshake('/live/chat'));
    expect(statusOf(raw)).toBe(401);
    expect(raw).toMatch(/www-authenticate: Key realm="sluice"/i);
    expect(raw).toContain('"code":"GW_ERR_UNAUTHORIZED"');
    expect(up.upgrades.length).toBe(before.upgrades);
    expect(up.requests.length).toBe(before.requests);
  });

  test('the 101 passes the header filters (correlation id), its Accept is the upstream\'s, and the access log has it with status 101 when it closes', async () => {
    const key = randomBytes(16).toString('base64');
    const { head, socket } = await rawHandshake(
      `GET /open/raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Request-Id: ws-trace-1\r\n\r\n`,
    );
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(header(head, 'sec-websocket-accept')).toBe(acceptKey(key));
    expect(header(head, 'x-request-id')).toBe('ws-trace-1');
    expect(header(head, 'upgrade')).toBe('websocket');
    const gone = new Promise((resolve) => socket.once('close', resolve));
    socket.destroy();
    await gone;
    await expect.poll(() => readFileSync(join(gw.dir, 'logs/access.log'), 'utf8')).toMatch(/"path":"\/open\/raw","protocol":"HTTP\/1.1","status":101,"bytes":[1-9][0-9]*,.*"route":"open","request_id":"ws-trace-1"/);
  });

  test('a route without websocket: true does not upgrade: the upstream gets a plain GET without Upgrade', async () => {
    const before = up.upgrades.length;
    const raw = await rawRequest(gw.port, handshake('/plain/x', 'Connection: close\r\n'));
    expect(statusOf(raw)).toBe(200);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { method: string; headers: Record<string, string> };
    expect(body.method).toBe('GET');
    expect(body.headers['upgrade']).toBeUndefined();
    expect(body.headers['connection'] ?? '').not.toMatch(/upgrade/i);
    expect(up.upgrades.length).toBe(before);
  });

  test('Upgrade: h2c on a websocket route is a plain request too', async () => {
    const raw = await rawRequest(gw.port, 'GET /open/h2c HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, close\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
    expect(statusOf(raw)).toBe(200);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).headers['upgrade']).toBeUndefined();
  });

  test('8 MiB messages both ways (backpressure through the tunnel)', async () => {
    const ws = new WebSocket(wsUrl('/open/big'));
    ws.binaryType = 'arraybuffer';
    await opened(ws);
    const big = randomBytes(8 * 1024 * 1024);
    const reply = nextMessage(ws);
    ws.send(big);
    const got = Buffer.from((await reply) as ArrayBuffer);
    expect(got.length).toBe(big.length);
    expect(got.equals(big)).toBe(true);
    const done = closed(ws);
    ws.close();
    await done;
  });

  test('a non-101 answer from the upstream is proxied as a response', async () => {
    const raw = await rawRequest(gw.port, handshake('/open/deny'));
    expect(statusOf(raw)).toBe(403);
    expect(raw).toMatch(/connection: close/i);
    expect(raw.endsWith('\r\n\r\ndenied')).toBe(true);
  });

  test('limit-conn counts the open WebSocket until it closes', async () => {
    const first = new WebSocket(wsUrl('/one'));
    await opened(first);
    const refused = await rawRequest(gw.port, handshake('/one'));
    expect(statusOf(refused)).toBe(503);
    expect(refused).toContain('GW_ERR_CONCURRENCY_LIMITED');
    const done = closed(first);
    first.close();
    await done;
    await expect.poll(async () => {
      const ws = new WebSocket(wsUrl('/one'));
      try {
        await opened(ws);
        return true;
      } catch {
        return false;
      } finally {
        ws.close();
      }
    }).toBe(true);
  });

  test('idle for the upstream read_timeout: both sides closed', async () => {
    const ws = new WebSocket(wsUrl('/quiet'));
    await opened(ws);
    const opensBefore = up.open.size;
    const t0 = performance.now();
    const event = await closed(ws);
    const idle = performance.now() - t0;
    expect(event.code).toBe(1006);
    expect(idle).toBeGreaterThanOrEqual(250);
    expect(idle).toBeLessThan(3000);
    await expect.poll(() => up.open.size).toBeLessThan(opensBefore);
  });

  test('least-conn counts an open WebSocket in flight on its target until it closes', async () => {
    const ws = new WebSocket(wsUrl('/rt/feed'));
    await opened(ws);
    const busy = pair.findIndex((u) => u.upgrades.length === 1);
    expect(busy).not.toBe(-1);
    const served = async (n: number): Promise<number[]> => {
      const before = pair.map((u) => u.requests.length);
      for (let i = 0; i < n; i++) expect((await fetch(gw.url(`/rt/plain-${i}`))).status).toBe(200);
      return pair.map((u, i) => u.requests.length - before[i]!);
    };
    // One request at a time: the WebSocket's target has one in flight, the other none, whichever worker asks (the count is shared).
    const whileOpen = await served(10);
    expect(whileOpen[busy]).toBe(0);
    const done = closed(ws);
    ws.close(1000);
    await done;
    // Closed, both are at 0 again: least-conn breaks the tie by round-robin, and both get requests.
    await expect.poll(async () => (await served(10))[busy]).toBeGreaterThan(0);
  });
});

describe('handshake hardening: the right 4xx and nothing sent upstream', () => {
  const cases: [string, string, number, RegExp][] = [
    ['a POST upgrade', handshake('/open/x', 'Content-Length: 0\r\n', 'POST'), 405, /allow: GET/i],
    ['an HTTP/1.0 upgrade', handshake('/open/x', '', 'GET', '1.0'), 400, /GW_ERR_BAD_HANDSHAKE/],
    ['an upgrade with a body', `${handshake('/open/x', 'Content-Length: 5\r\n')}hello`, 400, /GW_ERR_BAD_HANDSHAKE/],
    ['a chunked upgrade', `${handshake('/open/x', 'Transfer-Encoding: chunked\r\n')}5\r\nhello\r\n0\r\n\r\n`, 400, /GW_ERR_BAD_HANDSHAKE/],
    ['a missing Sec-WebSocket-Key', 'GET /open/x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n', 400, /GW_ERR_BAD_HANDSHAKE/],
    ['a malformed Sec-WebSocket-Key', 'GET /open/x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Version: 13\r\n\r\n', 400, /GW_ERR_BAD_HANDSHAKE/],
    ['version 8', handshake('/open/x').replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'), 426, /sec-websocket-version: 13/i],
  ];
  test.each(cases)('%s', async (_name, request, status, answer) => {
    const before = { upgrades: up.upgrades.length, requests: up.requests.length };
    const raw = await rawRequest(gw.port, request);
    expect(statusOf(raw)).toBe(status);
    expect(raw).toMatch(answer);
    expect(up.upgrades.length).toBe(before.upgrades);
    expect(up.requests.length).toBe(before.requests);
  });

  test('a 101 from the upstream to a request that did not ask for an upgrade is a 502', async () => {
    const raw = await rawRequest(gw.port, 'GET /plain/rogue-101 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(statusOf(raw)).toBe(502);
    expect(raw).not.toContain('101 Switching');
  });
});

describe('reload', () => {
  test('an open WebSocket is kept across a reload until worker_shutdown_timeout, then closed with 1001 and counted', async () => {
    const ws = new WebSocket(wsUrl('/open/kept'));
    await opened(ws);
    const event = closed(ws);
    const mark = gw.stderr().length;
    const t0 = performance.now();
    gw.signal('SIGHUP');
    await gw.waitForLog('"msg":"reload complete', mark);
    // The old worker drains: the WebSocket still carries messages.
    const reply = nextMessage(ws);
    ws.send('still here');
    expect(await reply).toBe('still here');
    const { code } = await event;
    const held = performance.now() - t0;
    expect(code).toBe(1001);
    expect(held).toBeGreaterThanOrEqual(900);
    await gw.waitForLog('"websockets":1,"msg":"worker_shutdown_timeout reached', mark);
    await gw.settled();
    const status = await gw.status();
    expect(status['websockets']).toMatchObject({ active: 0, closed_at_drain: 1 });
    await expect.poll(() => up.open.size).toBe(0);
  });
});
