import { ShdictError } from './errors.ts';
import { MAX_KEY_BYTES } from './layout.ts';

/*
 * Key hashing and comparison straight from the JS string: the hash runs over UTF-16 char
 * codes (any thread hashing the same string gets the same value), and ASCII keys, the
 * common case, are compared with and written to the zone byte by byte without ever being
 * encoded. Only non-ASCII keys are UTF-8 encoded, once per operation, into a scratch buffer.
 */
export class KeyProbe {
  hash = 0;
  byteLength = 0;
  ascii = true;
  key = '';
  private scratch = Buffer.allocUnsafe(256);

  /** Validates `key` and computes its hash; throws on programmer errors. */
  load(key: unknown): void {
    if (typeof key !== 'string' || key.length === 0) {
      throw new ShdictError('SHDICT_ERR_BAD_KEY', 'shdict key must be a non-empty string');
    }
    const n = key.length;
    // Each UTF-16 unit is at least one UTF-8 byte, so this bounds the work done below.
    if (n > MAX_KEY_BYTES) throw tooLong();
    // FNV-1a over char codes, then the murmur3 finaliser so low and high bits both mix well
    // (the low bits pick the stripe, the next ones the bucket).
    let h = 0x811c9dc5;
    let or = 0;
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      or |= c;
      h = Math.imul(h ^ c, 0x01000193);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    this.hash = h;
    this.key = key;
    if (or < 0x80) {
      this.ascii = true;
      this.byteLength = n;
      return;
    }
    this.ascii = false;
    const len = Buffer.byteLength(key, 'utf8');
    if (len > MAX_KEY_BYTES) throw tooLong();
    if (this.scratch.length < len) this.scratch = Buffer.allocUnsafe(MAX_KEY_BYTES);
    this.scratch.write(key, 0, len, 'utf8');
    this.byteLength = len;
  }

  /** Whether the loaded key equals the `len` bytes at `off` (the caller checked the hash). */
  matches(u8: Uint8Array, off: number, len: number): boolean {
    if (len !== this.byteLength) return false;
    if (this.ascii) {
      const key = this.key;
      for (let i = 0; i < len; i++) if (u8[off + i] !== key.charCodeAt(i)) return false;
      return true;
    }
    const s = this.scratch;
    for (let i = 0; i < len; i++) if (u8[off + i] !== s[i]) return false;
    return true;
  }

  write(u8: Uint8Array, off: number): void {
    const len = this.byteLength;
    if (this.ascii) {
      const key = this.key;
      for (let i = 0; i < len; i++) u8[off + i] = key.charCodeAt(i);
    } else {
      u8.set(this.scratch.subarray(0, len), off);
    }
  }
}

const tooLong = (): ShdictError =>
  new ShdictError('SHDICT_ERR_KEY_TOO_LONG', `shdict key longer than ${MAX_KEY_BYTES} UTF-8 bytes`);
