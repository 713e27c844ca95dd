import { describe, expect, test } from 'vitest';
import { canonicalAddress, compileBlockList, createClientAddressResolver } from '../../src/worker/client-address.ts';

const resolver = (trusted: readonly string[], recursive = true) =>
  createClientAddressResolver({ header: 'X-Forwarded-For', trusted, recursive });

describe('without real_ip', () => {
  test('the peer is the client, whatever the header says', () => {
    const r = createClientAddressResolver(null);
    expect(r('192.0.2.1', '203.0.113.7')).toBe('192.0.2.1');
    expect(r('::ffff:192.0.2.1', undefined)).toBe('192.0.2.1');
  });

  test('an empty trusted list trusts nobody', () => {
    expect(resolver([])('10.0.0.1', '203.0.113.7')).toBe('10.0.0.1');
  });
});

describe('untrusted peers', () => {
  test('the header is ignored', () => {
    const r = resolver(['10.0.0.0/8']);
    expect(r('192.0.2.1', '203.0.113.7')).toBe('192.0.2.1');
    expect(r('192.0.2.1', '10.0.0.5')).toBe('192.0.2.1');
    expect(resolver(['10.0.0.0/8'], false)('192.0.2.1', '203.0.113.7')).toBe('192.0.2.1');
  });

  test('an address just outside the CIDR is not trusted', () => {
    const r = resolver(['10.1.2.0/24']);
    expect(r('10.1.3.0', '203.0.113.7')).toBe('10.1.3.0');
    expect(r('10.1.2.255', '203.0.113.7')).toBe('203.0.113.7');
  });

  test('a trusted peer without the header is the client', () => {
    expect(resolver(['10.0.0.0/8'])('10.0.0.1', undefined)).toBe('10.0.0.1');
  });
});

describe('trusted peer, recursive (nginx real_ip_recursive on)', () => {
  const r = resolver(['10.0.0.0/8', '127.0.0.1']);

  test('walks right to left to the first untrusted address', () => {
    expect(r('10.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(r('10.0.0.1', '203.0.113.7, 10.0.0.9, 10.0.0.8')).toBe('203.0.113.7');
    expect(r('127.0.0.1', '10.9.9.9')).toBe('10.9.9.9'); // bare-IP entry trusts the peer; the hop is trusted, so it is the leftmost
  });

  test('a forged address prepended by the client is never believed', () => {
    // The client 198.51.100.4 sends "X-Forwarded-For: 1.2.3.4"; the trusted proxy appends the real peer.
    expect(r('10.0.0.1', '1.2.3.4, 198.51.100.4')).toBe('198.51.100.4');
    expect(r('10.0.0.1', '10.0.0.66, 198.51.100.4, 10.0.0.2')).toBe('198.51.100.4');
  });

  test('all addresses trusted: the leftmost one', () => {
    expect(r('10.0.0.1', '10.0.0.3, 10.0.0.2')).toBe('10.0.0.3');
  });

  test('whitespace around addresses and commas is ignored', () => {
    expect(r('10.0.0.1', '  203.0.113.7 ,10.0.0.2  ')).toBe('203.0.113.7');
  });

  test('garbage stops the walk at the last good address', () => {
    expect(r('10.0.0.1', 'evil, 203.0.113.7')).toBe('203.0.113.7');
    expect(r('10.0.0.1', '203.0.113.7, <script>, 10.0.0.2')).toBe('10.0.0.2');
    // Garbage as the rightmost hop: nothing believable in the header, the peer stays.
    expect(r('10.0.0.1', '203.0.113.7, not-an-ip')).toBe('10.0.0.1');
    expect(r('10.0.0.1', '')).toBe('10.0.0.1');
    expect(r('10.0.0.1', ',,,')).toBe('10.0.0.1');
    expect(r('10.0.0.1', '999.1.1.1')).toBe('10.0.0.1');
    expect(r('10.0.0.1', 'unknown')).toBe('10.0.0.1');
  });
});

describe('trusted peer, non-recursive', () => {
  const r = resolver(['10.0.0.0/8'], false);

  test('takes the last address, trusted or not', () => {
    expect(r('10.0.0.1', '203.0.113.7, 198.51.100.4')).toBe('198.51.100.4');
    expect(r('10.0.0.1', '203.0.113.7, 10.0.0.2')).toBe('10.0.0.2');
  });

  test('garbage as the last address: the peer', () => {
    expect(r('10.0.0.1', '203.0.113.7, garbage')).toBe('10.0.0.1');
    expect(r('10.0.0.1', '')).toBe('10.0.0.1');
  });
});

describe('IPv6', () => {
  test('IPv6 peers and CIDRs', () => {
    const r = resolver(['2001:db8::/32', '::1']);
    expect(r('2001:db8::5', '2001:db9::1')).toBe('2001:db9::1');
    expect(r('::1', '203.0.113.7, 2001:db8::1')).toBe('203.0.113.7');
    expect(r('2001:db9::5', '203.0.113.7')).toBe('2001:db9::5');
  });

  test('an IPv4-mapped peer (a "::" listener) matches IPv4 CIDRs and is reported as IPv4', () => {
    const r = resolver(['10.0.0.0/8']);
    expect(r('::ffff:10.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    expect(r('::ffff:192.0.2.1', '203.0.113.7')).toBe('192.0.2.1');
  });

  test('IPv4-mapped addresses inside the header are canonicalised and matched as IPv4', () => {
    const r = resolver(['10.0.0.0/8']);
    expect(r('10.0.0.1', '::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(r('10.0.0.1', '203.0.113.7, ::ffff:10.0.0.2')).toBe('203.0.113.7');
  });

  test('canonicalAddress only unwraps real IPv4-mapped addresses', () => {
    expect(canonicalAddress('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalAddress('::ffff:abcd')).toBe('::ffff:abcd');
    expect(canonicalAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(canonicalAddress('1.2.3.4')).toBe('1.2.3.4');
  });
});

describe('compileBlockList', () => {
  test('bare addresses and subnets of both families', () => {
    const list = compileBlockList(['192.0.2.7', '10.0.0.0/8', '2001:db8::/32', '::1']);
    expect(list.check('192.0.2.7', 'ipv4')).toBe(true);
    expect(list.check('192.0.2.8', 'ipv4')).toBe(false);
    expect(list.check('10.255.255.255', 'ipv4')).toBe(true);
    expect(list.check('11.0.0.0', 'ipv4')).toBe(false);
    expect(list.check('2001:db8:ffff::1', 'ipv6')).toBe(true);
    expect(list.check('::1', 'ipv6')).toBe(true);
    expect(list.check('::2', 'ipv6')).toBe(false);
  });
});
