import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A syslog server on 127.0.0.1 for tests: UDP (a message per datagram) or TCP
 * with RFC 6587 octet counting (`LEN SP MSG`, back to back).
 */
export interface SyslogServer {
  /** The plugin's `server` option for it. */
  readonly url: string;
  readonly messages: string[];
  /** Resolves once `n` messages arrived; fails after `ms` saying how many are missing. */
  has(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSyslogServer(kind: 'udp' | 'tcp'): Promise<SyslogServer> {
  const messages: string[] = [];
  const waiters = new Set<{ n: number; done: () => void }>();
  const push = (m: string): void => {
    messages.push(m);
    for (const w of waiters) if (messages.length >= w.n) w.done();
  };
  const has = (n: number, ms = 5_000): Promise<void> => {
    if (messages.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { n, done: () => { clearTimeout(timer); waiters.delete(w); resolve(); } };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`syslog entries missing: ${messages.length} of ${n} arrived`));
      }, ms);
      waiters.add(w);
    });
  };

  if (kind === 'udp') {
    const udp = createSocket('udp4');
    udp.on('message', (m) => push(m.toString()));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    return { url: `udp://127.0.0.1:${(udp.address() as AddressInfo).port}`, messages, has, close: () => new Promise((r) => udp.close(r)) };
  }

  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp === -1) return;
        const end = sp + 1 + Number(buf.subarray(0, sp).toString());
        if (buf.length < end) return;
        push(buf.subarray(sp + 1, end).toString());
        buf = buf.subarray(end);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    messages,
    has,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}
