import { BlockList, isIP } from 'node:net';

/**
 * A set of IP addresses and CIDRs (as `s.ipOrCidr` checked them), compiled
 * once per conf onto node:net's BlockList, matched against `ctx.client`.
 * IPv4 clients seen through an IPv6 socket (`::ffff:1.2.3.4`) and
 * IPv4-mapped rules match as IPv4, which naive CIDR code gets wrong.
 * @example const office = addressSet(['10.0.0.0/8']); if (office?.has(ctx.client)) …
 */
export interface AddressSet {
  has(ip: string): boolean;
}

/** `::ffff:1.2.3.4` is an IPv4 client seen through an IPv6 socket: match it (and rules) as IPv4. */
const canonical = (ip: string): string => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);
const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

/** null for an empty list: the caller then skips the check altogether. */
export function addressSet(entries: readonly string[]): AddressSet | null {
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    if (slash === -1) list.addAddress(canonical(entry), family(canonical(entry)));
    else {
      const net = entry.slice(0, slash);
      const bits = Number(entry.slice(slash + 1));
      // An IPv4-mapped rule (::ffff:10.0.0.0/104) is the IPv4 rule 10.0.0.0/8.
      if (canonical(net) !== net && bits >= 96) list.addSubnet(canonical(net), bits - 96, 'ipv4');
      else list.addSubnet(net, bits, family(net));
    }
  }
  return { has: (ip) => list.check(ip, family(ip)) };
}
