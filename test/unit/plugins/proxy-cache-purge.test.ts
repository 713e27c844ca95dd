import { describe, expect, it } from 'vitest';
import { lockKey } from '../../../src/plugins/proxy-cache/flight.ts';
import { entryKey } from '../../../src/plugins/proxy-cache/key.ts';
import { generationKey, purge } from '../../../src/plugins/proxy-cache/purge.ts';
import { PART_BYTES, partsFor, writeEntry } from '../../../src/plugins/proxy-cache/store.ts';
import type { Head } from '../../../src/plugins/proxy-cache/store.ts';
import { SharedDict } from '../../../src/shdict/index.ts';

/** Purge on a real zone: which keys a prefix reaches, and what is counted. */

function store(dict: SharedDict, route: string, path: string, digest: string, bytes: number, vary: string[] = []): void {
  const key = entryKey(route, path, digest);
  const head: Head = { s: 200, h: [], t: 0, a: 0, e: 60_000, n: bytes, p: partsFor(bytes), id: `${digest}.1`, k: digest };
  const headKey = vary.length === 0 ? key : `${key}|variant-${vary.join('')}`;
  expect(writeEntry(dict, key, vary.length === 0 ? null : { vary }, headKey, head, new Uint8Array(bytes), 60_000)).toBe(true);
}

describe('proxy-cache purge', () => {
  it('removes heads, Vary markers and body parts of one path or one route; leaves locks and other routes, even one whose name extends it', () => {
    const dict = SharedDict.create(4 << 20);
    store(dict, 'a', '/x', 'd1', 2 * PART_BYTES + 1); // three parts
    store(dict, 'a', '/x', 'd2', 10, ['accept']); // marker + variant head
    store(dict, 'a', '/y', 'd3', 10);
    store(dict, 'a|b', '/x', 'd1', 10);
    const lock = lockKey(entryKey('a', '/x', 'd4'));
    dict.add(lock, 'token', 60_000);

    expect(purge(dict, 'a', '/x')).toBe(2);
    expect(dict.getKeys(0).filter((k) => k.startsWith(entryKey('a', '/x', '')))).toEqual([lock]);
    expect(purge(dict, 'a', '/x')).toBe(0);
    expect(purge(dict, 'a', null)).toBe(1);
    const entries = (): string[] => dict.getKeys(0).filter((k) => k.startsWith('pc|')).sort();
    expect(entries()).toEqual([lock, ...dict.getKeys(0).filter((k) => k.startsWith('pc|a%7Cb|'))].sort());
    expect(purge(dict, 'a|b', null)).toBe(1);
    expect(entries()).toEqual([lock]);
    // Every purge bumped its route's generation, after its deletes: workers' local copies stop answering (local.ts).
    expect([dict.get(generationKey('a')), dict.get(generationKey('a|b'))]).toEqual([3, 1]);
  });
});
