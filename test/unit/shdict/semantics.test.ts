import { describe, expect, it } from 'vitest';
import { SharedDict, ShdictError } from '../../../src/shdict/index.ts';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function dict(size = 1 << 20): { d: SharedDict; advance: (ms: number) => void } {
  const c = clock();
  return { d: SharedDict.create(size, { now: c.now }), advance: c.advance };
}

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as ShdictError).code;
  }
  return undefined;
};

describe('shdict values', () => {
  it('round-trips every value type', () => {
    const { d } = dict();
    const values = [0, -1.5, Number.MAX_VALUE, NaN, '', 'ascii', 'ünïcödé ✓', 'x'.repeat(5000), true, false, null, { a: [1, 'b'] }, [1, 2]];
    values.forEach((v, i) => expect(d.set(`k${i}`, v)).toEqual({ ok: true, forcible: false }));
    values.forEach((v, i) => expect(d.get(`k${i}`)).toEqual(v));
    const bytes = new Uint8Array([1, 2, 3]);
    d.set('bytes', bytes);
    const back = d.get('bytes') as Uint8Array;
    expect(back).toBeInstanceOf(Uint8Array);
    expect([...back]).toEqual([1, 2, 3]);
    expect(back.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    d.checkInvariants();
  });

  it('keeps flags (uint32) and returns them through getWithFlags and getStale', () => {
    const { d } = dict();
    d.set('a', 'v', 0, 0xffff_ffff);
    expect(d.get('a')).toBe('v');
    expect(d.getWithFlags('a')).toEqual({ value: 'v', flags: 0xffff_ffff });
    expect(d.getStale('a')).toEqual({ value: 'v', flags: 0xffff_ffff, stale: false });
    expect(d.getWithFlags('missing')).toBeUndefined();
  });

  it('distinguishes keys that differ only in length, case, or non-ASCII bytes', () => {
    const { d } = dict();
    const keys = ['a', 'ab', 'abc', 'abcd', 'abcde', 'A', 'é', 'e\u0301', 'Ã©', 'ключ', '🔑', 'x'.repeat(65535)];
    keys.forEach((k, i) => d.set(k, i));
    keys.forEach((k, i) => expect(d.get(k)).toBe(i));
    expect(new Set(d.getKeys(0))).toEqual(new Set(keys));
    d.checkInvariants();
  });

  it('throws coded errors for programmer mistakes', () => {
    const { d } = dict();
    expect(codeOf(() => d.get(''))).toBe('SHDICT_ERR_BAD_KEY');
    expect(codeOf(() => d.get(42 as unknown as string))).toBe('SHDICT_ERR_BAD_KEY');
    expect(codeOf(() => d.get('x'.repeat(65536)))).toBe('SHDICT_ERR_KEY_TOO_LONG');
    expect(codeOf(() => d.set('é'.repeat(40000), 1))).toBe('SHDICT_ERR_KEY_TOO_LONG');
    expect(codeOf(() => d.set('k', (() => 1) as unknown as number))).toBe('SHDICT_ERR_BAD_VALUE');
    expect(codeOf(() => d.set('k', 1, -1))).toBe('SHDICT_ERR_BAD_TTL');
    expect(codeOf(() => d.set('k', 1, 0, -1))).toBe('SHDICT_ERR_BAD_VALUE');
    expect(codeOf(() => d.incr('k', '1' as unknown as number))).toBe('SHDICT_ERR_BAD_VALUE');
    expect(codeOf(() => d.lpush('k', {} as unknown as string))).toBe('SHDICT_ERR_BAD_VALUE');
    expect(codeOf(() => SharedDict.create(100))).toBe('SHDICT_ERR_BAD_SIZE');
    expect(codeOf(() => SharedDict.create(1 << 20, { stripes: 3 }))).toBe('SHDICT_ERR_BAD_SIZE');
    expect(codeOf(() => SharedDict.attach(new SharedArrayBuffer(1024)))).toBe('SHDICT_ERR_BAD_ZONE');
    expect(codeOf(() => SharedDict.attach(d.buffer, { owner: 0 }))).toBe('SHDICT_ERR_BAD_OWNER');
  });
});

describe('shdict writes (OpenResty semantics)', () => {
  it('set overwrites, set(undefined) and delete remove', () => {
    const { d } = dict();
    d.set('k', 'short');
    d.set('k', 'a much longer value that cannot reuse the old block in place'.repeat(3));
    expect(d.get('k')).toMatch(/^a much longer/);
    d.set('k', 1);
    expect(d.get('k')).toBe(1);
    expect(d.set('k', undefined)).toEqual({ ok: true, forcible: false });
    expect(d.get('k')).toBeUndefined();
    d.set('k', 2);
    expect(d.delete('k')).toBe(true);
    expect(d.delete('k')).toBe(false);
    d.checkInvariants();
  });

  it('add only stores a missing or expired key', () => {
    const { d, advance } = dict();
    expect(d.add('k', 1, 100)).toEqual({ ok: true, forcible: false });
    expect(d.add('k', 2)).toEqual({ ok: false, err: 'exists', forcible: false });
    expect(d.safeAdd('k', 2)).toEqual({ ok: false, err: 'exists', forcible: false });
    advance(100);
    expect(d.add('k', 3)).toEqual({ ok: true, forcible: false });
    expect(d.get('k')).toBe(3);
    expect(d.ttl('k')).toBe(0);
  });

  it('replace only stores a live key', () => {
    const { d, advance } = dict();
    expect(d.replace('k', 1)).toEqual({ ok: false, err: 'not found', forcible: false });
    d.set('k', 1, 50);
    expect(d.replace('k', 2, 0, 9)).toEqual({ ok: true, forcible: false });
    expect(d.getWithFlags('k')).toEqual({ value: 2, flags: 9 });
    d.set('e', 1, 10);
    advance(10);
    expect(d.replace('e', 2)).toEqual({ ok: false, err: 'not found', forcible: false });
  });

  it('incr follows the init / init_ttl / expiry rules', () => {
    const { d, advance } = dict();
    expect(d.incr('n', 1)).toEqual({ err: 'not found', forcible: false });
    expect(d.incr('n', 2, 10, 1000)).toEqual({ value: 12, forcible: false });
    expect(d.ttl('n')).toBe(1000);
    advance(400);
    expect(d.incr('n', -0.5, 99, 5)).toEqual({ value: 11.5, forcible: false });
    expect(d.ttl('n')).toBe(600); // the existing expiry is kept, init_ttl ignored
    advance(600);
    expect(d.incr('n', 1)).toEqual({ err: 'not found', forcible: false });
    expect(d.incr('n', 1, 0)).toEqual({ value: 1, forcible: false });
    expect(d.ttl('n')).toBe(0);
    d.set('s', 'text');
    expect(d.incr('s', 1)).toEqual({ err: 'not a number', forcible: false });
    expect(d.incr('s', 1, 0)).toEqual({ err: 'not a number', forcible: false });
  });

  it('ttl and expire', () => {
    const { d, advance } = dict();
    expect(d.ttl('k')).toBeUndefined();
    expect(d.expire('k', 10)).toEqual({ ok: false, err: 'not found' });
    d.set('k', 1, 0);
    expect(d.ttl('k')).toBe(0);
    expect(d.expire('k', 250)).toEqual({ ok: true });
    advance(100);
    expect(d.ttl('k')).toBe(150);
    expect(d.expire('k', 0)).toEqual({ ok: true });
    advance(10_000);
    expect(d.get('k')).toBe(1);
    d.expire('k', 1);
    advance(1);
    expect(d.ttl('k')).toBeUndefined();
    expect(d.get('k')).toBeUndefined();
    expect(d.getStale('k')).toEqual({ value: 1, flags: 0, stale: true });
    expect(d.expire('k', 5)).toEqual({ ok: false, err: 'not found' });
  });

  it('a ttl counts from the write, not from the clock reading of an earlier operation', () => {
    const { d, advance } = dict();
    d.set('older', 1, 3_600_000);
    d.set('r', 1);
    const writes: [string, () => { ok: boolean }][] = [
      ['a', () => d.set('a', 1, 10_000)],
      ['b', () => d.safeSet('b', 1, 10_000)],
      ['c', () => d.add('c', 1, 10_000)],
      ['r', () => d.replace('r', 2, 10_000)],
    ];
    for (const [key, write] of writes) {
      expect(d.get('older')).toBe(1); // reads the clock (the key has a ttl)
      advance(60_000); // a minute with no dict call on this thread
      expect(write().ok, key).toBe(true);
      expect(d.ttl(key), key).toBe(10_000);
    }
  });

  it('lists: push, pop from both ends, length, type errors, removal when empty', () => {
    const { d } = dict();
    expect(d.lpush('l', 'b')).toEqual({ length: 1 });
    expect(d.lpush('l', 'a')).toEqual({ length: 2 });
    expect(d.rpush('l', 3)).toEqual({ length: 3 });
    expect(d.rpush('l', 'ü')).toEqual({ length: 4 });
    expect(d.llen('l')).toBe(4);
    expect(d.get('l')).toBeUndefined();
    d.checkInvariants();
    expect(d.lpop('l')).toBe('a');
    expect(d.rpop('l')).toBe('ü');
    expect(d.rpop('l')).toBe(3);
    expect(d.lpop('l')).toBe('b');
    expect(d.lpop('l')).toBeUndefined();
    expect(d.llen('l')).toBe(0);
    expect(d.count()).toBe(0);
    d.set('s', 1);
    expect(d.lpush('s', 1)).toEqual({ err: 'value not a list' });
    expect(d.lpop('s')).toBeUndefined();
    expect(d.llen('s')).toBe(0);
    for (let i = 0; i < 100; i++) d.rpush('big', i);
    d.set('big', 'overwritten');
    expect(d.get('big')).toBe('overwritten');
    d.checkInvariants();
  });

  it('list pushes never evict', () => {
    const d = SharedDict.create(16384, { stripes: 1 });
    let last: { length?: number; err?: string } = {};
    for (let i = 0; i < 10_000 && last.err === undefined; i++) last = d.rpush('l', 'x'.repeat(100));
    expect(last).toEqual({ err: 'no memory' });
    expect(d.lpush('other', 1)).toEqual({ err: 'no memory' });
    expect(d.llen('l')).toBeGreaterThan(50);
    d.checkInvariants();
  });

  it('compareAndSet', () => {
    const { d, advance } = dict();
    expect(d.compareAndSet('c', 1, 2)).toEqual({ ok: false, forcible: false });
    expect(d.compareAndSet('c', undefined, 5, 100)).toEqual({ ok: true, value: 5, forcible: false });
    expect(d.compareAndSet('c', undefined, 6)).toEqual({ ok: false, value: 5, forcible: false });
    expect(d.compareAndSet('c', 4, 6)).toEqual({ ok: false, value: 5, forcible: false });
    expect(d.compareAndSet('c', 5, 6)).toEqual({ ok: true, value: 6, forcible: false });
    expect(d.ttl('c')).toBe(100);
    expect(d.compareAndSet('c', 6, 7, 0)).toEqual({ ok: true, value: 7, forcible: false });
    expect(d.ttl('c')).toBe(0);
    d.set('s', 'x');
    expect(d.compareAndSet('s', 1, 2)).toEqual({ ok: false, err: 'not a number', forcible: false });
    d.set('e', 1, 10);
    advance(10);
    expect(d.compareAndSet('e', undefined, 3)).toEqual({ ok: true, value: 3, forcible: false });
  });

  it('deleteIf removes only the value it is given, never a later holder\'s', () => {
    const { d, advance } = dict();
    expect(d.add('lock', 'w1.1', 10).ok).toBe(true);
    expect(d.deleteIf('lock', 'w2.1')).toBe(false);
    expect(d.get('lock')).toBe('w1.1');
    // The first holder's lock expired and another took it: the first one's release leaves it.
    advance(10);
    expect(d.add('lock', 'w2.1', 10).ok).toBe(true);
    expect(d.deleteIf('lock', 'w1.1')).toBe(false);
    expect(d.deleteIf('lock', 'w2.1')).toBe(true);
    expect(d.get('lock')).toBeUndefined();
    expect(d.deleteIf('lock', 'w2.1')).toBe(false);
    d.set('n', 7);
    expect(d.deleteIf('n', '7')).toBe(false);
    expect(d.deleteIf('n', 7)).toBe(true);
    d.set('o', { a: 1 });
    expect(d.deleteIf('o', '[object Object]')).toBe(false);
    d.checkInvariants();
  });

  it('update runs the callback under the lock and stores its result', () => {
    const { d, advance } = dict();
    const r = d.update('tb', (cur) => ({ tokens: ((cur as { tokens: number } | undefined)?.tokens ?? 10) - 1 }), 1000);
    expect(r).toEqual({ ok: true, value: { tokens: 9 }, forcible: false });
    d.update('tb', (cur) => ({ tokens: (cur as { tokens: number }).tokens - 1 }));
    expect(d.get('tb')).toEqual({ tokens: 8 });
    expect(d.ttl('tb')).toBe(1000); // ttl undefined keeps the expiry
    expect(d.update('tb', () => undefined)).toEqual({ ok: false, value: { tokens: 8 }, forcible: false });
    expect(d.update('none', () => undefined)).toEqual({ ok: false, forcible: false });
    expect(() => d.update('tb', () => { throw new Error('boom'); })).toThrow('boom');
    expect(d.get('tb')).toEqual({ tokens: 8 });
    expect(codeOf(() => d.update('tb', () => d.get('other') as number))).toBe('SHDICT_ERR_REENTRANT');
    expect(d.get('tb')).toEqual({ tokens: 8 }); // the stripe was released after the throw
    advance(1000);
    expect(d.update('tb', (cur) => (cur === undefined ? 'fresh' : 'stale'))).toMatchObject({ ok: true, value: 'fresh' });
    d.checkInvariants();
  });

  it('update of a number in place keeps or sets the expiry, keeps the flags, and can change the type', () => {
    const { d, advance } = dict();
    d.set('n', 1, 1000, 7);
    expect(d.update('n', (cur) => (cur as number) + 1)).toEqual({ ok: true, value: 2, forcible: false });
    expect(d.getWithFlags('n')).toEqual({ value: 2, flags: 7 });
    expect(d.ttl('n')).toBe(1000); // ttl undefined keeps the expiry
    advance(400);
    expect(d.update('n', (cur) => (cur as number) * 10, 5000)).toEqual({ ok: true, value: 20, forcible: false });
    expect(d.ttl('n')).toBe(5000);
    expect(d.update('n', (cur) => `was ${String(cur)}`)).toEqual({ ok: true, value: 'was 20', forcible: false });
    expect(d.getWithFlags('n')).toEqual({ value: 'was 20', flags: 7 });
    expect(d.update('n', () => 3)).toEqual({ ok: true, value: 3, forcible: false });
    expect(d.incr('n', 1)).toEqual({ value: 4, forcible: false });
    d.checkInvariants();
  });

  it('flushAll expires everything, flushExpired frees it, getKeys lists live keys', () => {
    const { d, advance } = dict();
    for (let i = 0; i < 50; i++) d.set(`k${i}`, i, i < 20 ? 10 : 0);
    expect(d.getKeys(0)).toHaveLength(50);
    expect(d.getKeys(7)).toHaveLength(7);
    expect(d.getKeys()).toHaveLength(50);
    advance(10);
    expect(d.getKeys(0)).toHaveLength(30);
    expect(d.flushExpired(5)).toBe(5);
    expect(d.count()).toBe(45);
    expect(d.flushExpired()).toBe(15);
    expect(d.count()).toBe(30);
    d.flushAll();
    expect(d.get('k25')).toBeUndefined();
    expect(d.getStale('k25')).toEqual({ value: 25, flags: 0, stale: true });
    expect(d.getKeys(0)).toEqual([]);
    const before = d.freeSpace();
    expect(d.flushExpired(0)).toBe(30);
    expect(d.freeSpace()).toBeGreaterThan(before);
    expect(d.stats()).toEqual({ capacity: 1 << 20, freeSpace: d.freeSpace(), keys: 0 });
    d.checkInvariants();
  });

  it('whole-zone walks visit every stripe, whatever the first one holds', () => {
    let t = 100;
    const d = SharedDict.create(1 << 20, { stripes: 16, now: () => t });
    for (let i = 0; i < 200; i++) d.set(`k${i}`, i, i % 3 === 0 ? 0 : 10);
    t += 10;
    expect(d.getKeys(0)).toHaveLength(67);
    expect(d.flushExpired()).toBe(133);
    expect(d.count()).toBe(67);
    d.flushAll();
    expect(d.getKeys(0)).toEqual([]);
    expect(d.flushExpired(0)).toBe(67);
    d.checkInvariants();
  });

  it('attach sees the same zone', () => {
    const { d } = dict();
    const other = SharedDict.attach(d.buffer, { owner: 9 });
    d.set('k', 'v');
    expect(other.get('k')).toBe('v');
    other.incr('n', 1, 41);
    expect(d.get('n')).toBe(42);
    expect(other.capacity()).toBe(d.capacity());
  });
});
