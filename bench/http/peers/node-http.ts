import { createServer } from 'node:http';
import type { PeerListen } from './peers.ts';

/**
 * Not a gateway: node:http answering the `return:` route's 12 bytes itself,
 * with nothing between the parser and the write. The most any gateway built
 * on node:http (Sluice, fastify, fast-gateway) can do with a request, so the
 * `return:` rows read against it as well as against nginx's `return 200`.
 */
export async function serve(listen: PeerListen): Promise<void> {
  const server = createServer({ keepAliveTimeout: 75_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' });
    res.end('hello world\n');
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: listen.port, reusePort: true }, resolve));
}
