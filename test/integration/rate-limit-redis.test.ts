import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { HAVE_REDIS, NO_REDIS, startRedis } from '../helpers/redis-server.ts';
import type { RedisServer } from '../helpers/redis-server.ts';
import { fresh } from '../fixtures/ratelimit/http.ts';

/**
 * policy redis: two separate gateway processes (2 workers each) share one
 * limit in a real redis-server started here; then Redis is killed and each
 * fault_tolerant setting does what it says.
 */
if (!HAVE_REDIS) console.log(`rate-limit-redis: skipped, ${NO_REDIS}`);

let redis: RedisServer | null = null;
const gws: RunningGateway[] = [];

const who = (consumer: string) => ({ 'x-test-consumer': consumer });

beforeAll(async () => {
  if (!HAVE_REDIS) return;
  redis = await startRedis();
  const url = redis.url;
  const rl = (extra: object) => ({
    'identity-from-headers': {},
    'rate-limiting': { policy: 'redis', redis: { url, timeout: 500 }, limits: [{ by: 'consumer', hour: 25 }], ...extra },
  });
  const conf = () => ({
    plugin_paths: [join(ROOT, 'test/fixtures/ratelimit-plugins')],
    // The local counters fault_tolerant falls back to.
    shared_dicts: { sluice_limits: '1m' },
    routes: [
      // One group for both gateways (route names could differ from host to host).
      { name: 'tolerant', paths: ['= /tolerant'], return: { status: 200, body: 'ok\n' }, plugins: rl({ group: 'fleet', fault_tolerant: true }) },
      { name: 'strict', paths: ['= /strict'], return: { status: 200, body: 'ok\n' }, plugins: rl({ group: 'strict', fault_tolerant: false }) },
    ],
  });
  gws.push(...(await Promise.all([startGateway(conf), startGateway(conf)])));
}, 30_000);

afterAll(async () => {
  await Promise.all(gws.map((g) => g.stop()));
  await redis?.kill();
});

describe.skipIf(!HAVE_REDIS)('policy redis', () => {
  test('two gateway processes share one exact limit', async () => {
    const replies = await Promise.all(Array.from({ length: 80 }, (_, i) => fresh(gws[i % 2]!.port, '/tolerant', who('dave'))));
    expect(replies.filter((r) => r.status === 200).length).toBe(25);
    expect(replies.filter((r) => r.status === 429).length).toBe(55);
    // Each gateway let some through: the limit is the fleet's, not each host's.
    const byGw = [0, 1].map((g) => replies.filter((r, i) => i % 2 === g && r.status === 200).length);
    expect(byGw[0]! + byGw[1]!).toBe(25);
    const ok = await fresh(gws[1]!.port, '/strict', who('erin'));
    expect(ok.status).toBe(200);
    expect(ok.headers['ratelimit-remaining']).toBe('24');
  });

  test('Redis killed: fault_tolerant counts locally and logs it; fault_tolerant false answers 503', async () => {
    await redis!.kill();
    const [g1] = gws;
    // Local counters start empty on this gateway: 25 pass out of 30, per host.
    const tolerant = await Promise.all(Array.from({ length: 30 }, () => fresh(g1!.port, '/tolerant', who('frank'))));
    expect(tolerant.filter((r) => r.status === 200).length).toBe(25);
    await g1!.waitForLog('redis unreachable: counting locally until it is back');
    const strict = await fresh(g1!.port, '/strict', who('frank'));
    expect(strict.status).toBe(503);
    await g1!.waitForLog('redis unreachable: refusing requests until it is back');
    expect(g1!.stderr()).toContain('"code":"RL_ERR_REDIS"');
  });
});
