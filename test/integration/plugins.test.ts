import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

const PDK = join(ROOT, 'src/plugins/pdk/index.ts');

/** Custom plugins written into the test's plugin_paths directory, importing the pdk by path. */
const CUSTOM: Record<string, string> = {
  // Tags the request with its position, so the order of global and route plugins shows upstream.
  'order-tag': `import { definePlugin, s, Type } from ${JSON.stringify(PDK)};
export const orderTag = definePlugin({
  name: 'order-tag', version: '1.0.0', priority: 1,
  schema: s.object({ tag: Type.String({ description: 'tag' }) }),
  create: (conf) => ({ access: (ctx) => ctx.req.headers.add('x-order', conf.tag) }),
});`,
  'route-tag': `import { definePlugin, s, Type } from ${JSON.stringify(PDK)};
export const routeTag = definePlugin({
  name: 'route-tag', version: '1.0.0', priority: 1000000,
  schema: s.object({ tag: Type.String({ description: 'tag' }) }),
  create: (conf) => ({ access: (ctx) => ctx.req.headers.add('x-order', conf.tag) }),
});`,
  'boom': `import { definePlugin, s } from ${JSON.stringify(PDK)};
export const boom = definePlugin({
  name: 'boom', version: '1.0.0', priority: 10, schema: s.object({}),
  create: () => ({ access: () => { throw new Error('kaput'); } }),
});`,
};

let echo: TestUpstream;
let gw: RunningGateway;

beforeAll(async () => {
  echo = await startUpstream(echoHandler);
  gw = await startGateway(({ dir }) => {
    for (const [name, text] of Object.entries(CUSTOM)) {
      mkdirSync(join(dir, 'plugins', name), { recursive: true });
      writeFileSync(join(dir, 'plugins', name, 'index.ts'), text);
    }
    return {
      plugin_paths: ['plugins'],
      // 127.0.0.1 (the test client) is NOT trusted: its X-Forwarded-For must never be believed.
      server: { real_ip: { header: 'X-Forwarded-For', trusted: ['10.0.0.0/8'], recursive: true } },
      upstreams: { echo: { targets: [{ address: echo.address }] } },
      plugins: {
        'correlation-id': { echo_downstream: true },
        'order-tag': { tag: 'global' },
      },
      routes: [
        { name: 'plain', paths: ['/plain'], upstream: 'echo' },
        // route-tag has the highest priority, yet runs after the global order-tag.
        { name: 'ordered', paths: ['/ordered'], upstream: 'echo', plugins: { 'route-tag': { tag: 'route' } } },
        { name: 'boom', paths: ['/boom'], upstream: 'echo', plugins: { boom: {} } },
        { name: 'ret', paths: ['= /ret'], return: { status: 200, body: 'ok\n' } },
        { name: 'office', paths: ['/office'], upstream: 'echo', plugins: { 'ip-restriction': { allow: ['10.1.0.0/16'] } } },
        { name: 'local', paths: ['/local'], upstream: 'echo', plugins: { 'ip-restriction': { allow: ['127.0.0.1'] } } },
        { name: 'cors', paths: ['/cors'], upstream: 'echo', plugins: { cors: { origins: ['https://example.com', '~ https://[a-z]+\\.example\\.org'], credentials: true, max_age: 60 } } },
        { name: 'small', paths: ['/small'], upstream: 'echo', plugins: { 'request-size-limiting': { allowed_payload_size: 16, size_unit: 'bytes' } } },
        {
          name: 'transform', paths: ['/transform'], strip_path: true, upstream: 'echo', plugins: {
            'request-transformer': { remove: { headers: ['x-secret'] }, add: { querystring: ['v:2'] }, replace: { uri: '/rewritten' }, append: { headers: ['x-forwarded-for:6.6.6.6', 'x-user-id:forged'] } },
            'response-transformer': { remove: { headers: ['x-upstream-port'] }, add: { headers: ['x-transformed:yes'] } },
          },
        },
      ],
    };
  });
});

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
});

const echoed = async (path: string, headers: Record<string, string> = {}) => {
  const res = await request(gw.url(path), { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.json() as { url: string; headers: Record<string, string | string[]>; rawHeaders: string[] } };
};

describe('framework through the real gateway', () => {
  test('a custom plugin from plugin_paths runs, and global plugins run before route plugins whatever their priority', async () => {
    const { body } = await echoed('/ordered');
    expect(body.headers['x-order']).toBe('global, route');
  });

  test('a throwing plugin gives a 500 GW_ERR_PLUGIN, and the worker keeps serving', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.url('/boom'));
      expect(res.statusCode).toBe(500);
      expect(await res.body.json()).toEqual({ code: 'GW_ERR_PLUGIN', message: 'plugin failed' });
    }
    await gw.waitForLog('"plugin":"boom"');
    expect(gw.stderr()).toMatch(/"phase":"access"/);
    expect((await echoed('/plain')).status).toBe(200);
  });

  test('response plugins run on return: routes too', async () => {
    const res = await request(gw.url('/ret'));
    expect(res.headers['x-request-id']).toMatch(/#\d+$/);
    expect(await res.body.text()).toBe('ok\n');
  });
});

describe('correlation-id', () => {
  test('an id is generated, sent upstream and echoed', async () => {
    const { headers, body } = await echoed('/plain');
    expect(body.headers['x-request-id']).toBe(headers['x-request-id']);
  });

  test('a well-formed incoming id is kept', async () => {
    const { headers, body } = await echoed('/plain', { 'x-request-id': 'client-id-42' });
    expect(body.headers['x-request-id']).toBe('client-id-42');
    expect(headers['x-request-id']).toBe('client-id-42');
  });

  test('CR/LF in an incoming id cannot inject a header, upstream or downstream', async () => {
    for (const evil of ['a\rX-Injected: 1', 'a\nX-Injected: 1', 'a\r\n X-Injected: 1']) {
      const out = await rawRequest(gw.port, `GET /plain HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${evil}\r\nConnection: close\r\n\r\n`);
      const head = out.slice(0, out.indexOf('\r\n\r\n'));
      expect(head.toLowerCase()).not.toContain('x-injected');
      const status = statusOf(out);
      if (status === 200) {
        const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> };
        expect(body.headers['x-injected']).toBeUndefined();
        expect(body.headers['x-request-id']).not.toContain('X-Injected');
      } else expect(status).toBe(400);
    }
  });

  test('an id with a space is replaced rather than forwarded', async () => {
    const { body } = await echoed('/plain', { 'x-request-id': 'two words' });
    expect(body.headers['x-request-id']).not.toBe('two words');
  });
});

describe('ip-restriction', () => {
  test('a spoofed X-Forwarded-For from an untrusted peer never changes the address it sees', async () => {
    for (const xff of ['10.1.2.3', '10.1.2.3, 10.1.2.4', '127.0.0.1, 10.1.2.3']) {
      const res = await request(gw.url('/office'), { headers: { 'x-forwarded-for': xff, 'x-real-ip': '10.1.2.3' } });
      expect(res.statusCode).toBe(403);
      expect(await res.body.json()).toEqual({ code: 'GW_ERR_IP_DENIED', message: 'Your IP address is not allowed' });
    }
    expect((await echoed('/local', { 'x-forwarded-for': '203.0.113.9' })).status).toBe(200);
  });
});

describe('cors', () => {
  test('a listed origin is echoed with credentials; a look-alike gets no allow-origin', async () => {
    const ok = await request(gw.url('/cors'), { headers: { origin: 'https://example.com' } });
    await ok.body.dump();
    expect(ok.headers['access-control-allow-origin']).toBe('https://example.com');
    expect(ok.headers['access-control-allow-credentials']).toBe('true');
    expect(ok.headers['vary']).toMatch(/Origin/);
    for (const origin of ['https://example.com.evil.net', 'https://a.example.org.evil.net', 'https://evilexample.com']) {
      const res = await request(gw.url('/cors'), { headers: { origin } });
      await res.body.dump();
      expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
  });

  test('a preflight is answered by the gateway', async () => {
    const res = await request(gw.url('/cors'), { method: 'OPTIONS', headers: { origin: 'https://api.example.org', 'access-control-request-method': 'PUT' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://api.example.org');
    expect(res.headers['access-control-max-age']).toBe('60');
    expect(await res.body.text()).toBe('');
  });
});

describe('request-size-limiting', () => {
  test('a declared length over the limit is a 413 from the plugin', async () => {
    const res = await request(gw.url('/small'), { method: 'POST', body: 'x'.repeat(17) });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toEqual({ code: 'GW_ERR_BODY_TOO_LARGE', message: 'request body too large' });
  });

  test('a chunked body is counted as it streams: over the limit is a 413, under it passes', async () => {
    const chunked = (body: string) => `POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    expect(statusOf(await rawRequest(gw.port, chunked('y'.repeat(40))))).toBe(413);
    expect(statusOf(await rawRequest(gw.port, chunked('y'.repeat(10))))).toBe(200);
  });
});

describe('transformers', () => {
  test('request changes reach the upstream, but never forge gateway-owned or identity headers; response changes reach the client', async () => {
    const { headers, body } = await echoed('/transform/x?a=1', { 'x-secret': 's' });
    expect(body.url).toBe('/rewritten?a=1&v=2');
    expect(body.headers['x-secret']).toBeUndefined();
    // Like a client's copy: kept in front, with the real peer appended last and X-Real-IP the resolved client.
    expect(body.headers['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
    expect(body.headers['x-real-ip']).toBe('127.0.0.1');
    expect(body.headers['x-user-id']).toBeUndefined();
    expect(headers['x-upstream-port']).toBeUndefined();
    expect(headers['x-transformed']).toBe('yes');
  });
});
