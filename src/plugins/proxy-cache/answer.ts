import type { Exit } from '../pdk/index.ts';
import type { CacheStatus } from './counters.ts';
import type { Head } from './store.ts';

/** What a 304 carries of the entry (RFC 9110 §15.4.5): what a 200 would have said about caching and identity. */
const HEADERS_OF_304 = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified']);

/**
 * The answer from an entry (a HIT, or a stale or revalidated one, as `shown` says): its status, headers and body (the response
 * writer sends none for HEAD, with the GET's Content-Length), or a 304 when
 * `body` is null (the client's validator matched). Repeated fields are joined
 * with ", " (an Exit has one value per name; Set-Cookie, the one field that
 * cannot be joined, is never stored).
 */
export function hitExit(head: Head, body: Uint8Array | null, age: number, shown: { readonly status: CacheStatus; readonly digest: string } | null): Exit {
  const headers: Record<string, string> = {};
  const list = head.h;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (body === null && !HEADERS_OF_304.has(name)) continue;
    const prev = headers[name];
    headers[name] = prev === undefined ? list[i + 1]! : `${prev}, ${list[i + 1]!}`;
  }
  headers['age'] = String(age);
  if (shown !== null) {
    headers['x-cache-status'] = shown.status;
    headers['x-cache-key'] = shown.digest;
  }
  // An empty body goes as none, so the writer adds no Content-Type of its own.
  return body === null ? { status: 304, headers } : { status: head.s, body: body.length === 0 ? undefined : body, headers };
}
