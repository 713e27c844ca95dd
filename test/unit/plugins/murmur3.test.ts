import { expect, test } from 'vitest';
import { murmur3 } from '../../../src/plugins/pdk/murmur3.ts';

test('murmur3 is the reference x86_32 hash (seed 0) of the UTF-16LE bytes', () => {
  // Vectors from an independent byte-wise implementation checked against Appleby's ("test" → 0xba6bd213 as bytes).
  const vectors: [string, number][] = [
    ['', 0x0], ['a', 0x6f49d11a], ['ab', 0x165860ca], ['42', 0x2dc50d42],
    ['10.0.0.1:80#0', 0x2995fa1c], ['Ünïcødé ✓', 0x462cf90e], ['😀', 0x56065e39],
  ];
  for (const [s, h] of vectors) expect(murmur3(s), s).toBe(h);
});
