/**
 * What every load-generator connection sends, over and over. Its own module,
 * free of side effects, because the client processes (client.ts) import it
 * as well as the bench.
 */
export interface LoadRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Give every request its own `n` query argument (a unique id), so a cache
   * sees a new key each time. The client then builds each request anew
   * instead of resending one buffer, which costs it CPU on a shared box:
   * compare such a scenario only with one that varies its query too.
   */
  readonly newQueryEachRequest: boolean;
}

/** `url` with its `n` query argument set to `id` (see LoadRequest). */
export function withNewQuery(url: string, id: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}n=${id}`;
}
