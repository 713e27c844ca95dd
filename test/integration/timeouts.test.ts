import { connect } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { statusOf } from '../helpers/raw-http.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * client_header_timeout and client_body_timeout as nginx means them: a client
 * that stops sending its headers, or goes quiet in the middle of its body, gets
 * a 408 and its connection closed; the upstream never sees a half request.
 * keepalive_timeout closes a connection idle between requests.
 */
let gw: RunningGateway;
let up: TestUpstream;
let upstreamHits = 0;

beforeAll(async () => {
  up = await startUpstream((req, res) => {
    upstreamHits++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const address = up.address;
  gw = await startGateway(() => ({
    server: { client_header_timeout: '300ms', client_body_timeout: '300ms', keepalive_timeout: '1s' },
    upstreams: { up: { targets: [{ address }] } },
    routes: [{ name: 'up', paths: ['/'], upstream: 'up' }],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await up?.close();
});

/** Writes `parts` (and nothing more), then collects what the server says until it closes. */
function stall(port: number, ...parts: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => { out += c; });
    socket.on('close', () => resolve(out));
    socket.on('error', (err) => (out === '' ? reject(err) : resolve(out)));
    for (const p of parts) socket.write(p);
  });
}

test('headers that stop arriving get 408 and a closed connection', async () => {
  const res = await stall(gw.port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
  expect(statusOf(res)).toBe(408);
});

test('a body that goes quiet gets 408; the idle timer restarts on every read', async () => {
  const hitsBefore = upstreamHits;
  const res = await stall(gw.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n', 'abc');
  expect(statusOf(res)).toBe(408);
  expect(res).toContain('GW_ERR_CLIENT_TIMEOUT');
  // The upstream may have been asked (the body streams) but never got a complete request.
  expect(upstreamHits - hitsBefore).toBeLessThanOrEqual(1);
});

test('a slow but steady body is not cut: each read resets the idle timer', async () => {
  const socket = connect(gw.port, '127.0.0.1');
  let out = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => { out += c; });
  socket.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n');
  // Five writes 100 ms apart: 500 ms in all, past the 300 ms timeout, each gap well under it.
  for (const chunk of ['ab', 'cd', 'ef', 'gh', 'ij']) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.write(chunk);
  }
  await new Promise((resolve) => socket.on('close', resolve));
  expect(statusOf(out)).toBe(200);
  expect(out.endsWith('ok')).toBe(true);
});

test('keepalive_timeout: an idle keep-alive connection is closed, after the advertised timeout and at most a second more', async () => {
  const socket = connect(gw.port, '127.0.0.1');
  let head = '';
  socket.setEncoding('latin1');
  const answered = new Promise<number>((resolve) => socket.on('data', (c: string) => {
    head += c;
    if (head.includes('\r\n\r\nok')) resolve(performance.now());
  }));
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now())));
  socket.write('GET /idle HTTP/1.1\r\nHost: a\r\n\r\n');
  const at = await answered;
  expect(head).toMatch(/\r\nkeep-alive: timeout=1\r\n/i);
  // Node keeps the socket keepAliveTimeoutBuffer (1 s) past what it advertises, so a client reusing it just in time is never cut.
  const idle = (await closed) - at;
  expect(idle).toBeGreaterThanOrEqual(950);
  expect(idle).toBeLessThan(3500);
});
