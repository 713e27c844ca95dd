import { createServer } from 'node:http';
import type { Server } from 'node:http';

/**
 * The demo upstream `npm start` runs behind the shipped conf, and the upstream
 * the benchmark proxies to. It answers what it received as JSON, so a curl
 * through the gateway shows the path, the forwarded headers and the body as the
 * upstream saw them. `/stream…` paths pipe the request body straight back.
 */
export function startEchoUpstream(port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url!.startsWith('/stream')) {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000; // outlive the gateway's pooled sockets, as an upstream should
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
