import { describe, expect, it } from 'vitest';
import { http1Head, http2Fields } from '../../../src/worker/http2-exchange.ts';

describe('http1Head: an HTTP/2 request head as HTTP/1.1 would carry it', () => {
  it('makes :authority the Host, first, and drops every pseudo-header', () => {
    expect(http1Head([':method', 'GET', ':scheme', 'https', ':authority', 'api.example.com', ':path', '/x', 'accept', '*/*'], false))
      .toEqual(['host', 'api.example.com', 'accept', '*/*']);
  });

  it('keeps a Host naming another authority, so that the guard refuses two Hosts (RFC 9113 §8.3.1)', () => {
    expect(http1Head([':authority', 'a.example', 'host', 'A.EXAMPLE'], false)).toEqual(['host', 'a.example']);
    expect(http1Head([':authority', 'a.example', 'host', 'b.example'], false)).toEqual(['host', 'a.example', 'host', 'b.example']);
    // No :authority: the client's Host is the Host.
    expect(http1Head([':path', '/', 'host', 'b.example'], false)).toEqual(['host', 'b.example']);
  });

  it('joins cookie crumbs into one Cookie (RFC 9113 §8.2.3)', () => {
    expect(http1Head([':authority', 'a', 'cookie', 'a=1', 'x-y', 'z', 'cookie', 'b=2'], false)).toEqual(['host', 'a', 'x-y', 'z', 'cookie', 'a=1; b=2']);
  });

  it('announces a body without Content-Length as chunked', () => {
    expect(http1Head([':authority', 'a'], true)).toEqual(['host', 'a', 'transfer-encoding', 'chunked']);
  });
});

describe('http2Fields: a response head without the fields HTTP/2 forbids (RFC 9113 §8.2.2)', () => {
  it('returns the list itself when it has none', () => {
    const list = ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2'];
    expect(http2Fields(list)).toBe(list);
  });

  it('drops connection-specific fields in any case, keeping the rest in order', () => {
    expect(http2Fields(['Connection', 'close', 'x-a', '1', 'Keep-Alive', 'timeout=5', 'transfer-encoding', 'chunked', 'upgrade', 'h2c', 'proxy-connection', 'x', 'te', 'trailers', 'x-b', '2']))
      .toEqual(['x-a', '1', 'x-b', '2']);
  });
});
