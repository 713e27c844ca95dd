import type { SharedDict } from '../../src/shdict/index.ts';

/** 24-byte keys, distinct per thread so "disjoint keys" really share nothing but stripes. */
export function makeKeys(thread: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `rl:t${thread}:client:${String(i).padStart(8, '0')}`.padEnd(24, '.'));
}

export const OPS = ['get', 'set', 'incr', 'add', 'cas', 'update'] as const;
export type Op = (typeof OPS)[number];

/** Fills the dict with a number per key so every op hits an existing counter. */
export function prefill(d: SharedDict, keys: readonly string[]): void {
  for (const k of keys) d.set(k, 1);
}

const bump = (v: unknown): number => (v as number) + 1;

/** Runs `op` `n` times round-robin over `keys`; returns a checksum so nothing is dead code. */
export function runOp(d: SharedDict, op: Op, keys: readonly string[], n: number): number {
  const m = keys.length;
  let sum = 0;
  switch (op) {
    case 'get':
      for (let i = 0; i < n; i++) sum += d.get(keys[i % m]!) as number;
      break;
    case 'set':
      for (let i = 0; i < n; i++) sum += d.set(keys[i % m]!, i).ok ? 1 : 0;
      break;
    case 'incr':
      for (let i = 0; i < n; i++) sum += d.incr(keys[i % m]!, 1).value!;
      break;
    case 'add': // on existing keys: the "exists" answer a lock attempt usually gets
      for (let i = 0; i < n; i++) sum += d.add(keys[i % m]!, i).ok ? 1 : 0;
      break;
    case 'cas':
      for (let i = 0; i < n; i++) {
        const k = keys[i % m]!;
        const r = d.compareAndSet(k, sum, sum + 1);
        sum = r.ok ? sum + 1 : r.value!;
      }
      break;
    case 'update':
      for (let i = 0; i < n; i++) sum += d.update(keys[i % m]!, bump).ok ? 1 : 0;
      break;
  }
  return sum;
}

/** Same workload on a Map, the single-thread ceiling. */
export function runMap(map: Map<string, number>, op: Op, keys: readonly string[], n: number): number {
  const m = keys.length;
  let sum = 0;
  switch (op) {
    case 'get':
      for (let i = 0; i < n; i++) sum += map.get(keys[i % m]!)!;
      break;
    case 'set':
      for (let i = 0; i < n; i++) map.set(keys[i % m]!, i);
      break;
    case 'incr':
    case 'cas':
    case 'update':
      for (let i = 0; i < n; i++) {
        const k = keys[i % m]!;
        const v = map.get(k)! + 1;
        map.set(k, v);
        sum += v;
      }
      break;
    case 'add':
      for (let i = 0; i < n; i++) if (!map.has(keys[i % m]!)) map.set(keys[i % m]!, i);
      break;
  }
  return sum;
}
