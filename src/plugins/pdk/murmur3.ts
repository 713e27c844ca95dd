/**
 * murmur3's 32-bit hash (x86_32, seed 0) of the string's UTF-16LE bytes, read
 * two code units per block so that nothing is encoded or allocated. Its final
 * avalanche (fmix32) is what keeps near-identical keys ("11", "22", "33") from
 * landing near each other, which plain FNV-1a does not. One implementation for
 * the balancer (consistent-hash rings and keys) and plugins (traffic-split's
 * sticky weighted choice).
 */
export function murmur3(s: string): number {
  let h = 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    h ^= scramble(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) h ^= scramble(s.charCodeAt(i));
  h ^= n * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function scramble(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}
