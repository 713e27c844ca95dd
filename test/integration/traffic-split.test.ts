import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { murmur3 } from '../../src/plugins/pdk/murmur3.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway, StatusDoc } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * traffic-split through the real gateway (two workers) to real upstreams that
 * answer with their own name and record every request they get. Companies
 * are consumers behind key-auth; a tenant upstream is added by writing its
 * conf.d/tenants file and reloading.
 */

const NAMES = ['orders', 'orders-v2', 'acme-private', 'eu', 'office', 'tenant-77'] as const;
type Name = (typeof NAMES)[number];
const upstreams = new Map<Name, TestUpstream>();
/** What each upstream received: the headers of every request (probes excluded). */
const received = new Map<Name, Record<string, string | string[] | undefined>[]>();
/** Companies 1..40 for the canary, 42 (acme) and 77 (a tenant of its own once its file exists). */
const COMPANIES = [...Array.from({ length: 40 }, (_, i) => String(i + 1)), '42', '77'];
const keyOf = (company: string) => `key-${company}`;

let gw: RunningGateway;

const RULES = [
  { when: { company_id: ['42'] }, upstream: 'acme-private' },
  { upstream: 'tenant-{company_id}' },
  { when: { 'header:X-Canary': ['1'] }, upstream: 'orders-v2' },
  { when: { 'header:X-Region': ['~ eu-(west|north)-[0-9]+'] }, upstream: 'eu' },
  { when: { ip: ['10.0.0.0/8'] }, upstream: 'office' },
];

beforeAll(async () => {
  for (const name of NAMES) {
    received.set(name, []);
    upstreams.set(name, await startUpstream((req, res) => {
      received.get(name)!.push(req.headers);
      res.end(name);
    }));
  }
  const target = (name: Name) => ({ targets: [{ address: upstreams.get(name)!.address }] });
  gw = await startGateway(({ dir }) => {
    mkdirSync(join(dir, 'conf.d/tenants'), { recursive: true });
    return {
      include: ['conf.d/tenants/*.yaml'],
      // The peer (the test, on 127.0.0.1) is trusted to say who the client is: ip rules see X-Forwarded-For's address.
      server: { real_ip: { header: 'X-Forwarded-For', trusted: ['127.0.0.1/32'] } },
      upstreams: Object.fromEntries(NAMES.filter((n) => n !== 'tenant-77').map((n) => [n, target(n)])),
      consumers: COMPANIES.map((company) => ({
        username: `user-of-${company}`,
        attributes: { user_id: `u-${company}`, company_id: company },
        credentials: { 'key-auth': [{ key: keyOf(company) }] },
      })),
      routes: [
        { name: 'orders', paths: ['/orders'], upstream: 'orders', plugins: { 'key-auth': {}, 'traffic-split': { rules: RULES } } },
        { name: 'open', paths: ['/open'], upstream: 'orders', plugins: { 'traffic-split': { rules: RULES } } },
        {
          name: 'canary', paths: ['/canary'], upstream: 'orders',
          plugins: {
            'key-auth': {},
            'traffic-split': { rules: [{ weighted: [{ upstream: 'orders-v2', weight: 10 }, { upstream: 'orders', weight: 90 }] }], sticky: 'company_id' },
          },
        },
        {
          name: 'canary-any', paths: ['/canary-any'], upstream: 'orders',
          plugins: { 'traffic-split': { rules: [{ weighted: [{ upstream: 'orders-v2', weight: 10 }, { upstream: 'orders', weight: 90 }] }] } },
        },
      ],
    };
  });
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([...upstreams.values()].map((u) => u.close()));
});

/** One request on a connection of its own, so the kernel spreads them over both workers; the upstream that answered. */
async function via(path: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(gw.url(path), { headers: { connection: 'close', ...headers } });
  const body = await res.body.text();
  expect(res.statusCode, body).toBe(200);
  return body;
}

const as = (company: string, more: Record<string, string> = {}) => ({ apikey: keyOf(company), ...more });

/** Requests each worker of the live generation served since `before`. */
const servedSince = (before: StatusDoc, after: StatusDoc): number[] =>
  after.workers.map((w) => w.requests - (before.workers.find((b) => b.id === w.id)?.requests ?? 0));

describe('tenant routing', () => {
  test('company 42 goes to acme-private on every request, on both workers; everyone else to orders', async () => {
    const before = await gw.status();
    const acme = await Promise.all(Array.from({ length: 30 }, () => via('/orders/1', as('42'))));
    expect(new Set(acme)).toEqual(new Set(['acme-private']));
    const others = await Promise.all(['1', '2', '3', '77'].map((c) => via('/orders/1', as(c))));
    expect(new Set(others)).toEqual(new Set(['orders']));
    for (const n of servedSince(before, await gw.status())) expect(n).toBeGreaterThan(0);
  });

  test('a header rule, a ~ regex rule and an ip rule (the client address after real_ip)', async () => {
    expect(await via('/orders/1', as('3', { 'x-canary': '1' }))).toBe('orders-v2');
    expect(await via('/orders/1', as('3', { 'x-region': 'eu-north-1' }))).toBe('eu');
    expect(await via('/orders/1', as('3', { 'x-region': 'eu-north-1x' }))).toBe('orders');
    expect(await via('/orders/1', as('3', { 'x-forwarded-for': '10.9.8.7' }))).toBe('office');
    expect(await via('/orders/1', as('3', { 'x-forwarded-for': '11.9.8.7' }))).toBe('orders');
    // The first rule still wins: company 42 with a canary header stays on its own deployment.
    expect(await via('/orders/1', as('42', { 'x-canary': '1' }))).toBe('acme-private');
  });

  test('a tenant upstream added by a conf.d file and SIGHUP takes its company, without a restart', async () => {
    expect(await via('/orders/1', as('77'))).toBe('orders');
    const pid = gw.proc.pid;
    writeFileSync(join(gw.dir, 'conf.d/tenants/77.yaml'), stringify({ upstreams: { 'tenant-77': { targets: [upstreams.get('tenant-77')!.address] } } }));
    await gw.reload();
    expect(gw.proc.pid).toBe(pid);
    const after = await Promise.all(Array.from({ length: 10 }, () => via('/orders/1', as('77'))));
    expect(new Set(after)).toEqual(new Set(['tenant-77']));
    expect(await via('/orders/1', as('42'))).toBe('acme-private');
    expect(await via('/orders/1', as('3'))).toBe('orders');
  });
});

describe('canary', () => {
  /** The side murmur3 puts a company on for a 10/90 split: what sticky must do on every request, in every worker. */
  const sideOf = (company: string) => (murmur3(company) / 2 ** 32 * 100 < 10 ? 'orders-v2' : 'orders');

  test('10/90 without sticky: 5,000 requests over both workers land within 2 points of 10%', async () => {
    const before = await gw.status();
    // Kept-alive connections the kernel spread over both workers, 20 requests in flight.
    const pool = new Pool(gw.url(''), { connections: 20 });
    try {
      const answers = await Promise.all(Array.from({ length: 5000 }, async () => {
        const res = await pool.request({ path: '/canary-any/x', method: 'GET' });
        return res.body.text();
      }));
      const v2 = answers.filter((a) => a === 'orders-v2').length;
      expect(v2 + answers.filter((a) => a === 'orders').length).toBe(5000);
      expect(Math.abs(v2 / 5000 - 0.1)).toBeLessThan(0.02);
      console.log(`canary 10/90: ${(v2 / 50).toFixed(1)}% to orders-v2 over 5,000 requests`);
    } finally {
      await pool.close();
    }
    expect(servedSince(before, await gw.status()).every((n) => n > 0)).toBe(true);
  });

  test('with sticky: company_id, 320 requests of 40 companies: each company entirely on its side', async () => {
    const companies = COMPANIES.slice(0, 40);
    // These ids put companies on both sides; a canary that sent everyone one way would fail below.
    expect(new Set(companies.map(sideOf))).toEqual(new Set(['orders-v2', 'orders']));
    for (const company of companies) {
      const seen = await Promise.all(Array.from({ length: 8 }, () => via('/canary', as(company))));
      expect(new Set(seen), `company ${company}`).toEqual(new Set([sideOf(company)]));
    }
  });
});

describe('identity only from auth', () => {
  /** Each upstream's request count, to see where the spoofed requests went. */
  const counts = () => Object.fromEntries(NAMES.map((n) => [n, received.get(n)!.length]));

  test('a client sending X-Company-Id: 42 and the other identity headers never reaches acme-private', async () => {
    const before = counts();
    const spoof = 'X-Company-Id: 42\r\nX-Consumer-Username: user-of-42\r\nX-User-Id: u-42\r\nX-Anonymous-Consumer: false\r\n';
    // Without a key the auth route refuses; the route without auth proxies to its default, with no identity headers.
    expect(statusOf(await rawRequest(gw.port, `GET /orders/1 HTTP/1.1\r\nHost: x\r\n${spoof}Connection: close\r\n\r\n`))).toBe(401);
    const open = await rawRequest(gw.port, `GET /open/1 HTTP/1.1\r\nHost: x\r\n${spoof}Connection: close\r\n\r\n`);
    expect(statusOf(open)).toBe(200);
    expect(open.endsWith('orders')).toBe(true);
    // Company 3's key with company 42's headers: routed as company 3.
    const mixed = await rawRequest(gw.port, `GET /orders/1 HTTP/1.1\r\nHost: x\r\napikey: ${keyOf('3')}\r\n${spoof}Connection: close\r\n\r\n`);
    expect(statusOf(mixed)).toBe(200);
    const after = counts();
    expect(after['acme-private']).toBe(before['acme-private']);
    expect(after['orders']! - before['orders']!).toBe(2);
    const [fromOpen, fromMixed] = received.get('orders')!.slice(-2);
    expect(fromOpen!['x-company-id']).toBeUndefined();
    expect(fromOpen!['x-consumer-username']).toBeUndefined();
    expect(fromMixed!['x-company-id']).toBe('3');
    expect(fromMixed!['x-consumer-username']).toBe('user-of-3');
  });
});
