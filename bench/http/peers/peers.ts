/**
 * The Node gateways the bench runs beside Sluice, each a module of this
 * folder exporting `serve`, started in processes by serve.ts. Free of side
 * effects: the bench imports it as well as serve.ts.
 */
export interface PeerListen {
  readonly port: number;
  readonly upstreamPort: number;
}

/**
 * Each peer's module (`./<peer>.ts`) and the packages whose versions name it
 * in the bench's output; none for the two references built on Node alone.
 */
export const PEERS = {
  fastify: ['fastify', '@fastify/http-proxy'],
  'fast-gateway': ['fast-gateway'],
  'node-http': [],
  'node-net': [],
} as const;
export type Peer = keyof typeof PEERS;

export const isPeer = (name: string | undefined): name is Peer => name !== undefined && Object.hasOwn(PEERS, name);
