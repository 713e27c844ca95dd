import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * Active health checks run in the master; every worker's balancer reads the
 * verdict from shared memory, and /status reports it per target.
 */
let gw: RunningGateway;
const upstreams: TestUpstream[] = [];
let bHealthy = true;

beforeAll(async () => {
  for (const name of ['a', 'b']) {
    upstreams.push(await startUpstream((req, res) => {
      if (req.url === '/healthz') {
        res.statusCode = name === 'b' && !bHealthy ? 500 : 200;
        res.end();
        return;
      }
      res.end(name);
    }));
  }
  const [a, b] = upstreams.map((u) => u.address);
  gw = await startGateway(() => ({
    upstreams: {
      pair: {
        targets: [{ address: a }, { address: b }],
        healthcheck: { active: { path: '/healthz', interval: '100ms', timeout: '500ms', healthy: 2, unhealthy: 2 } },
      },
    },
    routes: [{ name: 'pair', paths: ['/'], upstream: 'pair' }],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all(upstreams.map((u) => u.close()));
});

const answers = async (n: number): Promise<Set<string>> => {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await request(gw.url('/x'), { reset: true });
    seen.add(await res.body.text());
  }
  return seen;
};

test('a target failing its probes is taken out everywhere, and comes back when it recovers', async () => {
  const [a, b] = upstreams.map((u) => u.address);
  expect((await gw.status())['upstreams']).toEqual({ pair: { [a!]: 'healthy', [b!]: 'healthy' } });
  expect(await answers(10)).toEqual(new Set(['a', 'b']));

  bHealthy = false;
  await gw.waitForLog('"msg":"upstream target marked unhealthy"');
  expect((await gw.status())['upstreams']).toEqual({ pair: { [a!]: 'healthy', [b!]: 'unhealthy' } });
  expect(await answers(20)).toEqual(new Set(['a']));

  bHealthy = true;
  await gw.waitForLog('"msg":"upstream target is healthy again"');
  expect((await gw.status())['upstreams']).toEqual({ pair: { [a!]: 'healthy', [b!]: 'healthy' } });
  expect(await answers(10)).toEqual(new Set(['a', 'b']));
});
