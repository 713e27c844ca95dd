import { BlockList, isIP } from 'node:net';
import type { RealIpConf } from '../config/types.ts';

/**
 * nginx realip: the client address is the TCP peer unless that peer is trusted,
 * in which case the configured header is believed. With `recursive` the header
 * is walked from the right and the first untrusted address wins, so a client
 * cannot prepend a forged address to X-Forwarded-For and be believed (Kong#1661).
 *
 * Resolved once per request; plugins, logs and X-Real-IP all read the result.
 */
export type ClientAddressResolver = (peer: string, headerValue: string | undefined) => string;

const addressFamily = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

/** `::ffff:1.2.3.4` is how a `::` listener reports IPv4 peers; log and match the IPv4 form. */
export const canonicalAddress = (ip: string): string =>
  ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;

export function compileBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    if (slash === -1) list.addAddress(entry, addressFamily(entry));
    else {
      const net = entry.slice(0, slash);
      list.addSubnet(net, Number(entry.slice(slash + 1)), addressFamily(net));
    }
  }
  return list;
}

export function createClientAddressResolver(conf: RealIpConf | null): ClientAddressResolver {
  if (conf === null || conf.trusted.length === 0) return (peer) => canonicalAddress(peer);
  const trusted = compileBlockList(conf.trusted);
  const isTrusted = (ip: string): boolean => isIP(ip) !== 0 && trusted.check(ip, addressFamily(ip));
  return (rawPeer, headerValue) => {
    const peer = canonicalAddress(rawPeer);
    if (headerValue === undefined || !isTrusted(peer)) return peer;
    const hops = headerValue.split(',');
    if (!conf.recursive) {
      const last = canonicalAddress((hops[hops.length - 1] ?? '').trim());
      return isIP(last) !== 0 ? last : peer;
    }
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = canonicalAddress((hops[i] ?? '').trim());
      if (isIP(hop) === 0) break; // garbage in the chain: stop at the last good address
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}
