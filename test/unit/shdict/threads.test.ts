import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedDict, type ShdictError } from '../../../src/shdict/index.ts';
import { HEADER_BYTES, S_FREE_BYTES, S_LOCK, STRIPE_RECORD_WORDS } from '../../../src/shdict/layout.ts';
import type { Job } from '../../fixtures/shdict/worker.ts';

type JobSpec = Job extends infer J ? (J extends Job ? Omit<J, 'buffer' | 'gate'> : never) : never;

/** Runs one worker per spec on `buffer`, released together; resolves with their results. */
async function runWorkers<T>(buffer: SharedArrayBuffer, specs: JobSpec[]): Promise<T[]> {
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const url = new URL('../../fixtures/shdict/worker.ts', import.meta.url);
  const results = specs.map((spec) => {
    const w = new Worker(url, { workerData: { ...spec, buffer, gate: gate.buffer } });
    return new Promise<T>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', () => resolve(undefined as T));
    });
  });
  while (Atomics.load(gate, 0) < specs.length) await new Promise((r) => setTimeout(r, 2));
  Atomics.store(gate, 1, 1);
  Atomics.notify(gate, 1);
  return Promise.all(results);
}

describe('shdict across threads', () => {
  it('4 threads x 100k incr on shared keys give the exact total', async () => {
    const d = SharedDict.create(1 << 20);
    const specs = [1, 2, 3, 4].map((owner) => ({ mode: 'incr' as const, owner, n: 100_000, keys: 8 }));
    await runWorkers(d.buffer, specs);
    let total = 0;
    for (let k = 0; k < 8; k++) total += d.get(`shared:${k}`) as number;
    expect(total).toBe(400_000);
    expect(d.get('shared:0')).toBe(50_000);
    d.checkInvariants();
  });

  it('concurrent add on one key has exactly one winner', async () => {
    const d = SharedDict.create(1 << 20);
    const rounds = 2000;
    const wins = await runWorkers<number[]>(d.buffer, [1, 2, 3, 4].map((owner) => ({ mode: 'add' as const, owner, rounds })));
    const winners = new Array<number>(rounds).fill(0);
    for (const w of wins) for (const r of w) winners[r]!++;
    expect(winners.every((n) => n === 1)).toBe(true);
    for (let r = 0; r < rounds; r++) expect(wins[(d.get(`lock:${r}`) as number) - 1]).toContain(r);
    d.checkInvariants();
  });

  it('a lock held by a dead owner blocks with a timeout until releaseLocksOwnedBy frees it', async () => {
    const d = SharedDict.create(1 << 20);
    d.set('victim', 'before');
    await runWorkers(d.buffer, [{ mode: 'die', owner: 7, key: 'victim' }]);
    const impatient = SharedDict.attach(d.buffer, { lockTimeoutMs: 20 });
    let code: string | undefined;
    try {
      impatient.get('victim');
    } catch (e) {
      code = (e as ShdictError).code;
    }
    expect(code).toBe('SHDICT_ERR_LOCK_TIMEOUT');
    expect(d.releaseLocksOwnedBy(8)).toBe(0);
    expect(SharedDict.releaseLocksOwnedBy(d.buffer, 7)).toBe(1);
    expect(d.releaseLocksOwnedBy(7)).toBe(0);
    expect(impatient.get('victim')).toBe('before'); // the stripe was intact, so it was kept
    d.checkInvariants();
  });

  it('resets a stripe its dead owner left damaged, keeping the other stripes', () => {
    const d = SharedDict.create(1 << 20, { stripes: 4 });
    for (let i = 0; i < 400; i++) d.set(`k${i}`, i);
    const i32 = new Int32Array(d.buffer);
    const rec = (HEADER_BYTES >> 2) + 2 * STRIPE_RECORD_WORDS;
    Atomics.store(i32, rec + S_LOCK, 5); // owner 5 died inside stripe 2...
    i32[rec + S_FREE_BYTES]! -= 8; // ...half-way through an allocation
    expect(d.releaseLocksOwnedBy(5)).toBe(1);
    d.checkInvariants();
    const left = Array.from({ length: 400 }, (_, i) => d.get(`k${i}`)).filter((v) => v !== undefined);
    expect(left.length).toBeGreaterThan(200);
    expect(left.length).toBeLessThan(400);
    expect(d.count()).toBe(left.length);
  });
});
