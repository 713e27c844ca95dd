import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer, ServerOptions as HttpsOptions } from 'node:https';
import type { AddressInfo } from 'node:net';

/** A real upstream on 127.0.0.1 with a port chosen by the kernel. */
export interface TestUpstream {
  readonly server: Server | HttpsServer;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/** HTTP, or HTTPS with `tls` (its cert and key; requestCert and ca for mTLS). */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void, tls?: HttpsOptions): Promise<TestUpstream> {
  const server = tls === undefined ? createServer(handler) : createHttpsServer(tls, handler);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Answers with what it received: method, url, headers; bodies under `/stream` are piped back. */
export function echoHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url!.startsWith('/stream')) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-upstream-port': String((req.socket.address() as AddressInfo).port),
    });
    res.end(body);
  });
}
