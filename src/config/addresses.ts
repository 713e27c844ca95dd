/**
 * Network values in the conf: `host:port` addresses (IPv6 in brackets), IPs/CIDRs for
 * realip, and host names for routes. Each returns the parsed value or a reason string.
 */
import { BlockList, isIP } from 'node:net';

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`. Port 0 only where `minPort` is 0 (listen). */
export function parseHostPort(s: string, minPort: 0 | 1): HostPort | string {
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(s);
  if (v6 !== null) {
    host = v6[1] as string;
    portText = v6[2] as string;
    if (isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return `expected host:port, got "${s}"`;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return `IPv6 addresses are written in brackets, e.g. [::1]:8080`;
    if (host === '') return `missing host in "${s}"`;
    if (isIP(host) === 0 && !HOSTNAME.test(host)) return `"${host}" is not a valid host name or IP address`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `invalid port "${portText}"`;
  const port = Number(portText);
  if (port < minPort || port > 65535) return `port ${port} is out of range ${minPort}..65535`;
  return { host, port };
}

/** An IP or CIDR accepted by node:net BlockList, as realip and ip-restriction match with it. */
export function checkCidr(s: string): string | null {
  const slash = s.indexOf('/');
  const ip = slash < 0 ? s : s.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return `"${ip}" is not an IP address`;
  if (slash < 0) return null;
  const bitsText = s.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return `invalid prefix length "/${bitsText}" (0..${max})`;
  try {
    new BlockList().addSubnet(ip, Number(bitsText), family === 4 ? 'ipv4' : 'ipv6');
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

/** Route host: exact name or a leading `*.` wildcard. */
export function checkRouteHost(s: string): string | null {
  const name = s.startsWith('*.') ? s.slice(2) : s;
  if (isIP(name) !== 0 && name === s) return null;
  return HOSTNAME.test(name) ? null : `"${s}" is not a host name (exact, or a leading "*." wildcard)`;
}

/** A name a certificate is verified against and sent as SNI: a DNS name, as RFC 6066 has no SNI for an IP. */
export function checkServerName(s: string): string | null {
  if (isIP(s.replace(/^\[|\]$/g, '')) !== 0) return 'an IP address is not a server name (no SNI for an IP): leave server_name null to verify the target\'s IP';
  return HOSTNAME.test(s) ? null : `"${s}" is not a host name`;
}
