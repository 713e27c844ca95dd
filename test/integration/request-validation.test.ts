import { request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

const ITEM = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1 }, p: { enum: ['good'] } } };

/** A schema that walks every element of a large array (patterns, uniqueItems): ~0.2 s of CPU for 10 MB. */
const HEAVY_SCHEMA = {
  type: 'array',
  items: {
    type: 'object', required: ['id', 'name', 'tags'],
    properties: {
      id: { type: 'integer', minimum: 0 },
      name: { type: 'string', pattern: '^(item)+-[0-9]+$' },
      tags: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: '^[a-z]+$' } },
    },
  },
};
const heavyBody = Buffer.from(JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({
  id: i, name: `item-${i}`, tags: ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'],
}))));

let echo: TestUpstream;
let gw: RunningGateway;
/** performance.now() when the upstream got the heavy request, i.e. once validation was over. */
let heavyArrived = 0;

beforeAll(async () => {
  echo = await startUpstream((req, res) => {
    if (req.url === '/heavy') heavyArrived = performance.now();
    echoHandler(req, res);
  });
  gw = await startGateway(() => ({
    // One worker: the fast requests share the reactor of the heavy one.
    worker_processes: 1,
    server: { client_max_body_size: '32m' },
    upstreams: { echo: { targets: [{ address: echo.address }] } },
    routes: [
      { name: 'items', paths: ['/items'], upstream: 'echo', plugins: { 'request-validation': { body_schema: ITEM, verbose_response: true, max_body_size: '1k' } } },
      { name: 'heavy', paths: ['/heavy'], upstream: 'echo', plugins: { 'request-validation': { body_schema: HEAVY_SCHEMA, max_body_size: '32m', offload_threshold: '64k' } } },
      { name: 'fast', paths: ['/fast'], upstream: 'echo' },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
});

const post = async (path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
  const res = await request(gw.url(path), { method: 'POST', body, headers });
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> };
};

describe('request-validation through the gateway', () => {
  test('a valid body reaches the upstream, with a Content-Length of the re-encoded body', async () => {
    const { status, json } = await post('/items', '{ "name": "pen" }');
    expect(status).toBe(200);
    expect(json['body']).toBe('{"name":"pen"}');
    expect((json['headers'] as Record<string, string>)['content-length']).toBe('14');
  });

  test('a chunked body is buffered, validated and sent with a Content-Length', async () => {
    const res = await request(gw.url('/items'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: Readable.from(['{"name":', '"ink"}']),
    });
    const json = await res.body.json() as { body: string; headers: Record<string, string> };
    expect(json.body).toBe('{"name":"ink"}');
    expect(json.headers['content-length']).toBe('14');
    expect(json.headers['transfer-encoding']).toBeUndefined();
  });

  test('an invalid body is a 400 with the errors, and never reaches the upstream', async () => {
    const { status, json } = await post('/items', '{"name":""}');
    expect(status).toBe(400);
    expect(json).toEqual({ code: 'GW_ERR_VALIDATION', message: "request body doesn't conform to schema", errors: [{ path: '/name', message: 'must NOT have fewer than 1 characters' }] });
  });

  test('duplicate keys (CVE-2022-25757): the upstream sees the value that was validated, not the first one', async () => {
    const { status, json } = await post('/items', '{"name":"x","p":"bad","p":"good"}');
    expect(status).toBe(200);
    expect(json['body']).toBe('{"name":"x","p":"good"}');
    expect((await post('/items', '{"name":"x","p":"good","p":"bad"}')).status).toBe(400);
  });

  test('a body over max_body_size is a 413 from the gateway', async () => {
    const res = await request(gw.url('/items'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(2000) }) });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ code: 'GW_ERR_BODY_TOO_LARGE' });
  });

  test('a 10 MB body validated in the offload pool does not block other requests on the same worker', async () => {
    heavyArrived = 0;
    let uploaded = 0;
    const heavy = new Promise<{ status: number; doneAt: number }>((resolve, reject) => {
      const req = httpRequest(gw.url('/heavy'), { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': heavyBody.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, doneAt: performance.now() }));
      });
      req.on('error', reject);
      // Called once the last byte is handed to the kernel: the gateway is about to have the whole body.
      req.end(heavyBody, () => { uploaded = performance.now(); });
    });
    let settled = false;
    void heavy.finally(() => { settled = true; });
    // Fast requests one after another on the same (single) worker until the heavy one is answered.
    const fast: { sent: number; done: number }[] = [];
    while (!settled) {
      const sent = performance.now();
      const res = await request(gw.url('/fast'));
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      fast.push({ sent, done: performance.now() });
    }
    const h = await heavy;
    expect(h.status).toBe(200);
    expect(uploaded).toBeGreaterThan(0);
    expect(heavyArrived).toBeGreaterThan(uploaded);
    // Served entirely while the heavy body was being validated: after it was uploaded, before it went upstream.
    const during = fast.filter((f) => f.sent > uploaded && f.done < heavyArrived);
    expect(during.length).toBeGreaterThanOrEqual(5);
  });
});
