import { BlockList, isIP } from 'node:net';
import { definePlugin, errorExit, s, Type } from '../pdk/index.ts';

/** `::ffff:1.2.3.4` is an IPv4 client seen through an IPv6 socket: match it (and rules) as IPv4. */
const canonical = (ip: string): string => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);
const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');

function compile(entries: readonly string[]): BlockList | null {
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
  return list;
}

const Schema = Type.Refine(
  s.object({
    allow: Type.Array(s.ipOrCidr({ description: 'An IP or CIDR' }), { default: [], description: 'Only these clients pass (empty: any not denied)' }),
    deny: Type.Array(s.ipOrCidr({ description: 'An IP or CIDR' }), { default: [], description: 'These clients are refused; checked before allow' }),
    status: Type.Integer({ minimum: 400, maximum: 599, default: 403, description: 'Status of the refusal' }),
    message: Type.String({ default: 'Your IP address is not allowed', description: 'Message in the JSON refusal body' }),
  }, { description: 'Allow or deny clients by address (the client address from server.real_ip)' }),
  (c) => c.allow.length + c.deny.length > 0,
  () => 'at least one of allow or deny must list an address',
);

/**
 * Kong's ip-restriction on `ctx.client`: the address `server.real_ip`
 * resolved, so a forwarded header counts only from a trusted peer. Deny wins
 * over allow; a non-empty allow list refuses everyone else.
 */
export const ipRestriction = definePlugin({
  name: 'ip-restriction',
  version: '1.0.0',
  priority: 990, // Kong's
  schema: Schema,
  create(conf) {
    const allow = compile(conf.allow);
    const deny = compile(conf.deny);
    const refusal = errorExit('GW_ERR_IP_DENIED', { status: conf.status, message: conf.message });
    return {
      access(ctx) {
        const ip = ctx.client;
        const f = family(ip);
        if (deny !== null && deny.check(ip, f)) return refusal;
        if (allow !== null && !allow.check(ip, f)) return refusal;
        return undefined;
      },
    };
  },
});
