/**
 * The one request path the gateway uses for routing, plugins, cache keys and the
 * upstream request. Routing one spelling and forwarding another is the bug behind
 * Envoy CVE-2019-9901 / CVE-2021-29492, Traefik CVE-2025-32431 / CVE-2026-48020 and
 * APISIX CVE-2021-43557, so the target is parsed by hand (never `new URL(p, base)`,
 * which turns `//admin/secret` into host `admin`) and every ambiguous spelling is
 * either made canonical or rejected:
 *
 * - only unreserved escapes (ALPHA DIGIT - . _ ~) are decoded; other escapes keep
 *   their meaning and get upper-case hex, so `%3b` and `%3B` route alike;
 * - escapes that would change the path's structure once an upstream decodes them
 *   (`%2F`, `%5C`, `%00`, `%23`), raw `\`, raw `#`, control and non-ASCII bytes and
 *   malformed escapes are rejected;
 * - duplicate slashes are merged before dot segments are resolved (nginx
 *   merge_slashes), `.`/`..` are resolved after decoding (RFC 3986 §5.2.4), and `..`
 *   above the root is rejected, as nginx answers 400 to it;
 * - a `.`, `..` or empty segment carrying `;` parameters (`..;x`, `.;`, `;x`, also
 *   spelled `%2e%2e;` or `..%3B`) is rejected: Tomcat and Spring drop the parameters
 *   before resolving dot segments, so `/api/..;/admin` would be routed under `/api/`
 *   and served as `/admin`. `;` elsewhere in a segment (`/a;v=1`) stays as sent.
 *
 * The query string is returned raw: its meaning belongs to the upstream.
 */

export interface NormalizedTarget {
  readonly path: string;
  /** Raw query without the '?'; '' when there is none. */
  readonly query: string;
}

export type PathErrorReason =
  | 'not origin-form'
  | 'bad character'
  | 'backslash'
  | 'fragment'
  | 'bad escape'
  | 'encoded slash'
  | 'encoded backslash'
  | 'encoded nul'
  | 'encoded hash'
  | 'above root'
  | 'dot segment parameters';

export interface PathError {
  readonly error: PathErrorReason;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const HASH = 0x23;
const QUESTION = 0x3f;
const SEMICOLON = 0x3b;

const HEX_UPPER = '0123456789ABCDEF';

const hexValue = (c: number): number => {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x57;
  return -1;
};

const isUnreserved = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || // a-z
  (c >= 0x41 && c <= 0x5a) || // A-Z
  (c >= 0x30 && c <= 0x39) || // 0-9
  c === 0x2d || // -
  c === DOT ||
  c === 0x5f || // _
  c === 0x7e; // ~

/** Node's parser already refuses these in a request line; checked again so the guarantee does not rest on it. */
const isBadByte = (c: number): boolean => c <= 0x20 || c >= 0x7f;

export function normalizePath(target: string): NormalizedTarget | PathError {
  if (target.charCodeAt(0) !== SLASH) return { error: 'not origin-form' };
  // Fast path: one scan up to '?'. Without '%' a dot segment (or one made only of
  // parameters) can only start right after a '/', so `/app.js` and `/a;v=1` stay
  // fast while `/./`, `/../` and `/;x` take the slow path.
  const length = target.length;
  let end = length;
  let slow = false;
  let prev = SLASH;
  for (let i = 1; i < length; i++) {
    const c = target.charCodeAt(i);
    if (c === QUESTION) {
      end = i;
      break;
    }
    if (c === PERCENT || ((c === SLASH || c === DOT || c === SEMICOLON) && prev === SLASH)) slow = true;
    else if (c === BACKSLASH) return { error: 'backslash' };
    else if (c === HASH) return { error: 'fragment' };
    else if (isBadByte(c)) return { error: 'bad character' };
    prev = c;
  }
  let query = '';
  if (end < length) {
    query = target.slice(end + 1);
    // A '#' cannot appear in a request-target; an upstream would cut the query there.
    if (query.indexOf('#') !== -1) return { error: 'fragment' };
  }
  if (!slow) return { path: end === length ? target : target.slice(0, end), query };
  return normalizeSlow(target, end, query);
}

/**
 * A segment that is empty, `.` or `..` once its parameters are cut at the first
 * `;`: what Tomcat/Spring resolve as a dot segment. Escapes in `segment` are
 * already decoded (`%2e`) or upper-cased (`%3B`).
 */
function hasDotParameters(segment: string): boolean {
  let name = 0;
  while (name < 2 && segment.charCodeAt(name) === DOT) name++;
  return segment.charCodeAt(name) === SEMICOLON || segment.startsWith('%3B', name);
}

function normalizeSlow(target: string, end: number, query: string): NormalizedTarget | PathError {
  const segments: string[] = [];
  let segment = '';
  // Index 0 is the leading '/'; i === end closes the last segment.
  for (let i = 1; i <= end; i++) {
    const c = i === end ? SLASH : target.charCodeAt(i);
    if (c === SLASH) {
      if (hasDotParameters(segment)) return { error: 'dot segment parameters' };
      if (segment === '..') {
        if (segments.length === 0) return { error: 'above root' };
        segments.pop();
      } else if (segment !== '' && segment !== '.') segments.push(segment);
      if (i !== end) segment = '';
      continue;
    }
    if (c !== PERCENT) {
      // Copy the run of plain characters in one slice rather than char by char.
      let runEnd = i + 1;
      while (runEnd < end) {
        const next = target.charCodeAt(runEnd);
        if (next === SLASH || next === PERCENT) break;
        runEnd++;
      }
      segment += target.slice(i, runEnd);
      i = runEnd - 1;
      continue;
    }
    const hi = i + 2 < end ? hexValue(target.charCodeAt(i + 1)) : -1;
    const lo = hi === -1 ? -1 : hexValue(target.charCodeAt(i + 2));
    if (lo === -1) return { error: 'bad escape' };
    const byte = (hi << 4) | lo;
    if (byte === SLASH) return { error: 'encoded slash' };
    if (byte === BACKSLASH) return { error: 'encoded backslash' };
    if (byte === 0) return { error: 'encoded nul' };
    if (byte === HASH) return { error: 'encoded hash' };
    segment += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX_UPPER[hi] + HEX_UPPER[lo];
    i += 2;
  }
  // `segment` now holds what followed the last '/': empty, '.' or '..' all mean the
  // result names a directory, so it keeps a trailing slash (`/a/b/..` -> `/a/`).
  const trailing = segment === '' || segment === '.' || segment === '..';
  if (segments.length === 0) return { path: '/', query };
  const path = '/' + segments.join('/');
  return { path: trailing ? path + '/' : path, query };
}
