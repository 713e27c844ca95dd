import type { IncomingMessage } from 'node:http';
import { describe, expect, test } from 'vitest';
import { guardRequest, originForm } from '../../src/worker/request-guard.ts';

/** Just what guardRequest reads from an IncomingMessage. */
function req(rawHeaders: string[], version: '2.0' | '1.1' | '1.0' = '1.1'): IncomingMessage {
  const [major, minor] = version.split('.').map(Number);
  return { rawHeaders, httpVersionMajor: major, httpVersionMinor: minor } as unknown as IncomingMessage;
}

describe('guardRequest', () => {
  test('an ordinary request passes', () => {
    expect(guardRequest(req(['Host', 'a', 'Authorization', 'Bearer x', 'Content-Length', '3', 'Accept', '*/*']))).toBeNull();
    expect(guardRequest(req([], '1.0'))).toBeNull();
  });

  test('HTTP/1.1 without Host is 400 (RFC 9112 §3.2); HTTP/1.0 may omit it', () => {
    expect(guardRequest(req(['Accept', '*/*']))).toBe('GW_ERR_BAD_REQUEST');
    expect(guardRequest(req(['Accept', '*/*'], '1.0'))).toBeNull();
  });

  test('HTTP/2 with neither :authority nor Host is 400, as nginx answers it (its head arrives as http1Head made it)', () => {
    expect(guardRequest(req(['accept', '*/*'], '2.0'))).toBe('GW_ERR_BAD_REQUEST');
    expect(guardRequest(req(['host', 'a', 'accept', '*/*'], '2.0'))).toBeNull();
    // :authority and a Host naming another authority: two Hosts.
    expect(guardRequest(req(['host', 'a', 'host', 'b'], '2.0'))).toBe('GW_ERR_BAD_REQUEST');
  });

  test.each(['example.com/\\:552', 'a/b', '..example.com', '', 'a:99999'])('Host %j is 400', (host) => {
    expect(guardRequest(req(['Host', host]))).toBe('GW_ERR_BAD_REQUEST');
    expect(guardRequest(req(['host', host], '1.0'))).toBe('GW_ERR_BAD_REQUEST');
  });

  test.each([
    ['Host', ['Host', 'a', 'Host', 'b']],
    ['Host, any case', ['Host', 'a', 'HOST', 'a']],
    ['Authorization', ['Host', 'a', 'Authorization', 'Bearer a', 'authorization', 'Bearer b']],
    ['Content-Length', ['Host', 'a', 'Content-Length', '3', 'content-length', '3']],
    ['Content-Length, even equal values in mixed case', ['Host', 'a', 'CONTENT-LENGTH', '0', 'Content-Length', '0']],
  ])('duplicate %s is 400', (_label, headers) => {
    expect(guardRequest(req(headers))).toBe('GW_ERR_BAD_REQUEST');
  });

  test('headers that merely share a length with a guarded one are not counted', () => {
    expect(guardRequest(req(['Host', 'a', 'Vary', 'x', 'Date', 'y', 'Accept-Ranges', 'a', 'Accept-Charset', 'b']))).toBeNull();
    expect(guardRequest(req(['Host', 'a', 'X-Content-Length', '1', 'Content-Length', '1']))).toBeNull();
  });

  test('Transfer-Encoding: chunked is fine in HTTP/1.1, in any case and with surrounding space', () => {
    expect(guardRequest(req(['Host', 'a', 'Transfer-Encoding', 'chunked']))).toBeNull();
    expect(guardRequest(req(['Host', 'a', 'transfer-encoding', ' Chunked ']))).toBeNull();
  });

  test('Transfer-Encoding in HTTP/1.0 is 400, even a bare chunked', () => {
    expect(guardRequest(req(['Host', 'a', 'Transfer-Encoding', 'chunked'], '1.0'))).toBe('GW_ERR_BAD_REQUEST');
  });

  test.each(['identity, chunked', 'gzip, chunked', 'chunked, chunked', 'chunked;q=1', 'identity', 'xchunked', ''])(
    'Transfer-Encoding: "%s" is 400',
    (value) => {
      expect(guardRequest(req(['Host', 'a', 'Transfer-Encoding', value]))).toBe('GW_ERR_BAD_REQUEST');
    },
  );

  test('Transfer-Encoding anywhere in the list is checked, not only first', () => {
    expect(guardRequest(req(['Host', 'a', 'Accept', 'x', 'TRANSFER-ENCODING', 'gzip']))).toBe('GW_ERR_BAD_REQUEST');
  });
});

describe('originForm (absolute-form targets)', () => {
  test('an authority equal to Host gives the origin-form path', () => {
    expect(originForm('http://api.example.com/x/y', 'api.example.com')).toBe('/x/y');
    expect(originForm('http://api.example.com:8080/x', 'api.example.com:8080')).toBe('/x');
  });

  test('the authority is compared case-insensitively', () => {
    expect(originForm('http://API.Example.COM/x', 'api.example.com')).toBe('/x');
    expect(originForm('http://api.example.com/x', 'Api.Example.Com')).toBe('/x');
  });

  test('a mismatching authority or a missing Host is rejected', () => {
    expect(originForm('http://evil.example/x', 'api.example.com')).toBeNull();
    expect(originForm('http://api.example.com:81/x', 'api.example.com')).toBeNull();
    expect(originForm('http://api.example.com/x', undefined)).toBeNull();
    expect(originForm('http://user@api.example.com/x', 'api.example.com')).toBeNull();
  });

  test('no path: "/"', () => {
    expect(originForm('http://api.example.com', 'api.example.com')).toBe('/');
  });

  test('https is accepted as well', () => {
    expect(originForm('https://api.example.com/secure', 'api.example.com')).toBe('/secure');
  });

  test('the path keeps its query', () => {
    expect(originForm('http://api.example.com/x?a=1&b=2', 'api.example.com')).toBe('/x?a=1&b=2');
  });

  test('the path is returned raw: normalisation happens after, on the one path', () => {
    expect(originForm('http://a/x/../y//z', 'a')).toBe('/x/../y//z');
  });

  test('an authority that is not a valid host is rejected even when Host says the same', () => {
    expect(originForm('http://..example.com/x', '..example.com')).toBeNull();
    expect(originForm('http://a,b/x', 'a,b')).toBeNull();
    expect(originForm('http://[::1]:8080/x', '[::1]:8080')).toBe('/x');
  });

  test('a query without a path: the path is "/" and the query stays (RFC 9112 §3.2.2)', () => {
    expect(originForm('http://api.example.com?x=1', 'api.example.com')).toBe('/?x=1');
    expect(originForm('https://a:8443?x=1&y=2', 'a:8443')).toBe('/?x=1&y=2');
  });

  test('other schemes and forms are rejected', () => {
    expect(originForm('ftp://a/x', 'a')).toBeNull();
    expect(originForm('*', 'a')).toBeNull();
    expect(originForm('a:443', 'a:443')).toBeNull();
  });
});
