/**
 * Raw HTTP/2 frames (RFC 9113 §4.1, §6) for tests that must behave as no
 * well-mannered client does: Node's http2 client honours the server's stream
 * limit and never sends a stream it cancels before its HEADERS went out, so
 * it cannot make a rapid-reset flood (CVE-2023-44487). Header blocks use
 * HPACK literals without indexing (RFC 7541 §6.2.2), no Huffman coding, so
 * every block stands alone and the encoder is a few lines.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK static table indexes of the names used here. */
const NAME_INDEX: Readonly<Record<string, number>> = { ':authority': 1, ':method': 2, ':path': 4, ':scheme': 6 };

/** A header block of literal fields (names from the static table where it has them). */
export function headerBlock(fields: readonly (readonly [string, string])[]): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string): Buffer => {
    const b = Buffer.from(s);
    if (b.length > 126) throw new Error('headerBlock: strings up to 126 bytes');
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  for (const [name, value] of fields) {
    const index = NAME_INDEX[name];
    parts.push(index === undefined ? Buffer.concat([Buffer.from([0x00]), str(name)]) : Buffer.from([index]), str(value));
  }
  return Buffer.concat(parts);
}

/** RST_STREAM with an error code (CANCEL = 0x8). */
export const rstStream = (stream: number, code = 0x8): Buffer => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
};

/** Splits what a server sent into frames; `rest` is an incomplete tail to prepend to the next chunk. */
export function readFrames(buf: Buffer): { frames: { type: number; flags: number; stream: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
  let at = 0;
  while (buf.length - at >= 9) {
    const len = buf.readUIntBE(at, 3);
    if (buf.length - at < 9 + len) break;
    frames.push({ type: buf[at + 3]!, flags: buf[at + 4]!, stream: buf.readUInt32BE(at + 5) & 0x7fffffff, payload: buf.subarray(at + 9, at + 9 + len) });
    at += 9 + len;
  }
  return { frames, rest: buf.subarray(at) };
}
