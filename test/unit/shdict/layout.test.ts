import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LAYOUT_DESCRIPTION, LAYOUT_ID, layoutIdentity } from '../../../src/shdict/identity.ts';
import * as L from '../../../src/shdict/layout.ts';

/*
 * The zone layout is derived from the field tables in layout.ts. These tests pin what the
 * tables produce, so that an edit that moves a field fails here first. If the change is
 * meant, update the numbers below AND expect running zones to be recreated empty on the
 * next reload after an upgrade in place: the layout identity changes with them.
 */
describe('shdict layout', () => {
  it('the field tables produce these offsets', () => {
    const numbers = Object.fromEntries(Object.entries(L).filter(([, v]) => typeof v === 'number'));
    expect(numbers).toEqual({
      // zone header (Int32Array indices); magic and layout are the preamble, fixed forever
      H_MAGIC: 0,
      H_LAYOUT: 1,
      H_CAPACITY: 2,
      H_STRIPES: 3,
      H_BUCKETS: 4,
      H_ARENA_BYTES: 5,
      H_INDEX_BASE: 6,
      H_ARENA_BASE: 7,
      HEADER_BYTES: 64,
      MAGIC: 0x53484454,
      // stripe record (Int32Array indices from the record)
      S_LOCK: 0,
      S_WAITERS: 1,
      S_ITEMS: 2,
      S_FREE_BYTES: 3,
      S_TICK: 4,
      S_HAND: 5,
      S_BITMAP: 8,
      S_BINS: 18,
      STRIPE_RECORD_BYTES: 1280,
      STRIPE_RECORD_WORDS: 320,
      // allocator bins
      SMALL_LIMIT: 1024,
      SMALL_BINS: 128,
      SUB_BITS: 3,
      FIRST_LARGE_LOG2: 10,
      LAST_LARGE_LOG2: 30,
      BIN_COUNT: 296,
      BITMAP_WORDS: 10,
      // blocks
      B_FREE: 1,
      B_PREV_FREE: 2,
      B_NODE: 4,
      B_SIZE_MASK: -8,
      MIN_BLOCK: 16,
      END_SENTINEL_BYTES: 8,
      F_NEXT: 4,
      F_PREV: 8,
      // items (byte offsets from the block)
      I_CHAIN: 4,
      I_EXPIRES: 8,
      I_STAMP: 16,
      I_HASH: 20,
      I_FLAGS: 24,
      I_META: 28,
      I_VLEN: 32,
      I_KEY: 36,
      META_KEY_MASK: 0xffff,
      META_TYPE_SHIFT: 24,
      MAX_KEY_BYTES: 65535,
      // lists
      L_HEAD: 0,
      L_TAIL: 4,
      L_LEN: 8,
      LIST_VALUE_BYTES: 12,
      N_NEXT: 4,
      N_PREV: 8,
      N_TYPE: 12,
      N_VLEN: 16,
      N_VALUE: 24,
      // value types (the codec's format tags)
      T_NUMBER: 1,
      T_TRUE: 2,
      T_FALSE: 3,
      T_ASCII: 4,
      T_UTF8: 5,
      T_BYTES: 6,
      T_PACKED: 7,
      T_LIST: 8,
      EXPIRES_FLUSHED: -1,
      // geometry bounds
      MIN_CAPACITY: 8192,
      MAX_CAPACITY: 0x7fff_0000,
    });
  });

  it('8-byte fields are 8-byte aligned, and records are cache-line multiples', () => {
    expect(L.I_EXPIRES % 8).toBe(0);
    expect(L.N_VALUE % 8).toBe(0);
    expect(L.HEADER_BYTES % 64).toBe(0);
    expect(L.STRIPE_RECORD_BYTES % 64).toBe(0);
  });

  it('struct() lays fields out in order at their alignment, and rejects a misplaced variable field', () => {
    const s = L.struct('t', [
      ['a', 4],
      ['b', 8],
      ['c', 2],
      ['d', 0, 8],
    ]);
    expect(s.at).toEqual({ a: 0, b: 8, c: 16, d: 24 });
    expect(L.struct('p', [['a', 4]], 64).size).toBe(64);
    expect(() => L.struct('bad', [['v', 0], ['a', 4]])).toThrow(/only the last field/);
    expect(() => L.struct('dup', [['a', 4], ['a', 4]])).toThrow(/defined twice/);
  });

  it('the layout identity is pinned, and follows every table', () => {
    expect((LAYOUT_ID >>> 0).toString(16)).toBe('5e1c3f63');
    expect(layoutIdentity(LAYOUT_DESCRIPTION)).toBe(LAYOUT_ID);
    const desc = JSON.parse(LAYOUT_DESCRIPTION) as {
      layout: { structs: [string, [string, number, number?][], number][]; valueTypes: Record<string, number> };
      codec: { packed: { packr: Record<string, unknown> } };
      keyHash: number[];
    };
    const variants: ((d: typeof desc) => void)[] = [
      (d) => d.layout.structs[3]![1].reverse(), // item fields reordered
      (d) => (d.layout.structs[5]![1][4]![1] = 8), // list node vlen widened
      (d) => (d.layout.structs[0]![1][2]![0] = 'size'), // header field renamed
      (d) => (d.layout.valueTypes['list'] = 9), // a format tag renumbered
      (d) => (d.codec.packed.packr['useRecords'] = true), // codec options
      (d) => (d.keyHash[0]! ^= 1), // another key hash
    ];
    for (const change of variants) {
      const d = structuredClone(desc);
      change(d);
      expect(layoutIdentity(JSON.stringify(d))).not.toBe(LAYOUT_ID);
    }
  });

  it('src/shdict imports only itself, node: builtins and msgpackr (the master digests its files alone)', () => {
    const dir = new URL('../../../src/shdict/', import.meta.url);
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      for (const [, spec] of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/g)) {
        expect(/^\.\/[\w-]+\.ts$/.test(spec!) || spec!.startsWith('node:') || spec === 'msgpackr', `${f} imports ${spec}`).toBe(true);
      }
    }
  });
});
