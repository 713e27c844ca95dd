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
