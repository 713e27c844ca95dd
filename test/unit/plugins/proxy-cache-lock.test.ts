import { describe, expect, it } from 'vitest';
import { proxyCache } from '../../../src/plugins/proxy-cache/index.ts';
import { Flights, lockKey } from '../../../src/plugins/proxy-cache/flight.ts';
import { entryKey } from '../../../src/plugins/proxy-cache/key.ts';
import { isHead, partsFor, readAt, writeEntry } from '../../../src/plugins/proxy-cache/store.ts';
import { SharedDict } from '../../../src/shdict/index.ts';
import { harness } from '../../helpers/plugin-harness.ts';
import type { Harness, RunResult } from '../../helpers/plugin-harness.ts';

/**
 * Single flight: this worker's requests (the harness) against a lock held
 * by "another worker", a Flights of its own on the same zone, which stores,
 * passes or fails the way the plugin's holder does.
 */

const NOW = Date.parse('2026-01-01T00:00:00Z');

interface Setup {
  readonly dict: SharedDict;
  readonly hh: Harness;
  /** The entry key of GET /w on route `test`. */
  readonly key: string;
  readonly material: string;
  /** Another worker: its lock outlives any wait in these tests. */
  readonly other: Flights;
}

/** The worker id of `other`, the lock holder standing for another worker. */
const OTHER = 999;

async function setup(conf: Record<string, unknown> = {}, workerAlive?: (id: number) => boolean): Promise<Setup> {
  const dict = SharedDict.create(1 << 20);
  const hh = harness([proxyCache], { 'proxy-cache': conf }, { zones: { sluice_cache: dict.buffer }, now: () => NOW, ...(workerAlive === undefined ? {} : { workerAlive }) });
  // A HEAD reads the GET's key and never stores nor locks: it tells us the key.
  const probe = await hh.run({ method: 'HEAD', path: '/w' });
  const key = entryKey('test', '/w', probe.header('x-cache-key')!);
  // The key material another worker's entry would carry: read from one this worker stores, then removed.
  await hh.run({ path: '/w', upstream: { headers: { 'content-type': 'text/plain' }, body: ['probe'] } });
  const stored = readAt(dict, key);
  if (stored === null || !isHead(stored)) throw new Error('probe entry not stored');
  for (const k of dict.getKeys(0)) dict.delete(k);
  return { dict, hh, key, material: stored.k, other: new Flights(dict, 60_000, OTHER, () => true) };
}

function takeLock(s: Setup): string {
  const claim = s.other.claim(s.key, true);
  if (claim.kind !== 'lock') throw new Error(`lock not taken: ${claim.kind}`);
  return claim.token;
}

const upstream = (body: string) => ({ headers: { 'content-type': 'text/plain' }, body: [body] });

/** What the waiter saw, and how long it waited. */
async function timed(p: Promise<RunResult>): Promise<{ r: RunResult; ms: number }> {
  const t = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t };
}

const hitBody = (r: RunResult): string => Buffer.from(r.exit!.body as Uint8Array).toString();

describe('proxy-cache single flight', () => {
  it('a miss waits for the worker fetching its key and is answered from the entry it stores (HIT)', async () => {
    const s = await setup();
    const token = takeLock(s);
    const waiters = [1, 2, 3].map(() => timed(s.hh.run({ path: '/w', upstream: upstream('not me') })));
    await new Promise((r) => setTimeout(r, 20)); // they are polling: nothing has answered them
    const body = Buffer.from('from the other worker');
    writeEntry(s.dict, s.key, null, s.key, { s: 200, h: ['content-type', 'text/plain'], t: NOW, a: 0, e: NOW + 60_000, n: body.length, p: partsFor(body.length), id: 'o.1', k: s.material }, body, 60_000);
    s.other.release(s.key, token);
    for (const { r } of await Promise.all(waiters)) {
      expect(r.header('x-cache-status')).toBe('HIT');
      expect(r.upstream).toBeNull();
      expect(hitBody(r)).toBe('from the other worker');
    }
  });

  it('a response that is not storable lets every waiter go upstream at once, and the misses after it', async () => {
    const s = await setup({ lock_timeout: '10s' });
    const token = takeLock(s);
    const cookie = { headers: { 'set-cookie': 'sid=1' }, body: ['mine'] };
    const waiters = [1, 2, 3].map(() => timed(s.hh.run({ path: '/w', upstream: cookie })));
    await new Promise((r) => setTimeout(r, 20));
    s.other.pass(s.key, token);
    for (const { r, ms } of await Promise.all(waiters)) {
      expect([r.header('x-cache-status'), r.body]).toEqual(['MISS', 'mine']);
      expect(ms).toBeLessThan(1000);
    }
    // Released, not expired: a later miss does not wait either.
    const later = await timed(s.hh.run({ path: '/w', upstream: cookie }));
    expect(later.ms).toBeLessThan(50);
  });

  it('a failed fetch lets one waiter take the lock over: it fetches and stores, the others HIT', async () => {
    const s = await setup();
    const token = takeLock(s);
    let fetched = 0;
    const waiters = [1, 2, 3, 4].map(() => s.hh.run({ path: '/w', upstream: upstream('taken over') }));
    await new Promise((r) => setTimeout(r, 20));
    s.other.release(s.key, token); // what the holder's log phase does when its upstream failed
    const rs = await Promise.all(waiters);
    for (const r of rs) if (r.upstream !== null) fetched++;
    expect(fetched).toBe(1);
    expect(rs.map((r) => r.header('x-cache-status')).sort()).toEqual(['HIT', 'HIT', 'HIT', 'MISS']);
    expect(rs.filter((r) => r.exit !== null).map(hitBody)).toEqual(['taken over', 'taken over', 'taken over']);
  });

  it('after lock_timeout a waiter goes upstream itself and stores nothing (the holder still will)', async () => {
    const s = await setup({ lock_timeout: '150ms' });
    takeLock(s);
    const { r, ms } = await timed(s.hh.run({ path: '/w', upstream: upstream('gave up') }));
    expect([r.header('x-cache-status'), r.body]).toEqual(['MISS', 'gave up']);
    expect(ms).toBeGreaterThanOrEqual(145);
    expect(ms).toBeLessThan(1000);
    expect(readAt(s.dict, s.key)).toBeNull();
  });

  it('the holder releases its lock when it stores, passes on a not-storable answer, unlocks on a failure', async () => {
    const s = await setup({ max_body_size: '8' });
    // The lock left behind by one request: its key is the entry key of the request's path and digest.
    const lock = async (path: string, up: { status?: number; headers?: Record<string, string>; body?: string[] }): Promise<unknown> => {
      const r = await s.hh.run({ path, upstream: up });
      return s.dict.get(lockKey(entryKey('test', path, r.header('x-cache-key')!)));
    };
    expect(await lock('/stored', upstream('ok'))).toBeUndefined();
    expect(await lock('/cookie', { headers: { 'set-cookie': 'a=1' }, body: ['x'] })).toBe('pass');
    expect(await lock('/large', upstream('more than eight'))).toBe('pass');
    expect(await lock('/down', { status: 502, body: ['x'] })).toBeUndefined();
    expect(await lock('/unlisted', { status: 500, body: ['x'] })).toBeUndefined();
  });

  it('lock_timeout 0 turns single flight off: a miss never waits', async () => {
    const s = await setup({ lock_timeout: '0s' });
    takeLock(s);
    const { r, ms } = await timed(s.hh.run({ path: '/w', upstream: upstream('direct') }));
    expect([r.header('x-cache-status'), r.body]).toEqual(['MISS', 'direct']);
    expect(ms).toBeLessThan(50);
  });

  it('a lock is deleted only by its holder; an exiting worker releases the locks it holds', () => {
    const dict = SharedDict.create(1 << 20);
    const alive = (): boolean => true;
    const a = new Flights(dict, 60_000, 10, alive); // tokens "a.<n>"
    const b = new Flights(dict, 60_000, 11, alive);
    const held = a.claim('k1', true);
    expect(held.kind).toBe('lock');
    expect(b.claim('k1', true).kind).toBe('wait');
    b.release('k1', 'a.2');
    expect(dict.get(lockKey('k1'))).toBe((held as { token: string }).token);
    a.claim('k2', true);
    a.releaseAll();
    expect([dict.get(lockKey('k1')), dict.get(lockKey('k2'))]).toEqual([undefined, undefined]);
    expect(b.claim('k1', true).kind).toBe('lock');
  });

  it('a lock whose worker exited is taken over at the next poll, not at lock_timeout', async () => {
    let otherRuns = true;
    let asked = 0;
    let twice: () => void = () => {};
    const polledTwice = new Promise<void>((resolve) => (twice = resolve));
    const s = await setup({ lock_timeout: '60s' }, (id) => {
      if (id === OTHER && ++asked === 2) twice();
      return id !== OTHER || otherRuns;
    });
    const token = takeLock(s);
    const waiting = timed(s.hh.run({ path: '/w', upstream: upstream('after the crash') }));
    await polledTwice; // two polls found the holder running, and left its lock alone
    expect(s.dict.get(lockKey(s.key))).toBe(token);
    otherRuns = false;
    const { r, ms } = await waiting;
    expect([r.header('x-cache-status'), r.body]).toEqual(['MISS', 'after the crash']);
    expect(ms).toBeLessThan(1000);
  });
});
