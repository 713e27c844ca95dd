import { describe, expect, it } from 'vitest';
import { SharedDict } from '../../../src/shdict/index.ts';

function clocked(size: number, stripes: number): { d: SharedDict; advance: (ms: number) => void } {
  let t = 5_000;
  return { d: SharedDict.create(size, { stripes, now: () => t }), advance: (ms) => (t += ms) };
}

/** Deterministic PRNG (mulberry32), so a failing churn run can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const KB = 'x'.repeat(1000);

/** Sets k0, k1, ... of ~1 KB until one more would evict; returns how many fit. */
function fill(d: SharedDict): number {
  let n = 0;
  while (d.safeSet(`k${n}`, KB).ok) n++;
  return n;
}

describe('shdict LRU eviction', () => {
  it('evicts the least recently used item, and a read refreshes recency', () => {
    const { d } = clocked(16384, 1);
    const n = fill(d);
    expect(n).toBeGreaterThan(5);
    d.get('k0');
    d.replace('k1', KB); // a write is a use too
    expect(d.set('new', KB)).toEqual({ ok: true, forcible: true });
    expect(d.get('k0')).toBe(KB);
    expect(d.get('k1')).toBe(KB);
    expect(d.get('k2')).toBeUndefined();
    expect(d.set('new2', KB)).toEqual({ ok: true, forcible: true });
    expect(d.get('k3')).toBeUndefined();
    expect(d.get('new')).toBe(KB);
    d.checkInvariants();
  });

  it('safeSet, safeAdd and pushes answer "no memory" instead of evicting', () => {
    const { d } = clocked(16384, 1);
    const n = fill(d);
    expect(d.safeSet('more', KB)).toEqual({ ok: false, err: 'no memory', forcible: false });
    expect(d.safeAdd('more', KB)).toEqual({ ok: false, err: 'no memory', forcible: false });
    expect(d.rpush('list', KB)).toEqual({ err: 'no memory' });
    expect(d.count()).toBe(n);
    expect(d.add('more', KB)).toEqual({ ok: true, forcible: true });
    expect(d.incr('ctr', 1, 0)).toMatchObject({ value: 1 });
    d.checkInvariants();
  });

  it('reclaims expired items before valid ones, without reporting forcible', () => {
    const { d, advance } = clocked(16384, 1);
    let n = 0;
    while (d.safeSet(`k${n}`, KB, n % 2 === 0 ? 100 : 0).ok) n++;
    advance(100);
    for (let i = 0; i < Math.floor(n / 2); i++) expect(d.set(`new${i}`, KB).forcible).toBe(false);
    for (let i = 1; i < n; i += 2) expect(d.get(`k${i}`)).toBe(KB);
    d.checkInvariants();
  });

  it('reports "no memory" for an item larger than a stripe', () => {
    const { d } = clocked(65536, 4);
    expect(d.set('huge', 'x'.repeat(20_000))).toEqual({ ok: false, err: 'no memory', forcible: false });
    expect(d.set('fits', 'x'.repeat(10_000)).ok).toBe(true);
    d.checkInvariants();
  });

  it('a 64 MiB zone holds at least 700,000 counters with 24-byte keys before evicting', () => {
    const d = SharedDict.create(64 << 20);
    let i = 0;
    for (; ; i++) {
      const r = d.incr(`counter:${String(i).padStart(16, '0')}`, 1, 0);
      if (r.forcible || r.err !== undefined) break;
    }
    expect(i).toBeGreaterThanOrEqual(700_000);
    expect(d.buffer.byteLength).toBe(64 << 20);
  });
});

describe('shdict under churn', () => {
  it('keeps every invariant through fill, mixed-size churn, expiry and flushes', () => {
    const { d, advance } = clocked(256 << 10, 4);
    const rand = rng(42);
    const written = new Map<string, unknown>(); // last value written per key
    const key = (): string => `key:${Math.floor(rand() * 600)}`;
    const value = (): unknown => {
      const r = rand();
      if (r < 0.3) return Math.floor(rand() * 1000);
      if (r < 0.8) return 'v'.repeat(Math.floor(rand() ** 3 * 6000));
      if (r < 0.9) return { n: Math.floor(rand() * 10), s: 'é'.repeat(Math.floor(rand() * 50)) };
      return new Uint8Array(Math.floor(rand() * 300)).fill(7);
    };
    let evicted = 0;
    for (let op = 0; op < 20_000; op++) {
      const k = key();
      const r = rand();
      if (r < 0.35) {
        const v = value();
        const res = d.set(k, v as string, rand() < 0.3 ? Math.floor(rand() * 50) : 0);
        if (res.forcible) evicted++;
        if (res.ok) written.set(k, v);
        else written.delete(k);
      } else if (r < 0.45) {
        const v = value();
        if (d.safeSet(k, v as string).ok) written.set(k, v);
        else written.delete(k);
      } else if (r < 0.7) {
        const got = d.get(k);
        // Eviction and expiry may lose a key; a key is never wrong.
        if (got !== undefined) expect(got).toEqual(written.get(k));
      } else if (r < 0.8) {
        const res = d.incr(k, 1, 0, 20);
        if (res.value !== undefined) written.set(k, res.value);
      } else if (r < 0.85) {
        d.delete(k);
        written.delete(k);
      } else if (r < 0.9) {
        const lk = `list:${Math.floor(rand() * 20)}`;
        if (rand() < 0.6) d.rpush(lk, 'item'.repeat(Math.floor(rand() * 40)));
        else d.lpop(lk);
      } else if (r < 0.97) {
        advance(Math.floor(rand() * 10));
      } else if (r < 0.995) {
        d.flushExpired(Math.floor(rand() * 20));
      } else {
        d.flushAll();
        written.clear();
      }
      if (op % 500 === 0) d.checkInvariants();
    }
    d.checkInvariants();
    expect(evicted).toBeGreaterThan(0);
    expect(d.flushAll()).toBeUndefined();
    d.flushExpired();
    expect(d.count()).toBe(0);
    d.checkInvariants();
    expect(d.buffer.byteLength).toBe(256 << 10);
    // Fully coalesced again: one free block per stripe, so one large item per stripe fits.
    expect(d.safeSet('big', 'x'.repeat(50_000)).ok).toBe(true);
  });
});
