import type { Socket } from 'node:net';
import { expect, test } from 'vitest';
import { forwardAuth } from '../../../src/plugins/forward-auth/index.ts';
import { harness } from '../../helpers/plugin-harness.ts';
import { startUpstream } from '../../helpers/upstream.ts';

test('dispose closes the keep-alive connections to the auth service', async () => {
  const auth = await startUpstream((_req, res) => res.writeHead(200, { 'x-consumer-username': 'alice' }).end());
  const open = new Set<Socket>();
  auth.server.on('connection', (sock: Socket) => {
    open.add(sock);
    sock.once('close', () => open.delete(sock));
  });
  try {
    const h = harness([forwardAuth], { 'forward-auth': { uri: `http://${auth.address}/auth` } });
    expect((await h.run()).status).toBe(200);
    expect(open.size).toBe(1);
    const [sock] = open;
    // Undici itself drops an idle connection after some seconds: dispose must close it well before.
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(resolve, 1_000, false);
      sock!.once('close', () => { clearTimeout(timer); resolve(true); });
    });
    await h.dispose();
    expect(await closed).toBe(true);
  } finally {
    await auth.close();
  }
});
