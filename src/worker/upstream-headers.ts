import type { Identity } from '../plugins/pdk/types.ts';

/**
 * Builds the header list sent upstream from the client's raw headers.
 *
 * Order matters (Traefik CVE-2021-32813, CVE-2024-45410, httpd CVE-2022-31813):
 * the client's hop-by-hop headers, the names its `Connection` header lists, and
 * its copies of every header the gateway owns are removed FIRST; the gateway's
 * own headers are appended AFTER. So `Connection: X-Forwarded-For` can never strip
 * what the gateway adds, and a client can never pre-set X-Real-IP or an identity.
 */

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones nginx also drops. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/**
 * Headers the gateway sets itself; the client's copies are dropped, never
 * forwarded. `expect` is here because the gateway's server already answered
 * `100 Continue` to the client; the upstream gets the body without asking.
 */
const GATEWAY_OWNED: ReadonlySet<string> = new Set([
  'host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'expect',
]);

/**
 * Identity headers only an auth plugin may set. Upstream frameworks fold `_` and
 * `.` into `-` (WSGI, Rails), so `X_User_Id` would reach a Python service as
 * X-User-Id: those spellings are removed too (Traefik CVE-2026-88011).
 */
const IDENTITY: ReadonlySet<string> = new Set([
  'x-consumer-username', 'x-user-id', 'x-company-id', 'x-anonymous-consumer',
]);

const FOLDED = /[_.]/g;

export const isIdentityHeader = (lowerName: string): boolean =>
  IDENTITY.has(lowerName) ||
  (lowerName.startsWith('x') && (lowerName.includes('_') || lowerName.includes('.')) &&
    IDENTITY.has(lowerName.replace(FOLDED, '-')));

export interface ForwardedFor {
  /** Host header to send upstream. */
  readonly host: string;
  /** The TCP peer, appended to X-Forwarded-For (nginx $proxy_add_x_forwarded_for). */
  readonly peer: string;
  /** The resolved client address (server.real_ip), sent as X-Real-IP. */
  readonly client: string;
  /** The Host the client asked for, sent as X-Forwarded-Host. */
  readonly clientHost: string;
}

/** Tokens of every Connection header, lower-cased; usually just `keep-alive`. */
function connectionTokens(raw: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const token of raw[i + 1]!.split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && t !== 'close' && t !== 'keep-alive') (tokens ??= new Set()).add(t);
    }
  }
  return tokens;
}

/**
 * Returns a flat `[name, value, name, value, …]` list, the form undici takes
 * without copying. The Host value sits at index {@link UPSTREAM_HOST_INDEX} so a
 * retry to another target can swap it without rebuilding the list.
 */
export function buildUpstreamHeaders(raw: readonly string[], fwd: ForwardedFor): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [
    'host', fwd.host,
    'x-forwarded-for', '',
    'x-forwarded-proto', 'http',
    'x-forwarded-host', fwd.clientHost,
    'x-real-ip', fwd.client,
  ];
  let xff: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || isIdentityHeader(lower)) continue;
    if (GATEWAY_OWNED.has(lower)) {
      if (lower === 'x-forwarded-for') xff = xff === undefined ? raw[i + 1]! : `${xff}, ${raw[i + 1]!}`;
      continue;
    }
    if (listed !== null && listed.has(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  out[3] = xff === undefined ? fwd.peer : `${xff}, ${fwd.peer}`;
  return out;
}

export const UPSTREAM_HOST_INDEX = 1;

/** A value that cannot end or split a header line (a JWT claim is client data). */
const SAFE_VALUE = /^[\x20-\x7e\t]*$/;

/**
 * The identity an auth plugin established, as the only identity headers the
 * upstream receives (every client copy was removed by buildUpstreamHeaders).
 * A value that is not a safe header value is left out rather than sent.
 */
export function appendIdentityHeaders(out: string[], id: Identity): void {
  if (id.consumer !== null && SAFE_VALUE.test(id.consumer)) out.push('x-consumer-username', id.consumer);
  if (id.user_id !== null && SAFE_VALUE.test(id.user_id)) out.push('x-user-id', id.user_id);
  if (id.company_id !== null && SAFE_VALUE.test(id.company_id)) out.push('x-company-id', id.company_id);
  if (id.anonymous) out.push('x-anonymous-consumer', 'true');
}

/**
 * Response side: undici hands headers as a lower-cased object (arrays for
 * repeated names such as set-cookie). Drops hop-by-hop headers and the names
 * the upstream's Connection header lists; returns a flat list for writeHead.
 */
export function buildDownstreamHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  const conn = headers['connection'];
  const listed = conn === undefined ? null : connectionTokens(['connection', Array.isArray(conn) ? conn.join(',') : conn]);
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name))) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  return out;
}
