import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rateLimiting } from '../../../src/plugins/rate-limiting/index.ts';
import { LocalWindow } from '../../../src/plugins/rate-limiting/window.ts';
import { SharedDict } from '../../../src/shdict/index.ts';
import { identityFromHeaders } from '../../fixtures/ratelimit-plugins/identity-from-headers/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';
import type { HarnessOptions } from '../../helpers/plugin-harness.ts';
import { HAVE_REDIS, NO_REDIS, startRedis } from '../../helpers/redis-server.ts';
import type { RedisServer } from '../../helpers/redis-server.ts';

/** A harness with a fresh `sluice_limits` zone and a clock the test moves. */
function setup(conf: object, start = 1_700_000_000_000, opts: HarnessOptions = {}) {
  const clock = { t: start };
  const dict = SharedDict.create(1 << 20);
  const h = harness([rateLimiting, identityFromHeaders], { 'rate-limiting': conf, 'identity-from-headers': {} }, {
    now: () => clock.t, zones: { sluice_limits: dict.buffer }, ...opts,
  });
  return { clock, dict, h };
}
const who = (consumer: string, user?: string, company?: string) => ({
  'x-test-consumer': consumer, ...(user === undefined ? {} : { 'x-test-user': user }), ...(company === undefined ? {} : { 'x-test-company': company }),
});

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(rateLimiting, { limits: [{ minute: 5 }] }).conf).toEqual({
      limits: [{ by: 'consumer', minute: 5 }], algorithm: 'sliding-window', on_missing_key: 'reject', policy: 'local', dict: 'sluice_limits',
      redis: { url: 'redis://127.0.0.1:6379', timeout: 2000, prefix: 'sluice:rl:' }, fault_tolerant: true, hide_client_headers: false,
      error_code: 429, error_message: 'API rate limit exceeded',
    });
  });
  test('a limit needs a window; by parts are checked', () => {
    expect(checkConf(rateLimiting, { limits: [{ by: 'ip' }] }).errors.join()).toMatch(/at least one of second, minute, hour, day/);
    expect(checkConf(rateLimiting, { limits: [{ by: ['company_id', 'user_id', 'header:X-Api', 'plan'], hour: 1 }] }).ok).toBe(true);
    expect(checkConf(rateLimiting, { limits: [{ by: 'header:bad name', hour: 1 }] }).ok).toBe(false);
    expect(checkConf(rateLimiting, { limits: [{ by: 'ip', hour: 2 ** 25 + 1 }] }).ok).toBe(false);
  });
});

describe('fixed window', () => {
  test('exactly the limit passes; refusals use no quota; the next window starts afresh', async () => {
    const { clock, h } = setup({ algorithm: 'fixed-window', limits: [{ by: 'consumer', minute: 3 }] }, 1_700_000_080_000);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await h.run({ headers: who('alice') })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    clock.t += 20_000; // 1_700_000_060_000: a minute boundary
    expect((await h.run({ headers: who('alice') })).status).toBe(200);
  });

  test('headers while passing and on 429 with Retry-After to the window end', async () => {
    const { clock, h } = setup({ algorithm: 'fixed-window', limits: [{ by: 'consumer', minute: 2, hour: 10 }] }, 1_700_000_080_000);
    const r1 = await h.run({ headers: who('alice') });
    expect(r1.header('ratelimit-limit')).toBe('2');
    expect(r1.header('ratelimit-remaining')).toBe('1');
    expect(r1.header('ratelimit-reset')).toBe('20');
    expect(r1.header('x-ratelimit-limit-minute')).toBe('2');
    expect(r1.header('x-ratelimit-remaining-minute')).toBe('1');
    expect(r1.header('x-ratelimit-limit-hour')).toBe('10');
    expect(r1.header('x-ratelimit-remaining-hour')).toBe('9');
    await h.run({ headers: who('alice') });
    clock.t += 4_500;
    const r3 = await h.run({ headers: who('alice') });
    expect(r3.status).toBe(429);
    expect(JSON.parse(r3.body)).toEqual({ code: 'GW_ERR_RATE_LIMITED', message: 'API rate limit exceeded' });
    expect(r3.header('content-type')).toMatch(/json/);
    expect(r3.header('retry-after')).toBe('16'); // 15.5 s to the minute boundary, rounded up
    expect(r3.header('ratelimit-remaining')).toBe('0');
    expect(r3.header('x-ratelimit-remaining-minute')).toBe('0');
  });

  test('Retry-After waits for every window that is used up, not only the first that refused', async () => {
    // 1_700_000_080_000 is 20 s before a minute's end: the second window refuses first, the minute one is used up too.
    const { clock, h } = setup({ algorithm: 'fixed-window', limits: [{ by: 'consumer', second: 2, minute: 2 }] }, 1_700_000_080_000);
    for (let i = 0; i < 2; i++) expect((await h.run({ headers: who('alice') })).status).toBe(200);
    const refused = await h.run({ headers: who('alice') });
    expect(refused.status).toBe(429);
    expect(refused.header('retry-after')).toBe('20'); // the minute's end, not the second's
    clock.t += 19_000;
    expect((await h.run({ headers: who('alice') })).status).toBe(429);
    clock.t += 1_000;
    expect((await h.run({ headers: who('alice') })).status).toBe(200);
  });

  test('hide_client_headers keeps Retry-After only; error_code and error_message', async () => {
    const { h } = setup({ algorithm: 'fixed-window', hide_client_headers: true, error_code: 403, error_message: 'slow down', limits: [{ by: 'ip', second: 1 }] });
    const ok = await h.run();
    expect(Object.keys(ok.headers).filter((n) => n.includes('ratelimit'))).toEqual([]);
    const no = await h.run();
    expect(no.status).toBe(403);
    expect(JSON.parse(no.body)).toEqual({ code: 'GW_ERR_RATE_LIMITED', message: 'slow down' });
    expect(no.header('retry-after')).toBe('1');
    expect(Object.keys(no.headers).filter((n) => n.includes('ratelimit'))).toEqual([]);
  });
});

describe('sliding window', () => {
  test('the previous window counts by the part of it still inside the period', async () => {
    const { clock, h } = setup({ limits: [{ by: 'consumer', minute: 10 }] }, 1_700_000_080_000);
    for (let i = 0; i < 10; i++) expect((await h.run({ headers: who('a') })).status).toBe(200);
    expect((await h.run({ headers: who('a') })).status).toBe(429);
    // 15 s into the next minute: the previous 10 weigh 10 * 45/60 = 7.5, so 2 more pass (7.5 + 2 + 1 > 10 for a third).
    clock.t = 1_700_000_115_000;
    expect((await h.run({ headers: who('a') })).status).toBe(200);
    const second = await h.run({ headers: who('a') });
    expect(second.status).toBe(200);
    expect(second.header('ratelimit-remaining')).toBe('0'); // floor(10 - 7.5 - 2)
    const refused = await h.run({ headers: who('a') });
    expect(refused.status).toBe(429);
    // One more fits once 10 * w + 2 + 1 <= 10: w <= 0.7, i.e. 42 s before the minute ends: at :18, 3 s from now.
    expect(refused.header('retry-after')).toBe('3');
    clock.t += 3_000;
    expect((await h.run({ headers: who('a') })).status).toBe(200);
    // Two windows later nothing of the old ones is left.
    clock.t = 1_700_000_220_000;
    for (let i = 0; i < 10; i++) expect((await h.run({ headers: who('a') })).status).toBe(200);
  });

  test('Retry-After when the current window alone is full points into the next window', () => {
    const dict = SharedDict.create(1 << 20);
    const w = new LocalWindow(4, 60_000, true);
    const t0 = 1_700_000_080_000; // 40 s into its minute
    for (let i = 0; i < 4; i++) expect(w.check(dict, 'k', t0)).toBe(true);
    expect(w.check(dict, 'k', t0)).toBe(false);
    // 20 s to the boundary, then 4 * w + 1 <= 4 needs w <= 3/4: 15 s into the next minute.
    expect(w.retryIn(t0)).toBe(35_000);
    expect(w.check(dict, 'k', t0 + 35_000 - 1)).toBe(false);
    expect(w.check(dict, 'k', t0 + 35_000)).toBe(true);
  });
});

describe('keys and several limits', () => {
  test('keys are independent: per consumer, per user, per company, per combination', async () => {
    const { h } = setup({ algorithm: 'fixed-window', limits: [{ by: ['company_id', 'user_id'], hour: 1 }] });
    expect((await h.run({ headers: who('a', 'u1', 'c1') })).status).toBe(200);
    expect((await h.run({ headers: who('b', 'u1', 'c1') })).status).toBe(429); // same user of the same company
    expect((await h.run({ headers: who('a', 'u2', 'c1') })).status).toBe(200);
    expect((await h.run({ headers: who('a', 'u1', 'c2') })).status).toBe(200);
  });

  test('a company quota and a per-user rate at once; a refusal by one gives back the others', async () => {
    const { h } = setup({ algorithm: 'fixed-window', limits: [{ by: 'company_id', hour: 3 }, { by: 'user_id', hour: 2 }] });
    expect((await h.run({ headers: who('x', 'u1', 'acme') })).status).toBe(200);
    expect((await h.run({ headers: who('x', 'u1', 'acme') })).status).toBe(200);
    // u1 is out of its own quota: refused, and the company count it took is given back...
    const r = await h.run({ headers: who('x', 'u1', 'acme') });
    expect(r.status).toBe(429);
    expect(r.header('x-ratelimit-limit-hour')).toBe('2');
    // ...so the company still has exactly one left, for u2.
    const u2 = await h.run({ headers: who('x', 'u2', 'acme') });
    expect(u2.status).toBe(200);
    expect(u2.header('ratelimit-remaining')).toBe('0');
    expect(u2.header('ratelimit-limit')).toBe('3');
    expect((await h.run({ headers: who('x', 'u3', 'acme') })).status).toBe(429);
  });

  test('header:NAME, identity attributes and route keys', async () => {
    const { h } = setup({ algorithm: 'fixed-window', on_missing_key: 'skip', limits: [{ by: 'header:X-Api-Key', day: 1 }, { by: 'plan', day: 2 }] });
    expect((await h.run({ headers: { 'x-api-key': 'k1' } })).status).toBe(200);
    expect((await h.run({ headers: { 'x-api-key': 'k1' } })).status).toBe(429);
    expect((await h.run({ headers: { 'x-api-key': 'k2' } })).status).toBe(200);
    const gold = { ...who('a'), 'x-test-plan': 'gold' };
    expect((await h.run({ headers: gold })).status).toBe(200);
    expect((await h.run({ headers: gold })).status).toBe(200);
    expect((await h.run({ headers: gold })).status).toBe(429);
    const { h: byRoute } = setup({ limits: [{ by: 'route', second: 1 }] });
    expect((await byRoute.run()).status).toBe(200);
    expect((await byRoute.run({ client: '10.0.0.9' })).status).toBe(429);
  });

  test('on_missing_key: reject (403), ip, skip', async () => {
    const reject = await setup({ limits: [{ by: 'user_id', second: 1 }] }).h.run();
    expect(reject.status).toBe(403);
    expect(JSON.parse(reject.body)).toEqual({ code: 'GW_ERR_NO_LIMIT_KEY', message: 'no rate-limiting key in the request' });
    const { h: ip } = setup({ on_missing_key: 'ip', limits: [{ by: 'user_id', second: 1 }] });
    expect((await ip.run({ client: '10.0.0.1' })).status).toBe(200);
    expect((await ip.run({ client: '10.0.0.1' })).status).toBe(429);
    expect((await ip.run({ client: '10.0.0.2' })).status).toBe(200);
    const { h: skip } = setup({ on_missing_key: 'skip', limits: [{ by: 'user_id', second: 1 }] });
    for (let i = 0; i < 3; i++) expect((await skip.run()).status).toBe(200);
  });
});

describe('counters in the zone', () => {
  test('a counter is one number with a ttl of two windows (expired windows are what a full zone drops first)', async () => {
    const { dict, h } = setup({ limits: [{ by: 'consumer', minute: 5 }] });
    await h.run({ headers: who('a') });
    const keys = dict.getKeys(0);
    expect(keys).toEqual(['rl:test:a:0:minute']);
    expect(typeof dict.get(keys[0]!)).toBe('number');
    expect(dict.ttl(keys[0]!)).toBeGreaterThan(119_000);
  });

  test('the window tag survives a window it skipped: an old count is never read as current', () => {
    const dict = SharedDict.create(1 << 20);
    const w = new LocalWindow(2, 1_000, false);
    expect(w.check(dict, 'k', 4_000)).toBe(true);
    expect(w.check(dict, 'k', 4_000)).toBe(true);
    expect(w.check(dict, 'k', 4_000)).toBe(false);
    for (const t of [5_000, 6_000, 8_000, 12_000]) expect(w.check(dict, 'k', t)).toBe(true);
  });
});

test('ioredis is loaded only for a redis policy: importing the plugins never loads it', () => {
  const plugins = new URL('../../../src/plugins/index.ts', import.meta.url).href;
  const probe = `
    import { registerHooks } from 'node:module';
    const asked = new Set();
    registerHooks({ resolve: (spec, ctx, next) => { asked.add(spec); return next(spec, ctx); } });
    await import(${JSON.stringify(plugins)});
    process.stdout.write(String(asked.has('ioredis')));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('false');
});

if (!HAVE_REDIS) console.log(`rate-limiting policy redis: skipped, ${NO_REDIS}`);

describe.skipIf(!HAVE_REDIS)('policy redis: clients per worker', () => {
  let redis: RedisServer;
  let observer: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    observer = new Redis(redis.url, { connectionName: 'observer' });
  });
  afterAll(async () => {
    observer?.disconnect();
    await redis?.kill();
  });

  /** Connections the server holds besides the observer's. */
  const clients = async (): Promise<number> =>
    ((await observer.client('LIST')) as string).trim().split('\n').filter((l) => !l.includes(' name=observer ')).length;

  test('instances naming one server share one client; the plugin\'s dispose closes it', async () => {
    const conf = { policy: 'redis', redis: { url: redis.url, timeout: 1000 }, algorithm: 'fixed-window' };
    // A global instance and the route's own: two instances of one worker, both on this server.
    const { h } = setup({ ...conf, limits: [{ by: 'consumer', minute: 2 }] }, 1_700_000_000_000, {
      globals: { 'rate-limiting': { ...conf, limits: [{ by: 'ip', hour: 100 }] } },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await h.run({ headers: who('alice') })).status);
    expect(statuses).toEqual([200, 200, 429]);
    // Counted in Redis, not in the local fallback.
    expect(await observer.keys('sluice:rl:*')).toEqual(['sluice:rl:rl:test:alice:0:minute:28333333']);
    expect(await clients()).toBe(1);
    await h.dispose();
    expect(await clients()).toBe(0);
  });

  test('Retry-After waits for every window that is used up, as the local policy does', async () => {
    const conf = { policy: 'redis', redis: { url: redis.url, timeout: 1000 }, algorithm: 'fixed-window' };
    const { clock, h } = setup({ ...conf, limits: [{ by: 'consumer', second: 2, minute: 2 }] }, 1_700_000_080_000);
    for (let i = 0; i < 2; i++) expect((await h.run({ headers: who('bob') })).status).toBe(200);
    const refused = await h.run({ headers: who('bob') });
    expect([refused.status, refused.header('retry-after')]).toEqual([429, '20']); // the minute's end, not the second's
    clock.t += 20_000;
    expect((await h.run({ headers: who('bob') })).status).toBe(200);
    await h.dispose();
  });
});
