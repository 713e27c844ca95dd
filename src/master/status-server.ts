import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ListenAddr } from '../config/types.ts';
import { errorBody, errorStatus } from '../plugins/pdk/errors.ts';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import type { PurgeAnswer } from './cache.ts';

/**
 * The status listener (DESIGN.md §7): served by the master, never by a worker,
 * so it answers even while every worker is busy or being replaced. It
 * reports (the master assembles the document from shared counters on each
 * GET), and it purges the response cache: private by its address, it is the
 * operator's, so the one write it takes is here.
 */
export interface StatusSources {
  /** GET /status: JSON. */
  status(): unknown;
  /** GET /metrics: Prometheus text exposition. */
  metrics(): string;
  /** DELETE /cache?route=NAME[&path=/x]: proxy-cache entries removed. */
  purge(query: URLSearchParams): PurgeAnswer;
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

function sendError(res: ServerResponse, code: GatewayErrorCode, head: boolean): void {
  const body = errorBody(code);
  res.writeHead(errorStatus(code), { 'content-type': 'application/json', 'content-length': body.length });
  res.end(head ? undefined : body);
}

export function startStatusServer(addr: ListenAddr, sources: StatusSources): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/cache') {
      let answer: PurgeAnswer = { code: 'GW_ERR_METHOD_NOT_ALLOWED' };
      try {
        if (req.method === 'DELETE') answer = sources.purge(new URLSearchParams(q < 0 ? '' : url.slice(q + 1)));
      } catch {
        answer = { code: 'GW_ERR_INTERNAL' }; // a throw here would end the master, and every worker with it
      }
      if ('code' in answer) return sendError(res, answer.code, req.method === 'HEAD');
      const body = `${JSON.stringify(answer)}\n`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (read && (path === '/status' || path === '/metrics')) {
      const [body, type] = path === '/status'
        ? [`${JSON.stringify(sources.status(), null, 2)}\n`, 'application/json']
        : [sources.metrics(), PROMETHEUS_TEXT];
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    sendError(res, 'GW_ERR_NOT_FOUND', req.method === 'HEAD');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: addr.host, port: addr.port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
