import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { formatIssue } from '../../../src/config/format.ts';
import { loadConf } from '../../../src/config/load.ts';
import type { ConsumerConf } from '../../../src/config/types.ts';
import { loadAllBuiltins } from '../../../src/plugins/index.ts';
import { keyAuth } from '../../../src/plugins/key-auth/index.ts';
import { trafficSplit } from '../../../src/plugins/traffic-split/index.ts';
import { compileRules } from '../../../src/plugins/traffic-split/rules.ts';
import type { Conf } from '../../../src/plugins/traffic-split/schema.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';
import type { FakeRequest, HarnessOptions } from '../../helpers/plugin-harness.ts';

/** Consumers of companies 1..n (key `k<id>`), plus one without a company. */
const consumersOf = (ids: readonly number[]): ConsumerConf[] => [
  ...ids.map((i) => ({ username: `c${i}`, attributes: { user_id: `u${i}`, company_id: String(i) }, credentials: { 'key-auth': [{ key: `k${i}` }] } })),
  { username: 'freelancer', attributes: { user_id: 'u-free' }, credentials: { 'key-auth': [{ key: 'k-free' }] } },
];

const UPSTREAMS = ['orders', 'orders-v2', 'acme-private', 'tenant-77', 'eu', 'office', 'beta'];

/** A route on `orders` with key-auth (anonymous allowed, so a request without a key has no identity) and traffic-split. */
function gateway(conf: object, opts: HarnessOptions = {}) {
  return harness([keyAuth, trafficSplit], { 'key-auth': { anonymous: 'nobody' }, 'traffic-split': conf }, {
    upstreams: UPSTREAMS,
    consumers: [...consumersOf([5, 42, 77]), { username: 'nobody', attributes: {}, credentials: {} }],
    ...opts,
  });
}

const upstreamOf = async (h: ReturnType<typeof gateway>, req: FakeRequest = {}): Promise<string | null> => {
  const r = await h.run(req);
  expect(r.status, JSON.stringify(r.errors)).toBe(200);
  return r.upstream!.name;
};
const key = (company: number | string, more: Record<string, string> = {}): FakeRequest => ({ headers: { apikey: `k${company}`, ...more } });

/** The issue's conf, minus the canary (its own tests below). */
const TENANTS = {
  rules: [
    { when: { company_id: ['42', '77'] }, upstream: 'acme-private' },
    { upstream: 'tenant-{company_id}' },
    { when: { 'header:X-Canary': ['1'] }, upstream: 'orders-v2' },
  ],
};

describe('schema and sluice -t', () => {
  test('defaults: no sticky; values may be integers, a single value or a list', () => {
    const c = checkConf(trafficSplit, { rules: [{ when: { company_id: 42, user_id: ['7', 8] }, upstream: 'orders' }] });
    expect(c.errors).toEqual([]);
    expect(c.conf).toEqual({ rules: [{ when: { company_id: 42, user_id: ['7', 8] }, upstream: 'orders' }], sticky: null });
  });

  test('every fault of the plugin, with file:line:col, in one run', async () => {
    const dir = join(import.meta.dirname, '../../fixtures/conf/traffic-split');
    const r = loadConf(join(dir, 'sluice.yaml'), { pluginSchemas: new Map((await loadAllBuiltins()).map((d) => [d.name, d.schema])) });
    expect(r.ok).toBe(false);
    const f = 'sluice.yaml';
    const at = 'routes[0].plugins.traffic-split.rules';
    expect(!r.ok && r.issues.map((i) => formatIssue(i).replace(`${dir}/`, ''))).toEqual([
      `${f}:5:3: plugins.traffic-split: traffic-split chooses a route's upstream: configure it on routes with upstream:, not globally`,
      `${f}:14:23: ${at}[0].upstream: upstream "acme-private" is not defined`,
      `${f}:15:23: ${at}[1].upstream: template field {company} is not consumer, user_id or company_id`,
      `${f}:16:41: ${at}[2].when["header:X-Canary"][0]: bad regex: Invalid regular expression: /(unclosed/: Unterminated group`,
      `${f}:18:21: ${at}[3].when.colour: unknown key "colour"`,
      `${f}:21:15: ${at}[4].weighted: weights are all zero: nothing could be chosen`,
      `${f}:23:19: ${at}[5].when: header:X-Company-Id reads the client's own header: use consumer, user_id or company_id, which only auth plugins set`,
      `${f}:25:13: ${at}[6]: a rule takes exactly one of upstream or weighted`,
      `${f}:31:7: routes[1].plugins.traffic-split: traffic-split chooses the upstream: only a route with upstream: can carry it`,
    ]);
  });
});

describe('access: the first matching rule chooses the upstream', () => {
  const h = gateway(TENANTS);

  test('companies 42 and 77 go to acme-private on every request', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await upstreamOf(h, key(42))).toBe('acme-private');
      expect(await upstreamOf(h, key(77))).toBe('acme-private');
    }
  });

  test('a tenant template chooses tenant-<id> when the conf defines it, else the next rule, else the route\'s upstream', async () => {
    const t = gateway({ rules: [{ upstream: 'tenant-{company_id}' }, { when: { 'header:X-Canary': '1' }, upstream: 'orders-v2' }] });
    expect(await upstreamOf(t, key(77))).toBe('tenant-77');
    expect(await upstreamOf(t, key(5))).toBe('orders'); // no tenant-5
    expect(await upstreamOf(t, key(5, { 'x-canary': '1' }))).toBe('orders-v2');
    expect(await upstreamOf(t, key('-free'))).toBe('orders'); // no company_id to fill in
  });

  test('identity comes only from auth: X-Company-Id and friends from the client are never read', async () => {
    const spoof = { 'x-company-id': '42', 'x-consumer-username': 'c42', 'x-user-id': 'u42' };
    expect(await upstreamOf(h, { headers: spoof })).toBe('orders');
    expect(await upstreamOf(h, key(5, spoof))).toBe('orders');
    const byConsumer = gateway({ rules: [{ when: { consumer: 'c42' }, upstream: 'acme-private' }, { when: { user_id: 'u42' }, upstream: 'acme-private' }] });
    expect(await upstreamOf(byConsumer, { headers: spoof })).toBe('orders');
    expect(await upstreamOf(byConsumer, key(42))).toBe('acme-private');
  });

  test('header, ~ regex, cookie, query and ip rules; all keys of a when must match', async () => {
    const g = gateway({
      rules: [
        { when: { 'header:X-Canary': '1', company_id: '5' }, upstream: 'beta' },
        { when: { 'header:X-Region': ['~ eu-(west|north)-[0-9]+'] }, upstream: 'eu' },
        { when: { 'cookie:beta': 'yes' }, upstream: 'beta' },
        { when: { 'query:canary': 'on' }, upstream: 'orders-v2' },
        { when: { ip: ['10.0.0.0/8', '2001:db8::/32'] }, upstream: 'office' },
      ],
    });
    expect(await upstreamOf(g, key(5, { 'x-canary': '1' }))).toBe('beta');
    expect(await upstreamOf(g, key(42, { 'x-canary': '1' }))).toBe('orders');
    expect(await upstreamOf(g, { headers: { 'x-region': 'eu-west-3' } })).toBe('eu');
    expect(await upstreamOf(g, { headers: { 'x-region': 'eu-west-3x' } })).toBe('orders'); // anchored
    expect(await upstreamOf(g, { headers: { 'x-region': 'us-eu-west-3' } })).toBe('orders');
    expect(await upstreamOf(g, { headers: { cookie: 'a=1; beta=yes' } })).toBe('beta');
    expect(await upstreamOf(g, { headers: { cookie: 'beta=no' } })).toBe('orders');
    expect(await upstreamOf(g, { query: 'x=1&canary=on' })).toBe('orders-v2');
    expect(await upstreamOf(g, { client: '10.1.2.3' })).toBe('office');
    expect(await upstreamOf(g, { client: '::ffff:10.1.2.3' })).toBe('office');
    expect(await upstreamOf(g, { client: '2001:db8::1' })).toBe('office');
    expect(await upstreamOf(g, { client: '11.1.2.3' })).toBe('orders');
  });
});

describe('rule order with indexed tenant rules', () => {
  test('a general rule before a tenant rule wins, and a tenant rule before a general one wins', async () => {
    const g = gateway({
      rules: [
        { when: { 'header:X-Canary': '1' }, upstream: 'orders-v2' },
        { when: { company_id: '42' }, upstream: 'acme-private' },
        { when: { 'header:X-Beta': '1' }, upstream: 'beta' },
      ],
    });
    expect(await upstreamOf(g, key(42, { 'x-canary': '1', 'x-beta': '1' }))).toBe('orders-v2');
    expect(await upstreamOf(g, key(42, { 'x-beta': '1' }))).toBe('acme-private');
    expect(await upstreamOf(g, key(5, { 'x-beta': '1' }))).toBe('beta');
  });

  test('a tenant rule whose template names no upstream gives way to the next rule, indexed or not', async () => {
    const g = gateway({
      rules: [
        { when: { company_id: ['5', '77'] }, upstream: 'tenant-{company_id}' },
        { when: { 'header:X-Beta': '1' }, upstream: 'beta' },
        { when: { company_id: '5' }, upstream: 'eu' },
      ],
    });
    expect(await upstreamOf(g, key(77))).toBe('tenant-77');
    expect(await upstreamOf(g, key(5, { 'x-beta': '1' }))).toBe('beta');
    expect(await upstreamOf(g, key(5))).toBe('eu');
  });

  test('900 tenant rules compile into one index: a request looks its company up once', () => {
    const rules: Conf['rules'] = [
      ...Array.from({ length: 900 }, (_, i) => ({ when: { company_id: [String(1000 + i)] }, upstream: 'orders-v2' })),
      { upstream: 'tenant-{company_id}' },
      { when: { company_id: ['~ 9.*'] }, upstream: 'beta' },
      { weighted: [{ upstream: 'orders-v2', weight: 10 }, { upstream: 'orders', weight: 90 }] },
    ];
    const t = compileRules({ rules, sticky: null }, Math.random);
    expect(t.indexes).toHaveLength(1);
    expect(t.indexes[0]!.byValue.size).toBe(900);
    expect(t.general.map((r) => r.index)).toEqual([900, 901, 902]);
  });

  /**
   * The indexed evaluation against the rules read in order, one by one, on
   * random rule lists mixing tenant rules (sometimes with a value repeated in a
   * later rule), header rules, templates and catch-alls.
   */
  test('on random rule lists, the indexed choice is always the first rule in order that matches and sends', async () => {
    let seed = 1;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const companies = ['5', '42', '77'];
    const targets = ['orders-v2', 'beta', 'eu', 'tenant-{company_id}'];
    type R = { when?: Record<string, string[]>; upstream: string };
    for (let round = 0; round < 60; round++) {
      const rules: R[] = Array.from({ length: 1 + rnd(8) }, (): R => {
        const upstream = targets[rnd(targets.length)]!;
        switch (rnd(4)) {
          case 0: return { when: { company_id: [companies[rnd(3)]!, ...(rnd(2) ? [companies[rnd(3)]!] : [])] }, upstream };
          case 1: return { when: { 'header:X-Beta': ['1'] }, upstream };
          case 2: return { when: { company_id: [companies[rnd(3)]!], 'header:X-Beta': ['1'] }, upstream };
          default: return rnd(3) === 0 ? { upstream } : { when: { user_id: [`u${companies[rnd(3)]!}`] }, upstream };
        }
      });
      const g = gateway({ rules });
      for (const company of companies) {
        for (const beta of [false, true]) {
          const headers: Record<string, string> = beta ? { 'x-beta': '1' } : {};
          const expected = rules.find((r) => {
            const w = r.when ?? {};
            const ok = (w['company_id'] === undefined || w['company_id'].includes(company))
              && (w['user_id'] === undefined || w['user_id'].includes(`u${company}`))
              && (w['header:X-Beta'] === undefined || beta);
            return ok && UPSTREAMS.includes(r.upstream.replace('{company_id}', company));
          });
          const want = expected === undefined ? 'orders' : expected.upstream.replace('{company_id}', company);
          expect(await upstreamOf(g, key(company, headers)), JSON.stringify({ rules, company, beta })).toBe(want);
        }
      }
    }
  });
});

/** A seeded PRNG (mulberry32), so the canary counts are the same on every run. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CANARY = { weighted: [{ upstream: 'orders-v2', weight: 10 }, { upstream: 'orders', weight: 90 }] };

describe('weighted', () => {
  test('the random point picks the share that holds it', async () => {
    let next = 0;
    const g = gateway({ rules: [CANARY] }, { random: () => next });
    for (const [point, want] of [[0, 'orders-v2'], [0.0999, 'orders-v2'], [0.1, 'orders'], [0.9999, 'orders']] as const) {
      next = point;
      expect(await upstreamOf(g), String(point)).toBe(want);
    }
  });

  test('a 10/90 canary over 5,000 requests lands within ±2 points', async () => {
    const g = gateway({ rules: [CANARY] }, { random: seeded(15) });
    let canary = 0;
    for (let i = 0; i < 5000; i++) if ((await upstreamOf(g)) === 'orders-v2') canary++;
    expect(Math.abs(canary / 5000 - 0.1)).toBeLessThanOrEqual(0.02);
  });

  test('sticky: company_id keeps each company on one side whatever the random source says; a request without one is random', async () => {
    let next = 0;
    const g = gateway({ rules: [CANARY], sticky: 'company_id' }, { random: () => next });
    const sides = async (req: FakeRequest) => {
      const seen = new Set<string | null>();
      for (next of [0, 0.05, 0.5, 0.99]) seen.add(await upstreamOf(g, req));
      return seen;
    };
    for (const company of [5, 42, 77]) expect((await sides(key(company))).size).toBe(1);
    expect(await sides(key('-free'))).toEqual(new Set(['orders-v2', 'orders']));
  });

  /**
   * Sequential ids are what a weak hash clusters; murmur3's avalanche must
   * spread them like random ones. χ² with 1 degree of freedom against the
   * 10/90 split, and with 9 over ten equal shares, under the 0.1% critical values.
   */
  test('sticky on sequential company ids 1..10000 spreads like random (χ²)', async () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const g = harness([keyAuth, trafficSplit], {
      'key-auth': {},
      'traffic-split': {
        rules: [CANARY],
        sticky: 'company_id',
      },
    }, { upstreams: UPSTREAMS, consumers: consumersOf(ids), random: () => 0 });
    const chi2 = (observed: readonly number[], expected: readonly number[]) =>
      observed.reduce((sum, o, i) => sum + (o - expected[i]!) ** 2 / expected[i]!, 0);
    let canary = 0;
    for (const id of ids) if ((await upstreamOf(g, key(id))) === 'orders-v2') canary++;
    expect(chi2([canary, 10_000 - canary], [1000, 9000])).toBeLessThan(10.83);

    const tenths = harness([keyAuth, trafficSplit], {
      'key-auth': {},
      'traffic-split': { rules: [{ weighted: UPSTREAMS.slice(0, 5).flatMap((u) => [{ upstream: u }, { upstream: u }]) }], sticky: 'company_id' },
    }, { upstreams: UPSTREAMS, consumers: consumersOf(ids), random: () => 0 });
    const counts = new Map<string, number>();
    for (const id of ids) {
      const u = (await upstreamOf(tenths, key(id)))!;
      counts.set(u, (counts.get(u) ?? 0) + 1);
    }
    expect(chi2([...counts.values()], [2000, 2000, 2000, 2000, 2000])).toBeLessThan(18.47); // 4 degrees of freedom
  });
});
