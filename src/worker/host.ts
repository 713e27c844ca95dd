import { isIPv6 } from 'node:net';

/**
 * Whether a Host header (or the authority of an absolute-form target) is one a
 * gateway may route by and forward: `uri-host [ ":" port ]` (RFC 9110 §7.2,
 * RFC 3986 §3.2.2), where uri-host is a bracketed IPv6 address or a name whose
 * dot-separated labels are letters, digits, `-` and `_`.
 *
 * Stricter than RFC 3986's reg-name, which also allows percent-escapes and
 * sub-delims (`!$&'()*+,;=`): none of them belongs in a host name, and each
 * would travel on as X-Forwarded-Host (or as Host on `preserve_host` routes)
 * into upstreams that split on `,` or `;`. Like nginx's host checks
 * (ngx_http_validate_host), an empty label (`..example.com`, `.example.com`)
 * is refused and one trailing dot is allowed (the router drops it). The port is
 * 1 to 5 digits, at most 65535. IPv6 zone ids and IPvFuture are refused.
 *
 * A scan of char codes: nothing is allocated for a name, only for an IPv6 literal.
 */
export function isValidHost(host: string): boolean {
  const length = host.length;
  let i = 0;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    if (close === -1) return false;
    const address = host.slice(1, close);
    // isIPv6 accepts a zone id (`fe80::1%eth0`); a URI would need it as `%25`, and no route names one.
    if (address.indexOf('%') !== -1 || !isIPv6(address)) return false;
    i = close + 1;
  } else {
    let label = 0;
    for (; i < length; i++) {
      const c = host.charCodeAt(i);
      if (c === 0x2e /* . */) {
        if (label === 0) return false;
        label = 0;
      } else if (c === 0x3a /* : */) {
        break;
      } else if (isLabelChar(c)) {
        label++;
      } else {
        return false;
      }
    }
    if (i === 0) return false;
  }
  if (i === length) return true;
  if (host.charCodeAt(i) !== 0x3a) return false;
  return isPort(host, i + 1);
}

const isLabelChar = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || // a-z
  (c >= 0x41 && c <= 0x5a) || // A-Z
  (c >= 0x30 && c <= 0x39) || // 0-9
  c === 0x2d || // -
  c === 0x5f; // _

function isPort(host: string, from: number): boolean {
  const digits = host.length - from;
  if (digits < 1 || digits > 5) return false;
  let port = 0;
  for (let i = from; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    port = port * 10 + (c - 0x30);
  }
  return port <= 65535;
}
