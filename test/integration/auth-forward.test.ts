import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { freePort } from '../helpers/free-port.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * forward-auth through the real gateway against a real auth service on
 * 127.0.0.1: allow, deny with a body, down, slow, and a decision cached in the
 * shared dict and reused by every worker.
 */

const TOKEN = 'forward-auth-token-9c1d';
let echo: TestUpstream;
let auth: TestUpstream;
let gw: RunningGateway;
const calls: { url: string; headers: IncomingMessage['headers'] }[] = [];
/** Slow requests are held here and answered at the end, so no test sleeps. */
const held: ServerResponse[] = [];

function authHandler(req: IncomingMessage, res: ServerResponse): void {
  calls.push({ url: req.url!, headers: req.headers });
  const token = req.headers['authorization'];
  if (req.url === '/slow') {
    held.push(res);
    return;
  }
  // The service decides per request too: nobody may reach /cached/admin, and /cached/flaky fails once.
  const uri = String(req.headers['x-forwarded-uri']);
  if (uri.startsWith('/cached/admin')) {
    res.writeHead(403).end('admins only');
    return;
  }
  if (uri === '/cached/flaky' && calls.filter((c) => c.headers['x-forwarded-uri'] === uri).length === 1) {
    res.writeHead(500).end('auth service hiccup');
    return;
  }
  if (token === `Bearer ${TOKEN}` || token === 'Bearer cached-token') {
    res.writeHead(200, { 'x-user-id': 'u-9', 'x-company-id': 'c-3', 'x-tenant-plan': 'gold', 'x-internal': 'not-copied' });
    res.end();
    return;
  }
  res.writeHead(403, { 'content-type': 'application/json', 'x-auth-reason': 'bad-token', 'x-internal': 'not-copied' });
  res.end(JSON.stringify({ error: 'forbidden by auth service' }));
}

const upstreamHeaders = ['X-User-Id', 'X-Company-Id', 'X-Tenant-Plan'];

beforeAll(async () => {
  echo = await startUpstream(echoHandler);
  auth = await startUpstream(authHandler);
  const downPort = await freePort();
  gw = await startGateway(() => ({
    shared_dicts: { sluice_cache: '1m' },
    upstreams: { echo: { targets: [{ address: echo.address }] } },
    routes: [
      {
        name: 'fa', paths: ['/fa'], upstream: 'echo', plugins: {
          'forward-auth': { uri: `http://${auth.address}/check`, request_headers: ['Authorization'], upstream_headers: upstreamHeaders, client_headers: ['X-Auth-Reason'] },
        },
      },
      {
        name: 'cached', paths: ['/cached'], upstream: 'echo', plugins: {
          'forward-auth': { uri: `http://${auth.address}/cached`, request_headers: ['Authorization'], upstream_headers: upstreamHeaders, cache_ttl: '1m' },
        },
      },
      { name: 'down', paths: ['/down'], upstream: 'echo', plugins: { 'forward-auth': { uri: `http://127.0.0.1:${downPort}/check`, request_headers: ['Authorization'] } } },
      { name: 'slow', paths: ['/slow'], upstream: 'echo', plugins: { 'forward-auth': { uri: `http://${auth.address}/slow`, timeout: '200ms' } } },
      { name: 'slow-502', paths: ['/slow-custom'], upstream: 'echo', plugins: { 'forward-auth': { uri: `http://${auth.address}/slow`, timeout: '200ms', status_on_timeout: 502 } } },
    ],
  }));
});

afterAll(async () => {
  for (const res of held) res.end();
  await gw?.stop();
  await echo?.close();
  await auth?.close();
});

async function get(path: string, headers: Record<string, string> = {}) {
  // A fresh connection per request, so requests spread over both workers.
  const res = await request(gw.url(path), { headers: { connection: 'close', ...headers } });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body, upstream: res.statusCode === 200 ? (JSON.parse(body) as { headers: Record<string, string> }).headers : {} };
}

describe('forward-auth', () => {
  test('2xx passes: method, URI, client address and request_headers sent; upstream_headers copied upstream and into the identity', async () => {
    calls.length = 0;
    const r = await get('/fa/items?x=1', { authorization: `Bearer ${TOKEN}`, 'x-user-id': 'spoofed', 'x-tenant-plan': 'spoofed', cookie: 'session=s3cret' });
    expect(r.status).toBe(200);
    expect(calls).toHaveLength(1);
    const sent = calls[0]!;
    expect(sent.url).toBe('/check');
    expect(sent.headers).toMatchObject({ 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/fa/items?x=1', 'x-forwarded-for': '127.0.0.1', authorization: `Bearer ${TOKEN}` });
    expect(sent.headers['cookie']).toBeUndefined(); // only the configured headers reach the auth service
    expect(r.upstream).toMatchObject({ 'x-user-id': 'u-9', 'x-company-id': 'c-3', 'x-tenant-plan': 'gold' });
    expect(r.upstream['x-internal']).toBeUndefined();
    expect(r.upstream['x-consumer-username']).toBeUndefined();
  });

  test('non-2xx goes back to the client with the auth service\'s status, body and client_headers', async () => {
    const r = await get('/fa/items', { authorization: 'Bearer wrong' });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ error: 'forbidden by auth service' });
    expect(r.headers['x-auth-reason']).toBe('bad-token');
    expect(r.headers['x-internal']).toBeUndefined();
  });

  test('an auth service that is down: 503, never a pass', async () => {
    const r = await get('/down', { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_AUTH_UNAVAILABLE', message: 'authentication service unavailable' });
  });

  test('a slow auth service: 504 (or the configured status), never a pass', async () => {
    const r = await get('/slow');
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_AUTH_TIMEOUT', message: 'authentication service timed out' });
    expect((await get('/slow-custom')).status).toBe(502);
  });

  test('a decision is cached in the shared dict and reused by every worker', async () => {
    calls.length = 0;
    const first = await get('/cached', { authorization: 'Bearer cached-token' });
    expect(first.status).toBe(200);
    // 16 fresh connections land on both workers (SO_REUSEPORT); all reuse the one decision.
    const rest = await Promise.all(Array.from({ length: 16 }, () => get('/cached', { authorization: 'Bearer cached-token' })));
    for (const r of rest) expect(r.upstream).toMatchObject({ 'x-user-id': 'u-9' });
    expect(calls.filter((c) => c.url === '/cached')).toHaveLength(1);
    // A refusal is cached too, under its own credential.
    expect((await get('/cached', { authorization: 'Bearer other' })).status).toBe(403);
    expect((await get('/cached', { authorization: 'Bearer other' })).status).toBe(403);
    expect(calls.filter((c) => c.url === '/cached')).toHaveLength(2);
  });

  test('a cached allow is for that request: another path or method asks again, and is refused if the service says so', async () => {
    calls.length = 0;
    const token = { authorization: 'Bearer cached-token' };
    expect((await get('/cached/public', token)).status).toBe(200);
    expect((await get('/cached/admin', token)).status).toBe(403);
    const del = await request(gw.url('/cached/public'), { method: 'DELETE', headers: { connection: 'close', ...token } });
    await del.body.dump();
    expect(del.statusCode).toBe(200);
    expect(calls.map((c) => `${String(c.headers['x-forwarded-method'])} ${String(c.headers['x-forwarded-uri'])}`)).toEqual([
      'GET /cached/public', 'GET /cached/admin', 'DELETE /cached/public',
    ]);
  });

  test('an auth service failure (5xx) is not cached: the next request asks again', async () => {
    calls.length = 0;
    const token = { authorization: 'Bearer cached-token' };
    expect((await get('/cached/flaky', token)).status).toBe(500);
    expect((await get('/cached/flaky', token)).status).toBe(200);
    expect((await get('/cached/flaky', token)).status).toBe(200);
    expect(calls).toHaveLength(2);
  });

  test('no credential in the gateway\'s log', () => {
    expect(gw.stderr()).not.toContain(TOKEN);
  });
});
