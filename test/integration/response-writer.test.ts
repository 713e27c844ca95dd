import { createSocket } from 'node:dgram';
import type { Socket as DgramSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { freePort } from '../helpers/free-port.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * Every kind of response passes the one response writer: the global
 * correlation-id and each route's CORS headers are on proxied answers,
 * upstream failures, gateway errors, `return:`, static files and plugin exits
 * alike, and the global syslog sees requests no route matched.
 */

const ORIGIN = 'https://app.example';
const ID = /^[\x21-\x7e]+#\d+$/; // correlation-id's uuid#counter

let echo: TestUpstream;
let slow: TestUpstream;
let gw: RunningGateway;
let udp: DgramSocket;
const syslog: string[] = [];

beforeAll(async () => {
  echo = await startUpstream(echoHandler);
  slow = await startUpstream((_req, res) => void setTimeout(() => res.end('late'), 2_000).unref());
  udp = createSocket('udp4');
  udp.on('message', (m) => void syslog.push(m.toString()));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const dead = await freePort();
  const cors = { cors: { origins: [ORIGIN] } };
  gw = await startGateway(({ dir }) => {
    mkdirSync(join(dir, 'www'));
    writeFileSync(join(dir, 'www', 'a.txt'), 'file a\n');
    mkdirSync(join(dir, 'www', 'sub'));
    writeFileSync(join(dir, 'www', 'sub', 'index.html'), '<p>sub</p>\n');
    return {
      worker_processes: 1,
      shared_dicts: { sluice_limits: '1m' },
      server: { client_max_body_size: '1k', client_body_timeout: '300ms' },
      plugins: {
        'correlation-id': { echo_downstream: true },
        syslog: { server: `udp://127.0.0.1:${(udp.address() as AddressInfo).port}`, flush_interval: '20ms' },
      },
      consumers: [{ username: 'alice', credentials: { 'key-auth': [{ key: 'alice-key' }] } }],
      upstreams: {
        echo: { targets: [{ address: echo.address }] },
        refused: { targets: [{ address: `127.0.0.1:${dead}` }], retries: 0 },
        down: {
          targets: [{ address: `127.0.0.1:${dead}` }],
          healthcheck: { active: { path: '/', interval: '100ms', timeout: '100ms', healthy: 1, unhealthy: 1 } },
        },
        slow: { targets: [{ address: slow.address }], read_timeout: '200ms', retries: 0 },
      },
      routes: [
        { name: 'ok', paths: ['/ok'], upstream: 'echo', plugins: cors },
        { name: 'refused', paths: ['/refused'], upstream: 'refused', plugins: cors },
        { name: 'down', paths: ['/down'], upstream: 'down', plugins: cors },
        { name: 'slow', paths: ['/slow'], upstream: 'slow', plugins: cors },
        { name: 'ret', paths: ['= /ret'], return: { status: 200, body: 'ret\n' }, plugins: cors },
        { name: 'files', paths: ['/files/'], strip_path: true, root: 'www', plugins: cors },
        { name: 'auth', paths: ['/auth'], upstream: 'echo', plugins: { ...cors, 'key-auth': {} } },
        { name: 'limited', paths: ['/limited'], upstream: 'echo', plugins: { ...cors, 'rate-limiting': { limits: [{ by: 'ip', minute: 1 }] } } },
      ],
    };
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
  await slow?.close();
  udp?.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

async function send(path: string, init: { method?: string; body?: string } = {}): Promise<Answer> {
  const r = await request(gw.url(path), { method: (init.method ?? 'GET') as 'GET', headers: { origin: ORIGIN }, body: init.body ?? null });
  await r.body.dump();
  return { status: r.statusCode, headers: r.headers };
}

/** The response head of a raw exchange, parsed into lower-case headers. */
function head(raw: string): Answer {
  const lines = raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  return { status: statusOf(raw), headers };
}

function expectFiltered(a: Answer, status: number): void {
  expect(a.status).toBe(status);
  expect(a.headers['x-request-id']).toMatch(ID);
  expect(a.headers['access-control-allow-origin']).toBe(ORIGIN);
}

describe('every response kind passes the header filters', () => {
  test('proxied 200', async () => {
    expectFiltered(await send('/ok'), 200);
  });
  test('upstream refused: 502', async () => {
    expectFiltered(await send('/refused'), 502);
  });
  test('no healthy target: 503', async () => {
    // The master's prober marks the target down within a few intervals.
    let a = await send('/down');
    for (let i = 0; i < 100 && a.status !== 503; i++) {
      await new Promise((r) => setTimeout(r, 50));
      a = await send('/down');
    }
    expectFiltered(a, 503);
  });
  test('upstream timeout: 504', async () => {
    expectFiltered(await send('/slow'), 504);
  });
  test('return: route', async () => {
    expectFiltered(await send('/ret'), 200);
  });
  test('static file, static 404 and 405', async () => {
    expectFiltered(await send('/files/a.txt'), 200);
    expectFiltered(await send('/files/missing.txt'), 404);
    expectFiltered(await send('/files/a.txt', { method: 'POST', body: 'x' }), 405);
  });
  test('static directory redirect (301)', async () => {
    expectFiltered(await send('/files/sub'), 301);
  });
  test('plugin exits: 401 and 429', async () => {
    expectFiltered(await send('/auth'), 401);
    expect((await send('/limited')).status).toBe(200);
    expectFiltered(await send('/limited'), 429);
  });
  test('body too large: 413', async () => {
    expectFiltered(await send('/ok', { method: 'POST', body: 'x'.repeat(2048) }), 413);
  });
  test('body that goes quiet: 408', async () => {
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(gw.port, '127.0.0.1');
      let data = '';
      sock.setEncoding('utf8');
      sock.on('data', (c: string) => (data += c));
      sock.on('close', () => resolve(data));
      sock.on('error', reject);
      sock.write(`POST /ok HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}\r\nContent-Length: 10\r\n\r\nab`);
    });
    expectFiltered(head(raw), 408);
  });
  test('no route: 404 with the global correlation id (no route, so no route CORS)', async () => {
    const a = await send('/nowhere');
    expect(a.status).toBe(404);
    expect(a.headers['x-request-id']).toMatch(ID);
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
  });
  test('a request refused before routing (bad path) still gets the correlation id', async () => {
    const raw = await rawRequest(gw.port, 'GET /a/%2e%2e/%2e%2e/etc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const a = head(raw);
    expect(a.status).toBe(400);
    expect(a.headers['x-request-id']).toMatch(ID);
  });

  test('CONNECT is a 405 through the writer (JSON body, correlation id), not bytes written past it', async () => {
    const raw = await rawRequest(gw.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const a = head(raw);
    expect(a.status).toBe(405);
    expect(a.headers['x-request-id']).toMatch(ID);
    expect(raw).toContain('"code":"GW_ERR_METHOD_NOT_ALLOWED"');
  });
});

describe('the global log phase sees every request', () => {
  test('a global syslog gets a line for a no-route 404, with the correlation id it was answered with', async () => {
    const a = await send('/no-such-route-for-syslog');
    const id = a.headers['x-request-id'] as string;
    const deadline = Date.now() + 5_000;
    let line: string | undefined;
    while (line === undefined && Date.now() < deadline) {
      line = syslog.find((l) => l.includes('/no-such-route-for-syslog'));
      if (line === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(line).toBeDefined();
    expect(line).toContain('"status":404');
    expect(line).toContain(id);
  });
});
