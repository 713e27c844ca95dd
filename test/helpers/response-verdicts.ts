/**
 * Verdicts on raw HTTP/1.1 response bytes, from the gateway's upstream parser
 * and from llhttp (through node:http's client), in one shape so that tests can
 * compare them: rejected, or accepted with the status, the fields (names
 * lower-cased) and the body.
 */
import { get } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { COMPLETE, NEED_MORE, ResponseParser, UPGRADE } from '../../src/worker/upstream-client/response-parser.ts';

export type Verdict =
  | { readonly ok: true; readonly status: number; readonly headers: readonly string[]; readonly body: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Our parser's verdict on `bytes` followed by the connection's close, fed in
 * pieces cut at `cuts` (offsets). Bytes after a complete response, or a 101,
 * are a rejection here: the connection would not be reused.
 */
export function ourVerdict(bytes: Buffer, head = false, cuts: readonly number[] = []): Verdict {
  let status = 0;
  let headers: string[] = [];
  const body: Buffer[] = [];
  const parser = new ResponseParser({
    onHead: (s, h) => {
      status = s;
      headers = h;
    },
    onBody: (chunk) => body.push(Buffer.from(chunk)),
  });
  parser.start(head, false);
  const accepted = (): Verdict => ({ ok: true, status, headers, body: Buffer.concat(body).toString('latin1') });
  try {
    let from = 0;
    for (const to of [...cuts, bytes.length]) {
      if (to <= from) continue;
      const piece = bytes.subarray(from, to);
      const r = parser.execute(piece);
      if (r === COMPLETE) return parser.offset === piece.length && to === bytes.length ? accepted() : { ok: false, reason: 'bytes after the response' };
      if (r === UPGRADE) return { ok: false, reason: 'upgrade' };
      if (r !== NEED_MORE) throw new Error('unexpected result');
      from = to;
    }
    return parser.finish() ? accepted() : { ok: false, reason: 'closed before the response was complete' };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * llhttp's verdicts, from node:http's client against a raw server that sends
 * each case's bytes on its own connection and closes it.
 */
export class LlhttpOracle {
  private readonly server: Server;
  private readonly cases: Buffer[] = [];

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(): Promise<LlhttpOracle> {
    const server = createServer();
    const oracle = new LlhttpOracle(server);
    server.on('connection', (s: Socket) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        const n = Number(/^\S+ \/(\d+) /.exec(got)![1]);
        s.end(oracle.cases[n]!);
      });
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return oracle;
  }

  verdict(bytes: Buffer, head = false): Promise<Verdict> {
    const n = this.cases.push(bytes) - 1;
    const { port } = this.server.address() as AddressInfo;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (v: Verdict): void => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      const req = get({ host: '127.0.0.1', port, path: `/${n}`, method: head ? 'HEAD' : 'GET', agent: false });
      req.on('error', (err: Error & { code?: string }) => settle({ ok: false, reason: err.code ?? err.message }));
      // node:http hands a 101 over as an upgrade even unasked; that is a rejection for a parser of responses.
      req.on('upgrade', (_res: IncomingMessage, socket: Socket) => {
        socket.destroy();
        settle({ ok: false, reason: 'upgrade' });
      });
      req.on('response', (res: IncomingMessage) => {
        const body: Buffer[] = [];
        res.on('data', (d: Buffer) => body.push(d));
        res.on('error', (err: Error & { code?: string }) => settle({ ok: false, reason: err.code ?? err.message }));
        res.on('close', () => {
          if (!res.complete) settle({ ok: false, reason: 'incomplete' });
          const raw = res.rawHeaders;
          const headers: string[] = [];
          for (let i = 0; i < raw.length; i += 2) headers.push(raw[i]!.toLowerCase(), raw[i + 1]!);
          settle({ ok: true, status: res.statusCode!, headers, body: Buffer.concat(body).toString('latin1') });
        });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
