import type { UpstreamConf } from '../config/types.ts';
import { cookieValue } from '../plugins/pdk/cookie.ts';
import type { HashKey } from './balancer.ts';

/**
 * `hash_on`, compiled once per upstream into the function that reads a
 * consistent-hash key from a request. A request without the key (no identity
 * on a route without auth, no such header or cookie, an empty value) gets
 * undefined, which the balancer answers with round-robin, as nginx's `hash`
 * does for an empty key.
 */

/** What a key is read from: the request once the access phase has set its identity. */
export interface HashSource {
  /** The client address after `server.real_ip`. */
  readonly client: string;
  /** The normalised path without the query (nginx `$uri`). */
  readonly path: string;
  /** Set by an auth plugin; null on routes without auth and before the access phase. */
  readonly identity: {
    readonly consumer: string | null;
    readonly user_id: string | null;
    readonly company_id: string | null;
  } | null;
  /**
   * The request header `name` (lower case); a repeated field joined as nginx's
   * `$http_NAME` and Node's `req.headers` join it: Cookie with "; ", others with ", ".
   */
  header(name: string): string | undefined;
}

export type HashKeyFn = (req: HashSource) => HashKey;

/** An empty value is no key: it would send every such request to one target. */
const present = (v: string | null | undefined): HashKey => (v === null || v === '' ? undefined : v);

/**
 * `hashOn` as the conf loader validated it (ip | consumer | user_id |
 * company_id | uri | header:NAME | cookie:NAME); null gives null, so an
 * upstream without consistent hashing costs the request path nothing.
 */
export function compileHashKey(hashOn: string | null): HashKeyFn | null {
  if (hashOn === null) return null;
  switch (hashOn) {
    case 'ip': return (req) => present(req.client);
    case 'uri': return (req) => present(req.path);
    case 'consumer': return (req) => present(req.identity?.consumer);
    case 'user_id': return (req) => present(req.identity?.user_id);
    case 'company_id': return (req) => present(req.identity?.company_id);
  }
  if (hashOn.startsWith('header:')) {
    const name = hashOn.slice('header:'.length).toLowerCase();
    return (req) => present(req.header(name));
  }
  if (hashOn.startsWith('cookie:')) {
    // Cookie names are case-sensitive (RFC 6265), header names are not.
    const name = hashOn.slice('cookie:'.length);
    return (req) => {
      const cookies = req.header('cookie');
      return cookies === undefined ? undefined : present(cookieValue(cookies, name));
    };
  }
  throw new TypeError(`hash_on: ${hashOn} is not ip, consumer, user_id, company_id, uri, header:NAME or cookie:NAME`);
}

/** The key function for an upstream: only `consistent-hash` reads `hash_on` (which defaults to ip for every upstream). */
export const upstreamHashKey = (upstream: UpstreamConf): HashKeyFn | null =>
  compileHashKey(upstream.algorithm === 'consistent-hash' ? upstream.hash_on : null);
