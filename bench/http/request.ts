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
  /** Over HTTP/2 (TLS with ALPN h2), loaded by h2load instead of autocannon. */
  readonly http2: boolean;
}

/** What the bench hands a load-generator process (client.ts, h2load.ts) as its one argument, in JSON. */
export interface ClientProcessSettings extends LoadRequest {
  readonly connections: number;
  /** Seconds: the process stops itself after this many ticks. */
  readonly duration: number;
}

/** `url` with its `n` query argument set to `id` (see LoadRequest). */
export function withNewQuery(url: string, id: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}n=${id}`;
}

/**
 * One request as the load sends it (with a new query of its own when the
 * scenario varies it), checked for the headers the scenario expects; the
 * mismatch, or null.
 */
export async function probe(req: LoadRequest, expect: Readonly<Record<string, string>>): Promise<string | null> {
  const url = req.newQueryEachRequest ? withNewQuery(req.url, `probe-${Date.now()}`) : req.url;
  const r = await fetch(url, { headers: req.headers });
  await r.arrayBuffer();
  const wrong = Object.entries(expect).filter(([k, v]) => r.headers.get(k) !== v);
  return wrong.length === 0 ? null : `GET ${new URL(url).pathname}${new URL(url).search} answered ${r.status} with ` +
    wrong.map(([k, v]) => `${k}: ${r.headers.get(k) ?? '(none)'} (expected ${v})`).join(', ');
}
