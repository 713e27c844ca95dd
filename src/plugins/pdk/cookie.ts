/**
 * The value of cookie `name` in a Cookie header (`a=1; b=2`): the first pair
 * of that name, as RFC 6265 orders them. Names are case-sensitive (RFC 6265),
 * unlike header names. Scans without splitting, so a lookup allocates only the
 * value it returns.
 */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    while (start < end && (header.charCodeAt(start) === 0x20 || header.charCodeAt(start) === 0x09)) start++;
    if (header.charCodeAt(start + name.length) === 0x3d /* = */ && header.startsWith(name, start)) {
      return header.slice(start + name.length + 1, end).trimEnd();
    }
    start = end + 1;
  }
  return undefined;
}
