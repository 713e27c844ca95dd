import { Packr } from 'msgpackr';
import { ShdictError } from './errors.ts';
import { T_ASCII, T_BYTES, T_FALSE, T_NUMBER, T_PACKED, T_TRUE, T_UTF8 } from './layout.ts';

/**
 * What a dict stores: primitives natively, Uint8Array as raw bytes, anything else msgpackr
 * can encode (plain objects, arrays, null...) as msgpack.
 */
export type DictValue = string | number | boolean | Uint8Array | object | null;

// Records/structures would need a structure table shared by every thread; plain msgpack
// needs none.
const PACKR_OPTIONS = { useRecords: false } as const;
const packr = new Packr(PACKR_OPTIONS);

/**
 * How each value type is laid out in the zone, beyond its tag (layout.ts VALUE_TYPES):
 * part of the layout identity (identity.ts). Change it with the encoding it describes.
 */
export const CODEC_FORMAT = {
  number: 'float64, platform byte order, 8-byte aligned',
  boolean: 'tag only',
  ascii: 'one byte per char code',
  utf8: 'utf8',
  bytes: 'raw',
  packed: { format: 'msgpack', packr: PACKR_OPTIONS },
} as const;

const EMPTY = new Uint8Array(0);

/**
 * A value encoded outside the lock, ready to be copied in under it: the critical section
 * then only copies bytes, never runs msgpackr or measures UTF-8.
 */
export class EncodedValue {
  type = 0;
  byteLength = 0;
  num = 0;
  str = '';
  bytes: Uint8Array = EMPTY;
}

export function encodeValue(v: unknown, out: EncodedValue): void {
  switch (typeof v) {
    case 'number':
      out.type = T_NUMBER;
      out.byteLength = 8;
      out.num = v;
      return;
    case 'string': {
      out.str = v;
      const n = v.length;
      let i = 0;
      while (i < n && v.charCodeAt(i) < 0x80) i++;
      if (i === n) {
        out.type = T_ASCII;
        out.byteLength = n;
      } else {
        out.type = T_UTF8;
        out.byteLength = Buffer.byteLength(v, 'utf8');
      }
      return;
    }
    case 'boolean':
      out.type = v ? T_TRUE : T_FALSE;
      out.byteLength = 0;
      return;
    case 'object':
      out.type = v instanceof Uint8Array && !Buffer.isBuffer(v) ? T_BYTES : T_PACKED;
      // A Buffer is a Uint8Array, but msgpack keeps it a Buffer on the way back out.
      out.bytes = out.type === T_BYTES ? (v as Uint8Array) : packr.pack(v);
      out.byteLength = out.bytes.length;
      return;
    default:
      throw new ShdictError('SHDICT_ERR_BAD_VALUE', `shdict cannot store a ${typeof v}`);
  }
}

/** Copies an encoded value to `off` (8-byte aligned). */
export function writeValue(u8: Uint8Array, f64: Float64Array, buf: Buffer, off: number, v: EncodedValue): void {
  switch (v.type) {
    case T_NUMBER:
      f64[off >> 3] = v.num;
      return;
    case T_ASCII: {
      const s = v.str;
      const n = v.byteLength;
      // Short strings: a loop beats the native call overhead of Buffer#write.
      if (n < 64) for (let i = 0; i < n; i++) u8[off + i] = s.charCodeAt(i);
      else buf.write(s, off, n, 'latin1');
      return;
    }
    case T_UTF8:
      buf.write(v.str, off, v.byteLength, 'utf8');
      return;
    case T_BYTES:
    case T_PACKED:
      u8.set(v.bytes, off);
      return;
    default:
  }
}

/**
 * Reads a stored value. Bytes and msgpack come back as a private copy (never a view into
 * the zone, which other threads may rewrite); msgpack is left packed so the caller can
 * decode it after releasing the lock.
 */
export function readValue(u8: Uint8Array, f64: Float64Array, buf: Buffer, off: number, type: number, len: number): DictValue {
  switch (type) {
    case T_NUMBER:
      return f64[off >> 3]!;
    case T_ASCII:
      return buf.toString('latin1', off, off + len);
    case T_UTF8:
      return buf.toString('utf8', off, off + len);
    case T_TRUE:
      return true;
    case T_FALSE:
      return false;
    default:
      return u8.slice(off, off + len);
  }
}

/** Second half of reading a T_PACKED value, outside the lock. */
export function unpackValue(bytes: Uint8Array): DictValue {
  return packr.unpack(bytes) as DictValue;
}
