import { createServer } from 'node:http';

/**
 * The origin every scenario proxies to, run as its own process so it never
 * shares an event loop with the gateway or the load generator: the smallest
 * useful HTTP answer (12 bytes, Content-Length, keep-alive), prebuilt once.
 * Prints `listening PORT` on stdout when ready. Usage: node upstream.ts [port]
 */
const BODY = Buffer.from('hello world\n');
const HEADERS = ['content-type', 'text/plain', 'content-length', String(BODY.length)];

const server = createServer((_req, res) => {
  res.writeHead(200, HEADERS);
  res.end(BODY);
});
// Outlive every client's pooled sockets (Sluice and nginx keep 64 each), as an upstream should.
server.keepAliveTimeout = 120_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => process.exit(0));
