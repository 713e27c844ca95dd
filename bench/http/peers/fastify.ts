import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import type { PeerListen } from './peers.ts';

/**
 * fastify with @fastify/http-proxy as its README sets it up: every path
 * forwarded to the upstream, reply-from's defaults (an undici Pool, keep-alive,
 * up to 128 connections), no logger (fastify's default, like Sluice's
 * access_log off in the bench).
 */
export async function serve(listen: PeerListen): Promise<void> {
  const app = Fastify();
  await app.register(proxy, { upstream: `http://127.0.0.1:${listen.upstreamPort}` });
  // fastify hands its listen options to node's server.listen, reusePort too, though its types do not name it.
  const options = { host: '127.0.0.1', port: listen.port, reusePort: true };
  await app.listen(options);
}
