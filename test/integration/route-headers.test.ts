import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * Route `headers:` (Kong routes): a route is chosen only for requests carrying
 * each header at one of its values, and it wins over the route without headers
 * on the same path. Each upstream answers its name and the X-Tenant it received.
 */
let gw: RunningGateway;
const upstreams: TestUpstream[] = [];

beforeAll(async () => {
  for (const name of ['shared', 'acme']) {
    upstreams.push(await startUpstream((req, res) => res.end(`${name} ${String(req.headers['x-tenant'])}`)));
  }
  const [shared, acme] = upstreams.map((u) => u.address);
  gw = await startGateway(() => ({
    upstreams: { shared: { targets: [shared] }, acme: { targets: [acme] } },
    routes: [
      { name: 'orders', paths: ['/orders'], upstream: 'shared' },
      { name: 'orders-acme', paths: ['/orders'], headers: { 'X-Tenant': ['acme', '~ acme-[0-9]+'] }, upstream: 'acme' },
      { name: 'acme-only', paths: ['/private'], headers: { 'X-Tenant': ['acme'] }, upstream: 'acme' },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all(upstreams.map((u) => u.close()));
});

const answer = async (path: string, headers: Record<string, string> = {}): Promise<string> => {
  const res = await request(gw.url(path), { headers });
  return `${res.statusCode} ${await res.body.text()}`;
};

test('the route with matching headers wins over the one without, written later in the conf', async () => {
  expect(await answer('/orders/1', { 'X-Tenant': 'acme' })).toBe('200 acme acme');
  expect(await answer('/orders/1', { 'X-Tenant': 'acme-42' })).toBe('200 acme acme-42'); // ~ regex value
  expect(await answer('/orders/1')).toBe('200 shared undefined');
  expect(await answer('/orders/1', { 'X-Tenant': 'globex' })).toBe('200 shared globex');
  expect(await answer('/orders/1', { 'X-Tenant': 'ACME' })).toBe('200 shared ACME'); // values are exact
  expect(await answer('/orders/1', { 'X-Tenant': 'xacme-42' })).toBe('200 shared xacme-42'); // regexes are anchored
});

test('the header name is case-insensitive on the wire', async () => {
  const res = await rawRequest(gw.port, 'GET /orders/1 HTTP/1.1\r\nHost: x\r\nx-TENANT: acme\r\nConnection: close\r\n\r\n');
  expect(statusOf(res)).toBe(200);
  expect(res.endsWith('acme acme')).toBe(true);
});

test('a route with headers is not there for other requests: no route, 404', async () => {
  expect(await answer('/private', { 'X-Tenant': 'acme' })).toBe('200 acme acme');
  const res = await request(gw.url('/private'), { headers: { 'X-Tenant': 'globex' } });
  expect(res.statusCode).toBe(404);
  expect(await res.body.json()).toMatchObject({ code: 'GW_ERR_NO_ROUTE' });
});
