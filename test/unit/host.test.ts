import { describe, expect, test } from 'vitest';
import { isValidHost } from '../../src/worker/host.ts';

describe('isValidHost', () => {
  test.each([
    'example.com', 'EXAMPLE.com', 'a', 'a-b.c_d.example', 'under_score', '127.0.0.1', 'example.com.', 'x1.y2',
    'example.com:80', 'a:0', 'a:65535', 'example.com.:8080',
    '[::1]', '[::1]:8080', '[2001:db8::ff00:42:8329]', '[::ffff:192.0.2.1]', '[FE80::1]:1',
  ])('%j is valid', (host) => {
    expect(isValidHost(host)).toBe(true);
  });

  test.each([
    // The examples, then nginx http_host.t's and RFC 3986 reg-name characters a host name never needs.
    'example.com/\\:552', 'a/b', '..example.com',
    '', '.', '.example.com', 'a..b', 'a\\b', 'a b', 'a\tb', 'a\0b', 'a,b', 'a;b', 'a=b', 'a!b', "a'b", 'a(b)', 'a*b', 'a+b', 'a$b', 'a&b',
    'user@a', 'a%2eb', 'a%', 'caf\u00e9.example', 'a#b', 'a?b', 'a~b',
    // Ports: 1 to 5 digits, at most 65535, nothing after.
    'a:', ':80', 'a:8x', 'a:-1', 'a:65536', 'a:99999', 'a:123456', 'a:80:80', 'a: 80',
    // IPv6: bracketed, a real address, no zone id, no IPvFuture.
    '[::1', '::1', '[::1]x', '[::1]:', '[::1]:99999', '[]', '[1.2.3.4]', '[fe80::1%25eth0]', '[fe80::1%eth0]', '[v1.x]', '[::1]]', '[::g]',
  ])('%j is refused', (host) => {
    expect(isValidHost(host)).toBe(false);
  });
});
