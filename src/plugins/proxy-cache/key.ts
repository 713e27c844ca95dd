import { createHash } from 'node:crypto';
import type { Identity, ReadonlyHeaders } from '../pdk/index.ts';

/**
 * Cache keys. An entry lives under `pc|<route>|<path digest>|<digest>`, the
 * digest taken over the key material, everything that selects a response (and
 * kept in the entry, which a read compares): the route's cache
 * conf (so a changed conf never serves entries stored under the old rules),
 * the method class, Host, the normalised path, the query as configured, the
 * consumer and the conf's vary headers. The route (URI-encoded, so a `|` in a
 * name cannot make one route's prefix another's) and a digest of the path
 * alone are segments of their own: the master's purge (purge.ts) finds every
 * variant of a path, or every entry of a route, by key prefix.
 */

const SEP = '\u0000';

export const digestOf = (parts: readonly string[]): string =>
  createHash('sha256').update(parts.join(SEP)).digest('base64url').slice(0, 32);

/** What `create` fixes for every key of one conf. */
export interface KeySpec {
  readonly route: string;
  /** Digest of the conf (and the plugin's version). */
  readonly confDigest: string;
  /** Lower-case, sorted. */
  readonly varyHeaders: readonly string[];
  /** null = every argument. */
  readonly varyQuery: readonly string[] | null;
  readonly isolation: boolean;
}

/** What of one request goes into its key. */
export interface KeyRequest {
  readonly method: string;
  readonly path: string;
  /** The raw query, without `?`. */
  readonly query: string;
  readonly headers: ReadonlyHeaders;
  readonly identity: Identity | null;
  /** Where it goes (traffic-split may send one path to a tenant's private upstream): never one tenant's answer for another. */
  readonly upstream: string;
}

/** GET and HEAD read and write one entry: a HEAD is answered from a GET's. */
export const methodClass = (method: string): string => (method === 'HEAD' ? 'GET' : method);

/**
 * The query as it selects a response: its arguments sorted by name (values
 * of one name keep their order), so `?b=2&a=1` and `?a=1&b=2` are one entry;
 * with `only`, the other arguments are left out.
 */
export function normalisedQuery(raw: string, only: readonly string[] | null): string {
  if (raw === '') return '';
  const args = new URLSearchParams(raw);
  if (only !== null) for (const name of [...new Set(args.keys())]) if (!only.includes(name)) args.delete(name);
  args.sort();
  return args.toString();
}

/** Every value of each header, in the order `names` gives. */
const headerValues = (headers: ReadonlyHeaders, names: readonly string[]): string[] =>
  names.map((n) => headers.getAll(n).join(', '));

const consumerPart = (id: Identity | null): string =>
  id === null ? '' : `${id.consumer ?? ''}${SEP}${id.user_id ?? ''}${SEP}${id.anonymous ? 'anonymous' : ''}`;

/**
 * Everything that selects a response, joined: stored in the entry's head and
 * compared on every read, so the digest need not be collision-resistant (a
 * collision is a miss, never another request's answer).
 */
export function keyMaterial(spec: KeySpec, req: KeyRequest): string {
  return [
    spec.confDigest,
    req.upstream,
    methodClass(req.method),
    (req.headers.get('host') ?? '').toLowerCase(),
    req.path,
    normalisedQuery(req.query, spec.varyQuery),
    spec.isolation ? consumerPart(req.identity) : '',
    ...headerValues(req.headers, spec.varyHeaders),
  ].join(SEP);
}

/** The digest of a key's material: its dict key, and X-Cache-Key. */
export const keyDigest = (material: string): string => hash64(material);

/** Every key of a route's entries starts with this. */
export const routePrefix = (route: string): string => `pc|${encodeURIComponent(route)}|`;

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * 64 bits of FNV-1a in two 32-bit lanes, as 12 base64url characters: ~0.1 µs
 * where a sha256 costs ~1.5 µs on every lookup (and Number#toString ~0.12 µs
 * a lane). Not collision-resistant, and never trusted alone: a path digest
 * that collides only widens a purge, and an entry's digest is checked against
 * the key material its head holds.
 */
function hash64(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  let out = '';
  for (let i = 0; i < 6; i++, a >>>= 6, b >>>= 6) out += B64[a & 63]! + B64[b & 63]!;
  return out;
}

/** Every key of one path's entries (any method, consumer, query or vary value) starts with this. */
export const pathPrefix = (route: string, path: string): string => `${routePrefix(route)}${hash64(path)}|`;

export const entryKey = (route: string, path: string, digest: string): string => `${pathPrefix(route, path)}${digest}`;

/** The key of one variant of an entry whose response named `vary` (lower case, sorted). */
export const variantKey = (key: string, vary: readonly string[], headers: ReadonlyHeaders): string =>
  `${key}|${digestOf(headerValues(headers, vary))}`;

/** A response's Vary names, lower case, sorted, unique; `*` kept as is. */
export function varyNames(headers: ReadonlyHeaders): string[] {
  const names = new Set<string>();
  for (const v of headers.getAll('vary')) {
    for (const part of v.split(',')) {
      const n = part.trim().toLowerCase();
      if (n !== '') names.add(n);
    }
  }
  return [...names].sort();
}
