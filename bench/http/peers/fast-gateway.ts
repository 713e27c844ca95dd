import gateway from 'fast-gateway';
import type { PeerListen } from './peers.ts';

/**
 * fast-gateway as its README sets it up: one route to the upstream, over its
 * default proxy (fast-proxy-lite: node:http with a keep-alive agent) on
 * restana. The empty prefix forwards every path as the client sent it, as
 * nginx's proxy_pass and @fastify/http-proxy do.
 */
export async function serve(listen: PeerListen): Promise<void> {
  const server = gateway({ routes: [{ prefix: '', target: `http://127.0.0.1:${listen.upstreamPort}` }] });
  await server.start({ host: '127.0.0.1', port: listen.port, reusePort: true });
}
