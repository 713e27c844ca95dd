import { describe, expect, it } from 'vitest';
import { COMPLETE, MAX_HEAD, NEED_MORE, ResponseParser, UPGRADE } from '../../../../src/worker/upstream-client/response-parser.ts';
import { ourVerdict } from '../../../helpers/response-verdicts.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A parser and what it reported. */
function parser(head = false, upgrade = false) {
  const seen = { heads: [] as [number, string[]][], body: [] as string[] };
  const p = new ResponseParser({
    onHead: (status, headers) => seen.heads.push([status, headers]),
    onBody: (chunk) => seen.body.push(chunk.toString('latin1')),
  });
  p.start(head, upgrade);
  return { p, seen };
}

describe('framing', () => {
  it('Content-Length: exactly that many bytes, and the connection is reusable', () => {
    const { p, seen } = parser();
    expect(p.execute(b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel'))).toBe(NEED_MORE);
    expect(p.execute(b('lo'))).toBe(COMPLETE);
    expect(p.offset).toBe(2);
    expect(p.keepAlive).toBe(true);
    expect(seen.heads).toEqual([[200, ['content-length', '5']]]);
    expect(seen.body.join('')).toBe('hello');
  });

  it('chunked: chunk data, extensions and trailers dropped, reusable', () => {
    const { p, seen } = parser();
    expect(p.execute(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n'))).toBe(COMPLETE);
    expect(seen.body.join('')).toBe('abc');
    expect(p.keepAlive).toBe(true);
  });

  it('no Content-Length and no chunked: the body runs to the close, and the connection is not reused', () => {
    const { p, seen } = parser();
    expect(p.execute(b('HTTP/1.1 200 OK\r\n\r\nall of'))).toBe(NEED_MORE);
    expect(p.execute(b(' it'))).toBe(NEED_MORE);
    expect(p.finish()).toBe(true);
    expect(p.keepAlive).toBe(false);
    expect(seen.body.join('')).toBe('all of it');
  });

  it('a close before the framing says the body is done is not an end', () => {
    const { p } = parser();
    p.execute(b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel'));
    expect(p.finish()).toBe(false);
    const fresh = parser().p;
    expect(fresh.idle).toBe(true);
    expect(fresh.finish()).toBe(false);
  });

  it('no body for HEAD, 204 and 304, whatever the fields say', () => {
    for (const [bytes, head] of [
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', true],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', true],
      ['HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n', false],
      ['HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', false],
    ] as const) {
      const { p } = parser(head);
      expect(p.execute(b(bytes)), bytes).toBe(COMPLETE);
      expect(p.keepAlive).toBe(true);
    }
  });

  it('Connection: close, or HTTP/1.0, makes the connection single-use', () => {
    for (const bytes of ['HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n']) {
      const { p } = parser();
      expect(p.execute(b(bytes))).toBe(COMPLETE);
      expect(p.keepAlive, bytes).toBe(false);
    }
  });

  it('reads how long the upstream keeps the connection idle from Keep-Alive: timeout=N', () => {
    for (const [field, ms] of [['Keep-Alive: timeout=5, max=100\r\n', 5000], ['Keep-Alive: max=9,TIMEOUT=12\r\n', 12000], ['Keep-Alive: xtimeout=5\r\n', -1], ['', -1]] as const) {
      const { p } = parser();
      p.execute(b(`HTTP/1.1 200 OK\r\n${field}Content-Length: 0\r\n\r\n`));
      expect(p.keepAliveTimeout, field).toBe(ms);
    }
  });

  it('skips interim 1xx heads: only the final head is reported', () => {
    const { p, seen } = parser();
    expect(p.execute(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'))).toBe(NEED_MORE);
    expect(p.status).toBe(0); // still waiting for the head: a timeout now is a headers timeout
    expect(p.execute(b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))).toBe(COMPLETE);
    expect(seen.heads).toEqual([[200, ['content-length', '0']]]);
  });

  it('a 101 to an upgrade request stops at the head: the rest belongs to the new protocol', () => {
    const { p, seen } = parser(false, true);
    const bytes = b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi');
    expect(p.execute(bytes)).toBe(UPGRADE);
    expect(bytes.subarray(p.offset).toString('latin1')).toBe('\x81\x02hi');
    expect(seen.heads).toEqual([[101, ['upgrade', 'websocket', 'connection', 'Upgrade']]]);
  });

  it('a 101 nobody asked for is bad framing; an upgrade request answered 200 is a plain response', () => {
    expect(() => parser().p.execute(b('HTTP/1.1 101 Switching Protocols\r\n\r\n'))).toThrow('101 without an upgrade request');
    const { p } = parser(false, true);
    expect(p.execute(b('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'))).toBe(COMPLETE);
  });

  it('names lower-cased, values trimmed of SP and HTAB, latin1 kept', () => {
    const { p, seen } = parser();
    p.execute(b('HTTP/1.1 200 OK\r\nX-Mixed-Case: \t caf\xe9 \t\r\nContent-Length: 0\r\n\r\n'));
    expect(seen.heads[0]![1]).toEqual(['x-mixed-case', 'caf\xe9', 'content-length', '0']);
  });

  it('is ready for the next response after start()', () => {
    const { p, seen } = parser();
    expect(p.execute(b('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na'))).toBe(COMPLETE);
    p.start(false, false);
    expect(p.execute(b('HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n'))).toBe(COMPLETE);
    expect(seen.heads.map(([s]) => s)).toEqual([200, 404]);
    expect(seen.body.join('')).toBe('ab');
  });
});

describe('refusals (each a 502 and a connection closed)', () => {
  const refused = (bytes: string | Buffer, reason: string | RegExp): void => {
    const v = ourVerdict(typeof bytes === 'string' ? b(bytes) : bytes);
    expect(v.ok, String(bytes).slice(0, 60)).toBe(false);
    if (!v.ok) expect(v.reason).toMatch(reason);
  };

  it('Transfer-Encoding with Content-Length, in either order', () => {
    refused('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n', 'Transfer-Encoding with Content-Length');
    refused('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'Transfer-Encoding with Content-Length');
  });

  it('a second Content-Length, equal or not, and one that is not digits', () => {
    refused('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na', 'repeated Content-Length');
    refused('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 'repeated Content-Length');
    refused('HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\na', 'bad or repeated Content-Length');
  });

  it('obs-fold, whitespace before the colon, CTLs, LF-only line ends', () => {
    refused('HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n', 'obs-fold');
    refused('HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2: 3\r\nContent-Length: 0\r\n\r\n', 'obs-fold');
    refused('HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n', 'bad header name');
    refused('HTTP/1.1 200 OK\r\nX-A: 1\x01\r\nContent-Length: 0\r\n\r\n', 'control character');
    refused('HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 0\r\n\r\n', 'control character');
    refused('HTTP/1.1 200 OK\nContent-Length: 0\n\n', /closed before/);
  });

  it('bad chunks: size, extension, missing CRLF, a size past 2^53', () => {
    const chunked = (body: string): string => `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
    refused(chunked('g\r\n'), 'bad chunk-size line');
    refused(chunked('1;a b\r\nx\r\n0\r\n\r\n'), 'bad chunk extension');
    refused(chunked('1\r\nxy\r\n0\r\n\r\n'), 'chunk data not followed by CRLF');
    refused(chunked('20000000000000\r\n'), 'chunk size too large');
    refused(chunked('1\r\nx\r\n0\r\n'), /closed before/);
    // Leading zeros do not count against the size's length.
    expect(ourVerdict(b(chunked(`${'0'.repeat(20)}1\r\nx\r\n0\r\n\r\n`))).ok).toBe(true);
  });

  it('a head over 16 KiB, and more than 256 fields', () => {
    refused(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD)}\r\n\r\n`, 'response head too large');
    refused(`HTTP/1.1 200 OK\r\n${'X: 1\r\n'.repeat(257)}\r\n`, 'too many header fields');
    // Cut into pieces, a head without its end is refused as soon as it passes the bound, not when the upstream closes.
    const { p } = parser();
    expect(() => {
      for (let i = 0; i < 20; i++) p.execute(b(`X-${i}: ${'a'.repeat(1000)}\r\n`));
    }).toThrow('response head too large');
  });

  it('trailers over 16 KiB', () => {
    refused(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${'X: 1234567890\r\n'.repeat(1200)}\r\n`, 'line too long');
  });
});
