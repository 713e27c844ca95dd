import { ShdictError } from './errors.ts';
import { MAX_KEY_BYTES } from './layout.ts';

/*
 * Key hashing and comparison straight from the JS string. An ASCII key (the common case)
 * is never encoded: its char codes are its UTF-8 bytes, packed four to a word while hashing,
 * and those words are then compared with, or written to, the zone's aligned key bytes one
 * word at a time. Only a non-ASCII key is UTF-8 encoded, once per operation. The hash is
 * murmur3 over the UTF-8 bytes, so every thread computes the same value for a key.
 */
export class KeyProbe {
  hash = 0;
  byteLength = 0;
  private bytes = Buffer.alloc(MAX_KEY_BYTES + 4);
  private words = new Int32Array(this.bytes.buffer, this.bytes.byteOffset, (MAX_KEY_BYTES + 4) >> 2);

  /** Validates `key` and computes its hash; throws on programmer errors. */
  load(key: unknown): void {
    if (typeof key !== 'string' || key.length === 0) {
      throw new ShdictError('SHDICT_ERR_BAD_KEY', 'shdict key must be a non-empty string');
    }
    const n = key.length;
    // Each UTF-16 unit is at least one UTF-8 byte, so this bounds the work done below.
    if (n > MAX_KEY_BYTES) throw tooLong();
    const words = this.words;
    let or = 0;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const c0 = key.charCodeAt(i);
      const c1 = key.charCodeAt(i + 1);
      const c2 = key.charCodeAt(i + 2);
      const c3 = key.charCodeAt(i + 3);
      or |= c0 | c1 | c2 | c3;
      words[i >> 2] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    }
    if (i < n) {
      let w = 0;
      for (let sh = 0; i < n; i++, sh += 8) {
        const c = key.charCodeAt(i);
        or |= c;
        w |= c << sh;
      }
      words[(n - 1) >> 2] = w;
    }
    if (or < 0x80) {
      this.byteLength = n;
    } else {
      const len = Buffer.byteLength(key, 'utf8');
      if (len > MAX_KEY_BYTES) throw tooLong();
      this.bytes.write(key, 0, len, 'utf8');
      this.bytes.fill(0, len, (len + 3) & ~3);
      this.byteLength = len;
    }
    this.hash = murmur3(words, this.byteLength);
  }

  /** Whether the loaded key equals the `len` bytes at `off` (4-byte aligned). */
  matches(i32: Int32Array, off: number, len: number): boolean {
    if (len !== this.byteLength) return false;
    const words = this.words;
    const base = off >> 2;
    const full = len >> 2;
    for (let w = 0; w < full; w++) if (i32[base + w] !== words[w]) return false;
    const rest = len & 3;
    return rest === 0 || ((i32[base + full]! ^ words[full]!) & ((1 << (rest << 3)) - 1)) === 0;
  }

  /** Writes the key's bytes at `off` (4-byte aligned), zero-padded to a whole word. */
  write(i32: Int32Array, off: number): void {
    const words = this.words;
    const base = off >> 2;
    const n = (this.byteLength + 3) >> 2;
    for (let w = 0; w < n; w++) i32[base + w] = words[w]!;
  }
}

/** murmur3_x86_32 over `len` bytes held little-endian in `words` (the tail word zero-padded). */
function murmur3(words: Int32Array, len: number): number {
  let h = 0x9747b28c;
  const n = (len + 3) >> 2;
  for (let w = 0; w < n; w++) {
    let k = Math.imul(words[w]!, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    if (w < n - 1 || (len & 3) === 0) {
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
const tooLong = (): ShdictError =>
  new ShdictError('SHDICT_ERR_KEY_TOO_LONG', `shdict key longer than ${MAX_KEY_BYTES} UTF-8 bytes`);
