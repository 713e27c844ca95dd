import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ListenAddr } from '../config/types.ts';
import { errorBody, errorStatus } from '../plugins/pdk/errors.ts';

/**
 * The status listener (DESIGN.md §7): served by the master, never by a worker,
 * so it answers even while every worker is busy or being replaced. It only
 * reports: the master assembles the document from shared counters on each GET.
 */
export interface StatusSources {
  /** GET /status: JSON. */
  status(): unknown;
  /** GET /metrics: Prometheus text exposition. */
  metrics(): string;
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

export function startStatusServer(addr: ListenAddr, sources: StatusSources): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (read && (path === '/status' || path === '/metrics')) {
      const [body, type] = path === '/status'
        ? [`${JSON.stringify(sources.status(), null, 2)}\n`, 'application/json']
        : [sources.metrics(), PROMETHEUS_TEXT];
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const notFound = errorBody('GW_ERR_NOT_FOUND');
    res.writeHead(errorStatus('GW_ERR_NOT_FOUND'), { 'content-type': 'application/json', 'content-length': notFound.length });
    res.end(req.method === 'HEAD' ? undefined : notFound);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: addr.host, port: addr.port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
