import { createServer } from 'node:net';

/**
 * A port that was free a moment ago. Workers must share one fixed port
 * (SO_REUSEPORT), so port 0 cannot be handed to the gateway itself: ask the
 * kernel for an ephemeral port, release it, and use that.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
