import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway, StatusDoc } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * `algorithm: consistent-hash` with `hash_on: company_id` through the real
 * gateway (two workers): three upstreams that answer with their own name,
 * consumers in twelve companies behind key-auth. A company sticks to one
 * target whichever worker serves it and across a reload; a request without a
 * company id is round-robined.
 */

const COMPANIES = Array.from({ length: 12 }, (_, i) => String(11 * (i + 1))); // 11, 22, 33 …: the ids that used to cluster
const keyOf = (company: string) => `key-company-${company}`;
const NO_COMPANY_KEY = 'key-no-company';

let targets: TestUpstream[];
let gw: RunningGateway;

beforeAll(async () => {
  targets = await Promise.all(['a', 'b', 'c'].map((name) => startUpstream((_req, res) => res.end(name))));
  gw = await startGateway(() => ({
    upstreams: {
      sticky: {
        algorithm: 'consistent-hash',
        hash_on: 'company_id',
        targets: targets.map((t) => ({ address: t.address })),
      },
    },
    consumers: [
      ...COMPANIES.map((company) => ({
        username: `user-of-${company}`,
        attributes: { user_id: `u-${company}`, company_id: company },
        credentials: { 'key-auth': [{ key: keyOf(company) }] },
      })),
      { username: 'freelancer', attributes: { user_id: 'u-free' }, credentials: { 'key-auth': [{ key: NO_COMPANY_KEY }] } },
    ],
    routes: [
      { name: 'api', paths: ['/api'], upstream: 'sticky', plugins: { 'key-auth': {} } },
      { name: 'open', paths: ['/open'], upstream: 'sticky' },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all(targets?.map((t) => t.close()) ?? []);
});

/** One request on a connection of its own, so that the kernel spreads them over both workers; the answer is the target's name. */
async function targetFor(path: string, apikey?: string): Promise<string> {
  const res = await request(gw.url(path), { headers: apikey === undefined ? { connection: 'close' } : { connection: 'close', apikey } });
  const body = await res.body.text();
  expect(res.statusCode, body).toBe(200);
  return body;
}

/** The targets each company's requests reached, `n` fresh connections per company. */
async function companyTargets(n: number): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const company of COMPANIES) {
    out.set(company, new Set(await Promise.all(Array.from({ length: n }, () => targetFor('/api/orders', keyOf(company))))));
  }
  return out;
}

/** Requests each worker served since `before`, for the workers of the live generation. */
const servedSince = (before: StatusDoc, after: StatusDoc): number[] =>
  after.workers.map((w) => w.requests - (before.workers.find((b) => b.id === w.id)?.requests ?? 0));

/** company → its one target; fails naming the company when it reached several. */
function stickyMap(seen: Map<string, Set<string>>): Record<string, string> {
  const map: Record<string, string> = {};
  for (const [company, set] of seen) {
    expect([...set].sort(), `company ${company} reached several targets`).toHaveLength(1);
    map[company] = [...set][0]!;
  }
  return map;
}

test('every request of a company lands on one target, whichever worker serves it, and again after a reload', async () => {
  const before = await gw.status();
  const first = stickyMap(await companyTargets(8));
  const served = servedSince(before, await gw.status());
  expect(served, 'both workers served requests').toHaveLength(2);
  for (const n of served) expect(n).toBeGreaterThan(0);
  // Twelve companies all on one of three targets would be a 1 in 177,147 chance for a well-mixed hash.
  expect(new Set(Object.values(first)).size).toBeGreaterThan(1);

  await gw.reload();
  expect(stickyMap(await companyTargets(8))).toEqual(first);
});

test('without a company id the requests are round-robined', async () => {
  const free = await Promise.all(Array.from({ length: 12 }, () => targetFor('/api/orders', NO_COMPANY_KEY)));
  expect(new Set(free).size).toBeGreaterThan(1);
  // A route without auth has no identity at all.
  const open = await Promise.all(Array.from({ length: 12 }, () => targetFor('/open/x')));
  expect(new Set(open).size).toBeGreaterThan(1);
});
