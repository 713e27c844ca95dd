import type { ReadonlyHeaders } from '../pdk/index.ts';

/**
 * RFC 9111 for a shared cache: whether a response may be stored and for how
 * long it stays fresh, and how a request's own headers take part.
 */

/** Cache-Control directives, lower-case names; a value without `=` is null, quotes removed. */
export function cacheControl(headers: ReadonlyHeaders): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const v of headers.getAll('cache-control')) {
    for (const part of v.split(',')) {
      const eq = part.indexOf('=');
      const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      if (name === '') continue;
      const value = eq < 0 ? null : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (!out.has(name)) out.set(name, value);
    }
  }
  return out;
}

/** A delta-seconds directive value, or null when absent or malformed (RFC 9111 §1.2.2). */
function seconds(cc: Map<string, string | null>, name: string): number | null {
  const v = cc.get(name);
  return v === undefined || v === null || !/^\d+$/.test(v) ? null : Number(v);
}

export interface StoreRules {
  readonly statuses: ReadonlySet<number>;
  /** Lower-case media types; empty = any. */
  readonly contentTypes: ReadonlySet<string>;
  readonly ttlMs: number;
  readonly cacheControl: boolean;
}

/** What of the request decides whether its response may be stored. */
export interface RequestFacts {
  readonly authorization: boolean;
  /** A consumer was verified and the key isolates it. */
  readonly isolatedConsumer: boolean;
}

/** Why a response is not stored (for tests and debug logs), or its freshness in ms. */
export type Verdict = { readonly store: true; readonly freshMs: number } | { readonly store: false; readonly why: string };

const no = (why: string): Verdict => ({ store: false, why });

/**
 * Whether a response may be stored, and for how long it is fresh from now
 * (`now` in ms, for a response with no Date): s-maxage, else max-age, else
 * Expires − Date, else the conf's ttl, less the Age it already has.
 */
export function verdict(rules: StoreRules, req: RequestFacts, status: number, headers: ReadonlyHeaders, now: number): Verdict {
  if (status === 206) return no('partial content');
  if (!rules.statuses.has(status)) return no('status');
  if (headers.has('set-cookie')) return no('set-cookie');
  if (headers.getAll('vary').some((v) => v.split(',').some((n) => n.trim() === '*'))) return no('vary *');
  if (rules.contentTypes.size > 0) {
    const type = (headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (!rules.contentTypes.has(type)) return no('content type');
  }
  const cc = cacheControl(headers);
  if (req.authorization && !req.isolatedConsumer && !cc.has('public') && !cc.has('s-maxage')) return no('authorization');
  let lifetime = rules.ttlMs;
  if (rules.cacheControl) {
    if (cc.has('no-store')) return no('no-store');
    if (cc.has('private')) return no('private');
    if (cc.has('no-cache')) return no('no-cache');
    const given = seconds(cc, 's-maxage') ?? seconds(cc, 'max-age');
    if (given !== null) lifetime = given * 1000;
    else {
      const expires = headers.get('expires');
      if (expires !== undefined) {
        const date = Date.parse(headers.get('date') ?? '');
        const at = Date.parse(expires);
        // An invalid Expires (e.g. "0") means already expired (RFC 9111 §5.3).
        lifetime = Number.isNaN(at) ? 0 : at - (Number.isNaN(date) ? now : date);
      }
    }
  }
  const freshMs = lifetime - initialAge(headers) * 1000;
  return freshMs > 0 ? { store: true, freshMs } : no('not fresh');
}

/** The response's own Age in seconds (it came through another cache). */
export function initialAge(headers: ReadonlyHeaders): number {
  const age = headers.get('age');
  return age !== undefined && /^\d+$/.test(age.trim()) ? Number(age.trim()) : 0;
}

/** A request's Cache-Control: no-cache or no-store asks for a response from the upstream. */
export function requestBypasses(headers: ReadonlyHeaders): boolean {
  if (!headers.has('cache-control')) return false;
  const cc = cacheControl(headers);
  return cc.has('no-cache') || cc.has('no-store');
}

/** The request carries a body (which a cached answer would ignore). */
export const hasBody = (headers: ReadonlyHeaders): boolean =>
  headers.has('transfer-encoding') || (headers.has('content-length') && headers.get('content-length')!.trim() !== '0');

const opaqueTag = (tag: string): string => tag.trim().replace(/^W\//, '');

/**
 * A client's conditional request against a fresh entry (RFC 9110 §13.2.2):
 * If-None-Match (weak comparison) decides when present, else
 * If-Modified-Since against the entry's Last-Modified.
 */
export function notModified(req: ReadonlyHeaders, entry: ReadonlyHeaders): boolean {
  const inm = req.getAll('if-none-match');
  if (inm.length > 0) {
    const etag = entry.get('etag');
    const tags = inm.join(',').split(',').map((t) => t.trim());
    if (tags.includes('*')) return true;
    return etag !== undefined && tags.some((t) => t !== '' && opaqueTag(t) === opaqueTag(etag));
  }
  const ims = req.get('if-modified-since');
  const lm = entry.get('last-modified');
  if (ims === undefined || lm === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lm);
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
}
