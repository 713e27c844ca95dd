import type { Identity } from '../plugins/pdk/types.ts';

/**
 * The header lists around the proxy, in two steps with the plugins between them:
 *
 *   client's rawHeaders ─► clientHeaders ─► plugins (ctx.req.headers) ─► buildUpstreamHeaders ─► upstream
 *
 * Order matters (Traefik CVE-2021-32813, CVE-2024-45410, httpd CVE-2022-31813):
 * the names the client's `Connection` header lists are removed BEFORE the
 * plugins run, from the client's own headers only, so `Connection: X-Request-Id`
 * can never strip what correlation-id or any other plugin adds. After the
 * plugins, hop-by-hop headers and every copy of a header the gateway owns are
 * removed and the gateway's own are appended, so neither a client nor a plugin
 * can pre-set X-Forwarded-*, X-Real-IP or an identity.
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

/** Identity headers only an auth plugin may set, through ctx.identity (appendIdentityHeaders). */
const IDENTITY: ReadonlySet<string> = new Set([
  'x-consumer-username', 'x-user-id', 'x-company-id', 'x-anonymous-consumer',
]);

/**
 * Upstream frameworks fold `_` and `.` into `-` (WSGI/CGI's HTTP_X_USER_ID,
 * Rails), so `X_User_Id` would reach a Python service as X-User-Id (Traefik
 * CVE-2026-88011). Hence nginx's `underscores_in_headers off` (its default),
 * extended to `.` as its `ignore_invalid_headers on` does: a client header
 * whose name has `_` or `.` is dropped. So `X_Forwarded_For`, `X.Real.IP` or
 * `X_Authenticated_User` never reach a plugin or an upstream that would fold
 * them into a header the gateway or a plugin (forward-auth's
 * upstream_headers, correlation-id) vouches for.
 */
const isFoldable = (name: string): boolean => name.includes('_') || name.includes('.');

/**
 * A lower-case name as such upstreams read it. The client's foldable names
 * never get this far (clientHeaders); a plugin's spelling of a gateway-owned
 * or identity header is caught with it after the plugins. Only names starting
 * with `x` can fold into one of those (`host` and `expect` have no `-`).
 */
const FOLDED = /[_.]/g;
const folded = (lower: string): string =>
  lower.charCodeAt(0) === 0x78 /* x */ && isFoldable(lower) ? lower.replace(FOLDED, '-') : lower;

/** Connection tokens that never remove a header: the framing and the Host the request was routed by. */
const NOT_REMOVABLE: ReadonlySet<string> = new Set(['close', 'keep-alive', 'host', 'content-length']);

/** The usual spellings compare without lower-casing a copy of the name. */
const isConnection = (name: string): boolean => name === 'Connection' || name === 'connection' || name.toLowerCase() === 'connection';

/** Adds the lower-cased tokens of one Connection value, but those in `ignored`, to `into` (created when needed). */
function connectionTokens(value: string, into: Set<string> | null, ignored: ReadonlySet<string>): Set<string> | null {
  // Nearly every request: a bare `keep-alive` or `close`, which names no header.
  if (value === 'keep-alive' || value === 'close') return into;
  if (value.indexOf(',') === -1) return addToken(value, into, ignored);
  for (const token of value.split(',')) into = addToken(token, into, ignored);
  return into;
}

function addToken(token: string, into: Set<string> | null, ignored: ReadonlySet<string>): Set<string> | null {
  const t = token.trim().toLowerCase();
  if (t !== '' && !ignored.has(t)) (into ??= new Set()).add(t);
  return into;
}

/**
 * The client's headers as plugins see them: without the names its Connection
 * header lists (RFC 9110 §7.6.1) and without names an upstream would fold
 * (isFoldable). Returns `raw` itself, allocating nothing, when there is
 * nothing to drop (the usual request); else a copy without them.
 */
export function clientHeaders(raw: readonly string[]): readonly string[] {
  let listed: Set<string> | null = null;
  let dropped = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isFoldable(name)) dropped = true;
    else if (name.length === 10 && isConnection(name)) listed = connectionTokens(raw[i + 1]!, listed, NOT_REMOVABLE);
  }
  if (listed === null && !dropped) return raw;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isFoldable(name) || (listed !== null && listed.has(name.toLowerCase()))) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

export interface ForwardedFor {
  /** Host header to send upstream. */
  readonly host: string;
  /** The TCP peer, appended to X-Forwarded-For (nginx $proxy_add_x_forwarded_for). */
  readonly peer: string;
  /** The resolved client address (server.real_ip), sent as X-Real-IP. */
  readonly client: string;
  /** The Host the client asked for, sent as X-Forwarded-Host. */
  readonly clientHost: string;
  /** The scheme the client used, sent as X-Forwarded-Proto. */
  readonly proto: 'http' | 'https';
}

/**
 * The headers sent upstream, from the request's list as the plugins left it.
 * Returns a flat `[name, value, name, value, …]` list, which the upstream
 * client (upstream-client/request-head.ts) writes out as it is. The Host value sits at index {@link UPSTREAM_HOST_INDEX} so a
 * retry to another target can swap it without rebuilding the list.
 */
export function buildUpstreamHeaders(list: readonly string[], fwd: ForwardedFor): string[] {
  const out: string[] = [
    'host', fwd.host,
    'x-forwarded-for', '',
    'x-forwarded-proto', fwd.proto,
    'x-forwarded-host', fwd.clientHost,
    'x-real-ip', fwd.client,
  ];
  let xff: string | undefined;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    const key = folded(lower);
    if (IDENTITY.has(key)) continue;
    if (GATEWAY_OWNED.has(key)) {
      if (lower === 'x-forwarded-for') xff = xff === undefined ? list[i + 1]! : `${xff}, ${list[i + 1]!}`;
      continue;
    }
    out.push(name, list[i + 1]!);
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

const CLOSE_OR_KEEP_ALIVE: ReadonlySet<string> = new Set(['close', 'keep-alive']);

/**
 * Response side: the upstream's fields as the upstream client's parser gives
 * them (flat, names lower-cased, one entry per field line so set-cookie stays
 * apart). Drops hop-by-hop fields and the names the upstream's Connection
 * fields list, in place (the list is the parser's own, fresh per response),
 * and returns it for writeHead.
 */
export function buildDownstreamHeaders(list: string[]): string[] {
  let listed: Set<string> | null = null;
  let hop = false;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (!HOP_BY_HOP.has(name)) continue;
    hop = true;
    if (name === 'connection') listed = connectionTokens(list[i + 1]!, listed, CLOSE_OR_KEEP_ALIVE);
  }
  if (!hop) return list;
  let kept = 0;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name))) continue;
    list[kept++] = name;
    list[kept++] = list[i + 1]!;
  }
  list.length = kept;
  return list;
}
