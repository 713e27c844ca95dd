import { describe, expect, it } from 'vitest';
import { HeaderList } from '../../../src/plugins/pdk/headers.ts';
import { proxyCache } from '../../../src/plugins/proxy-cache/index.ts';
import { keyMaterial, normalisedQuery, variantKey, varyNames } from '../../../src/plugins/proxy-cache/key.ts';
import type { KeyRequest, KeySpec } from '../../../src/plugins/proxy-cache/key.ts';
import { notModified, requestBypasses, verdict } from '../../../src/plugins/proxy-cache/rules.ts';
import type { StoreRules } from '../../../src/plugins/proxy-cache/rules.ts';
import { PART_BYTES, partsFor, readAt, readBody, writeEntry } from '../../../src/plugins/proxy-cache/store.ts';
import type { Head } from '../../../src/plugins/proxy-cache/store.ts';
import { SharedDict } from '../../../src/shdict/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

const h = (o: Record<string, string | string[]>): HeaderList =>
  new HeaderList(Object.entries(o).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v])));

describe('proxy-cache conf', () => {
  it('fills in the issue\'s defaults', () => {
    const c = checkConf(proxyCache, {});
    expect(c.ok).toBe(true);
    expect(c.conf).toEqual({
      dict: 'sluice_cache', methods: ['GET', 'HEAD'], statuses: [200, 301, 404], content_types: [], ttl: '5m',
      cache_control: true, vary_headers: [], vary_query: null, consumer_isolation: true, max_body_size: '1m',
      stale_while_revalidate: '0s', stale_if_error: '0s', lock_timeout: '5s', hide_cache_headers: false,
    });
  });

  it('refuses bad values at their position', () => {
    const c = checkConf(proxyCache, { statuses: [99], ttl: 'soon', vary_headers: ['a b'], methods: ['get'], content_types: ['json'], extra: 1 });
    expect(c.ok).toBe(false);
    const paths = c.errors.map((e) => e.split(':')[0]);
    for (const p of ['/statuses/0', '/ttl', '/vary_headers/0', '/methods/0', '/content_types/0']) expect(paths).toContain(p);
  });
});

const spec: KeySpec = { route: 'r', confDigest: 'c1', varyHeaders: [], varyQuery: null, isolation: true };
const req = (o: Partial<KeyRequest> = {}): KeyRequest => ({
  method: 'GET', path: '/x', query: '', headers: h({ host: 'a.example' }), identity: null, upstream: 'api', ...o,
});
const alice = { consumer: 'alice', user_id: null, company_id: null, anonymous: false, attributes: {} };
const bob = { ...alice, consumer: 'bob' };

describe('proxy-cache key', () => {
  it('the upstream the request goes to is in the key (a tenant\'s private upstream never answers another)', () => {
    expect(keyMaterial(spec, req({ upstream: 'acme-private' }))).not.toBe(keyMaterial(spec, req()));
  });

  it('GET and HEAD share a key; other methods do not', () => {
    expect(keyMaterial(spec, req({ method: 'HEAD' }))).toBe(keyMaterial(spec, req()));
    expect(keyMaterial(spec, req({ method: 'POST' }))).not.toBe(keyMaterial(spec, req()));
  });

  it('takes Host (case-insensitively), path and the conf digest', () => {
    expect(keyMaterial(spec, req({ headers: h({ host: 'A.Example' }) }))).toBe(keyMaterial(spec, req()));
    expect(keyMaterial(spec, req({ headers: h({ host: 'b.example' }) }))).not.toBe(keyMaterial(spec, req()));
    expect(keyMaterial(spec, req({ path: '/y' }))).not.toBe(keyMaterial(spec, req()));
    expect(keyMaterial({ ...spec, confDigest: 'c2' }, req())).not.toBe(keyMaterial(spec, req()));
  });

  it('sorts the query, or keeps only vary_query\'s arguments', () => {
    expect(normalisedQuery('b=2&a=1&a=0', null)).toBe('a=1&a=0&b=2');
    expect(normalisedQuery('b=2&a=1&utm=x', ['a', 'b'])).toBe('a=1&b=2');
    expect(keyMaterial(spec, req({ query: 'b=2&a=1' }))).toBe(keyMaterial(spec, req({ query: 'a=1&b=2' })));
    const only = { ...spec, varyQuery: ['page'] };
    expect(keyMaterial(only, req({ query: 'page=1&utm=a' }))).toBe(keyMaterial(only, req({ query: 'utm=b&page=1' })));
    expect(keyMaterial(only, req({ query: 'page=2' }))).not.toBe(keyMaterial(only, req({ query: 'page=1' })));
  });

  it('isolates consumers unless consumer_isolation is off', () => {
    expect(keyMaterial(spec, req({ identity: alice }))).not.toBe(keyMaterial(spec, req({ identity: bob })));
    expect(keyMaterial(spec, req({ identity: alice }))).not.toBe(keyMaterial(spec, req()));
    const shared = { ...spec, isolation: false };
    expect(keyMaterial(shared, req({ identity: alice }))).toBe(keyMaterial(shared, req({ identity: bob })));
  });

  it('takes the conf\'s vary headers and the response\'s Vary', () => {
    const v = { ...spec, varyHeaders: ['accept-language'] };
    const en = req({ headers: h({ host: 'a', 'Accept-Language': 'en' }) });
    const fr = req({ headers: h({ host: 'a', 'accept-language': 'fr' }) });
    expect(keyMaterial(v, en)).not.toBe(keyMaterial(v, fr));
    expect(varyNames(h({ vary: ['Accept-Encoding, Origin', 'origin'] }))).toEqual(['accept-encoding', 'origin']);
    expect(variantKey('k', ['origin'], h({ origin: 'https://a' }))).not.toBe(variantKey('k', ['origin'], h({ origin: 'https://b' })));
  });
});

const rules: StoreRules = { statuses: new Set([200, 301, 404]), contentTypes: new Set(), ttlMs: 300_000, cacheControl: true };
const anon = { authorization: false, isolatedConsumer: false };
const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('proxy-cache storability and freshness', () => {
  it('stores listed statuses for the conf ttl when the response gives none', () => {
    expect(verdict(rules, anon, 200, h({}), NOW)).toEqual({ store: true, freshMs: 300_000 });
    expect(verdict(rules, anon, 500, h({}), NOW).store).toBe(false);
    expect(verdict({ ...rules, statuses: new Set([206]) }, anon, 206, h({}), NOW).store).toBe(false);
  });

  it('never stores Set-Cookie, Vary: *, no-store, private, no-cache', () => {
    for (const hs of [{ 'set-cookie': 'a=1' }, { vary: 'Origin, *' }, { 'cache-control': 'no-store' }, { 'cache-control': 'private, max-age=60' }, { 'cache-control': 'no-cache' }]) {
      expect(verdict(rules, anon, 200, h(hs), NOW).store, JSON.stringify(hs)).toBe(false);
    }
  });

  it('with cache_control: false, ignores Cache-Control but still refuses Set-Cookie', () => {
    const off = { ...rules, cacheControl: false };
    expect(verdict(off, anon, 200, h({ 'cache-control': 'no-store, max-age=5' }), NOW)).toEqual({ store: true, freshMs: 300_000 });
    expect(verdict(off, anon, 200, h({ 'set-cookie': 'a=1' }), NOW).store).toBe(false);
  });

  it('s-maxage over max-age over Expires, less Age', () => {
    expect(verdict(rules, anon, 200, h({ 'cache-control': 'max-age=10, s-maxage=20' }), NOW)).toEqual({ store: true, freshMs: 20_000 });
    expect(verdict(rules, anon, 200, h({ 'cache-control': 'max-age=10', expires: new Date(NOW + 99_000).toUTCString() }), NOW)).toEqual({ store: true, freshMs: 10_000 });
    expect(verdict(rules, anon, 200, h({ date: new Date(NOW).toUTCString(), expires: new Date(NOW + 30_000).toUTCString() }), NOW)).toEqual({ store: true, freshMs: 30_000 });
    expect(verdict(rules, anon, 200, h({ expires: '0' }), NOW).store).toBe(false);
    expect(verdict(rules, anon, 200, h({ 'cache-control': 'max-age=10', age: '4' }), NOW)).toEqual({ store: true, freshMs: 6_000 });
    expect(verdict(rules, anon, 200, h({ 'cache-control': 'max-age=0' }), NOW).store).toBe(false);
  });

  it('stores an answer to Authorization only for an isolated consumer or a public response', () => {
    const auth = { authorization: true, isolatedConsumer: false };
    expect(verdict(rules, auth, 200, h({}), NOW).store).toBe(false);
    expect(verdict(rules, { authorization: true, isolatedConsumer: true }, 200, h({}), NOW).store).toBe(true);
    expect(verdict(rules, auth, 200, h({ 'cache-control': 'public' }), NOW).store).toBe(true);
    expect(verdict(rules, auth, 200, h({ 'cache-control': 's-maxage=5' }), NOW).store).toBe(true);
  });

  it('filters on content types when listed', () => {
    const json = { ...rules, contentTypes: new Set(['application/json']) };
    expect(verdict(json, anon, 200, h({ 'content-type': 'application/json; charset=utf-8' }), NOW).store).toBe(true);
    expect(verdict(json, anon, 200, h({ 'content-type': 'text/html' }), NOW).store).toBe(false);
  });

  it('a request\'s no-cache / no-store bypasses', () => {
    expect(requestBypasses(h({ 'cache-control': 'no-cache' }))).toBe(true);
    expect(requestBypasses(h({ 'cache-control': 'max-age=0, no-store' }))).toBe(true);
    expect(requestBypasses(h({ 'cache-control': 'max-age=0' }))).toBe(false);
  });

  it('matches validators: If-None-Match (weak) first, else If-Modified-Since', () => {
    const entry = h({ etag: '"v1"', 'last-modified': new Date(NOW).toUTCString() });
    expect(notModified(h({ 'if-none-match': 'W/"v1"' }), entry)).toBe(true);
    expect(notModified(h({ 'if-none-match': '"v0", "v1"' }), entry)).toBe(true);
    expect(notModified(h({ 'if-none-match': '"v2"', 'if-modified-since': new Date(NOW + 1000).toUTCString() }), entry)).toBe(false);
    expect(notModified(h({ 'if-modified-since': new Date(NOW).toUTCString() }), entry)).toBe(true);
    expect(notModified(h({ 'if-modified-since': new Date(NOW - 1000).toUTCString() }), entry)).toBe(false);
  });
});

describe('proxy-cache storage', () => {
  const head = (n: number, id: string): Head => ({ s: 200, h: ['content-type', 'text/plain'], t: 0, a: 0, e: 1, n, p: partsFor(n), id, k: 'material' });

  it('splits a body larger than a part and reads it back whole', () => {
    const dict = SharedDict.create(4 << 20);
    const body = Buffer.alloc(PART_BYTES * 2 + 5);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const hd = head(body.length, 'a');
    expect(hd.p).toBe(3);
    expect(writeEntry(dict, 'k', null, 'k', hd, body, 60_000)).toBe(true);
    expect(readAt(dict, 'k')).toEqual(hd);
    expect(Buffer.from(readBody(dict, 'k', hd)!).equals(body)).toBe(true);
  });

  it('an evicted part makes the entry a miss, never a short body', () => {
    const dict = SharedDict.create(4 << 20);
    const body = Buffer.alloc(PART_BYTES + 1, 7);
    const hd = head(body.length, 'b');
    writeEntry(dict, 'k', null, 'k', hd, body, 60_000);
    dict.delete('k#b#1');
    expect(readBody(dict, 'k', hd)).toBeNull();
  });

  it('a head names its own parts: a second writer never mixes with the first', () => {
    const dict = SharedDict.create(4 << 20);
    const one = Buffer.alloc(PART_BYTES + 1, 1);
    const two = Buffer.alloc(PART_BYTES + 1, 2);
    writeEntry(dict, 'k', null, 'k', head(one.length, 'one'), one, 60_000);
    // The second writer's parts are in, its head not yet: readers still get the first entry whole.
    dict.set('k#two#0', two.subarray(0, PART_BYTES), 60_000);
    const seen = readAt(dict, 'k') as Head;
    expect(seen.id).toBe('one');
    expect(Buffer.from(readBody(dict, 'k', seen)!).equals(one)).toBe(true);
  });

  it('a zone too small for the entry refuses it without throwing', () => {
    const dict = SharedDict.create(64 * 1024);
    const body = Buffer.alloc(PART_BYTES * 3, 1);
    expect(writeEntry(dict, 'k', null, 'k', head(body.length, 'c'), body, 60_000)).toBe(false);
    expect(readAt(dict, 'k')).toBeNull();
  });
});

describe('proxy-cache through the pipeline', () => {
  it('marks MISS with the key, BYPASS for other methods and request no-cache', async () => {
    const zones = { sluice_cache: SharedDict.create(1 << 20).buffer };
    const hh = harness([proxyCache], { 'proxy-cache': {} }, { zones });
    const miss = await hh.run({ path: '/x', headers: { host: 'a' }, upstream: { body: ['hello'] } });
    expect(miss.header('x-cache-status')).toBe('MISS');
    expect(miss.header('x-cache-key')).toMatch(/^[\w-]{12}$/);
    expect(miss.body).toBe('hello');
    expect((await hh.run({ method: 'POST', path: '/x' })).header('x-cache-status')).toBe('BYPASS');
    expect((await hh.run({ path: '/x', headers: { 'cache-control': 'no-cache' } })).header('x-cache-status')).toBe('BYPASS');
    expect((await hh.run({ path: '/x', body: 'q' })).header('x-cache-status')).toBe('BYPASS');
    const hidden = harness([proxyCache], { 'proxy-cache': { hide_cache_headers: true } }, { zones });
    const r = await hidden.run({ path: '/x' });
    expect(r.header('x-cache-status')).toBeUndefined();
    expect(r.header('x-cache-key')).toBeUndefined();
  });
});

describe('proxy-cache hits, through the pipeline', () => {
  it('MISS stores, HIT answers with Age, HEAD reads the GET entry, a validator gets 304, EXPIRED after the ttl', async () => {
    let now = NOW;
    const zones = { sluice_cache: SharedDict.create(1 << 20).buffer };
    const hh = harness([proxyCache], { 'proxy-cache': { ttl: '10s' } }, { zones, now: () => now });
    const upstream = { headers: { 'content-type': 'text/plain', etag: '"e1"' }, body: ['he', 'llo'] };
    expect((await hh.run({ path: '/x', headers: { host: 'a' }, upstream })).header('x-cache-status')).toBe('MISS');
    now += 3_000;
    const hit = await hh.run({ path: '/x', headers: { host: 'a' } });
    expect(hit.exit).not.toBeNull();
    expect(hit.status).toBe(200);
    expect(Buffer.from(hit.exit!.body as Uint8Array).toString()).toBe('hello');
    expect(hit.header('x-cache-status')).toBe('HIT');
    expect(hit.header('age')).toBe('3');
    expect(hit.header('etag')).toBe('"e1"');
    expect((await hh.run({ method: 'HEAD', path: '/x', headers: { host: 'a' } })).header('x-cache-status')).toBe('HIT');
    const cond = await hh.run({ path: '/x', headers: { host: 'a', 'if-none-match': '"e1"' } });
    expect(cond.status).toBe(304);
    expect(cond.exit!.body).toBeUndefined();
    expect(cond.header('etag')).toBe('"e1"');
    expect(cond.header('content-type')).toBeUndefined();
    now += 8_000;
    expect((await hh.run({ path: '/x', headers: { host: 'a' }, upstream })).header('x-cache-status')).toBe('EXPIRED');
    expect((await hh.run({ path: '/x', headers: { host: 'a' } })).header('x-cache-status')).toBe('HIT');
  });

  it('a HEAD miss stores nothing; a body over max_body_size streams through unstored', async () => {
    const zones = { sluice_cache: SharedDict.create(1 << 20).buffer };
    const hh = harness([proxyCache], { 'proxy-cache': { max_body_size: '4' } }, { zones });
    await hh.run({ method: 'HEAD', path: '/h' });
    expect((await hh.run({ path: '/h' })).header('x-cache-status')).toBe('MISS');
    const big = await hh.run({ path: '/big', upstream: { body: ['abc', 'def'] } });
    expect(big.body).toBe('abcdef');
    expect((await hh.run({ path: '/big' })).header('x-cache-status')).toBe('MISS');
    await hh.run({ path: '/small', upstream: { body: ['abc'] } });
    expect((await hh.run({ path: '/small' })).header('x-cache-status')).toBe('HIT');
  });
});
