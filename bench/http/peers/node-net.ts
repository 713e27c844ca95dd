import { createServer } from 'node:net';
import type { PeerListen } from './peers.ts';

/**
 * Not an HTTP server: the floor under any Node one. A node:net socket that
 * counts the requests in what it reads (each head ends in a blank line; the
 * load generators send no bodies) and writes a fixed response for each, with
 * no parsing, no validation and no objects per request. What is left is the
 * event loop, libuv and the socket writes: the CPU a request costs any server
 * written in Node, the one issue 17's decision (Node's HTTP server, or one of
 * Sluice's own on node:net) is measured against.
 */
const BODY = 'hello world\n';

export async function serve(listen: PeerListen): Promise<void> {
  let date = new Date().toUTCString();
  setInterval(() => (date = new Date().toUTCString()), 1000).unref();
  const server = createServer({ noDelay: true }, (socket) => {
    let tail = '';
    socket.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      let at = 0;
      let out = '';
      for (let end = text.indexOf('\r\n\r\n'); end !== -1; end = text.indexOf('\r\n\r\n', at)) {
        at = end + 4;
        out += `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nDate: ${date}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=75\r\n\r\n${BODY}`;
      }
      tail = text.slice(at);
      if (out !== '') socket.write(out, 'latin1');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: listen.port, reusePort: true }, resolve));
}
