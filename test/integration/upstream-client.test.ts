import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';

/**
 * The gateway's upstream HTTP/1.1 client (src/worker/upstream-client/) seen
 * from a raw upstream that answers each path with scripted bytes and counts
 * its connections: which responses are forwarded, which are a 502, and after
 * which ones the connection is reused or dropped. One worker, so one pool.
 */
const ANSWERS: Readonly<Record<string, string>> = {
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate',
  '/trailers': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n',
  '/tecl': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  '/fold': 'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nok',
  // The head, then a chunk whose size is no number, in the same write: nothing has gone to the client yet.
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n',
  '/extra': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad',
  '/to-close': 'HTTP/1.1 200 OK\r\n\r\nuntil the close',
  '/conn-close': 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
  '/idle-close': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/keep-5s': 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok',
  '/keep-2s': 'HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok',
};
/** Answers after which the upstream closes the connection itself. */
const CLOSES = new Set(['/to-close', '/conn-close', '/idle-close']);

let upstream: Server;
let connections = 0;
/** The last connection's close, for the test that waits for it. */
let closed: Promise<unknown> = Promise.resolve();
/** The request heads the upstream received, as sent. */
const heads: string[] = [];
/** Where the upstream's side of the backpressure tests stands. */
const big = { written: 0, closed: false, socket: null as Socket | null };
/** 128 MiB: far more than every buffer between the two ends (sockets, streams) holds. */
const BIG = 128 * 1024 * 1024;
const PIECE = Buffer.alloc(64 * 1024, 0x61);

/** Writes BIG bytes of body, as fast as the socket takes them. */
function sendBig(socket: Socket): void {
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BIG}\r\n\r\n`);
  const more = (): void => {
    while (big.written < BIG && !socket.destroyed) {
      big.written += PIECE.length;
      if (!socket.write(PIECE)) {
        socket.once('drain', more);
        return;
      }
    }
  };
  more();
}
let gw: RunningGateway;
let client: Client;

beforeAll(async () => {
  upstream = createServer((socket: Socket) => {
    connections++;
    closed = new Promise((resolve) => socket.once('close', resolve));
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      if (got === '\0upload') return;
      got += chunk;
      let end: number;
      while ((end = got.indexOf('\r\n\r\n')) >= 0) {
        const head = got.slice(0, end + 4);
        got = got.slice(end + 4);
        heads.push(head);
        const path = head.split(' ')[1]!.replace(/^\/u/, '');
        if (path === '/big') {
          socket.once('close', () => (big.closed = true));
          sendBig(socket);
          return;
        }
        if (path === '/upload') {
          // Reads nothing more: the body the client sends must stop somewhere before it.
          got = '\0upload';
          socket.pause();
          big.socket = socket;
          socket.once('close', () => (big.closed = true));
          return;
        }
        socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        if (CLOSES.has(path)) socket.end();
      }
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = await startGateway(() => ({
    worker_processes: 1,
    server: { client_max_body_size: 0 },
    upstreams: { raw: { targets: [{ address }], retries: 0 } },
    routes: [{ name: 'raw', paths: ['/u/'], upstream: 'raw' }],
  }));
  client = new Client(gw.url(''), { pipelining: 1 });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await gw?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
});

async function call(path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await client.request({ path: `/u${path}`, method });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

/** Runs `fn`, and says how many new upstream connections the /ok after it took (0: the pooled one was reused). */
async function connectionsAfter(fn: () => Promise<void>): Promise<number> {
  await call('/ok'); // a pooled connection exists
  await fn();
  const before = connections;
  expect((await call('/ok')).body).toBe('ok');
  return connections - before;
}

describe('responses forwarded, and the connection reused', () => {
  test('keep-alive: sequential requests share one connection, and the head carries no Connection field', async () => {
    expect(await connectionsAfter(async () => {
      for (let i = 0; i < 5; i++) expect((await call('/ok')).body).toBe('ok');
    })).toBe(0);
    const head = heads.at(-1)!;
    expect(head).toMatch(/^GET \/u\/ok HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    expect(head.toLowerCase()).not.toContain('connection:');
  });

  test('interim 100 and 103 are skipped: the client gets the final 200 and its body', async () => {
    expect(await connectionsAfter(async () => {
      const r = await call('/continue');
      expect([r.status, r.body]).toEqual([200, 'late']);
    })).toBe(0);
  });

  test('chunked with extensions and trailers: the body arrives whole, the trailers are dropped', async () => {
    expect(await connectionsAfter(async () => {
      const r = await call('/trailers');
      expect([r.status, r.body]).toEqual([200, 'abcde']);
      expect(r.headers['x-sum']).toBeUndefined();
    })).toBe(0);
  });

  test('Keep-Alive: timeout=5: kept (for 3 s, as undici did)', async () => {
    expect(await connectionsAfter(async () => {
      expect((await call('/keep-5s')).body).toBe('ok');
    })).toBe(0);
  });

  test('HEAD: a Content-Length and no body', async () => {
    expect(await connectionsAfter(async () => {
      const r = await call('/head', 'HEAD');
      expect([r.status, r.headers['content-length'], r.body]).toEqual([200, '10', '']);
    })).toBe(0);
  });
});

describe('responses forwarded, and the connection dropped', () => {
  test('a body delimited by the close', async () => {
    expect(await connectionsAfter(async () => {
      expect((await call('/to-close')).body).toBe('until the close');
    })).toBe(1);
  });

  test('Keep-Alive: timeout=2: the upstream closes too soon for a reuse to be safe (2 s margin, as undici)', async () => {
    expect(await connectionsAfter(async () => {
      expect((await call('/keep-2s')).body).toBe('ok');
    })).toBe(1);
  });

  test('Connection: close', async () => {
    expect(await connectionsAfter(async () => {
      expect((await call('/conn-close')).body).toBe('ok');
    })).toBe(1);
  });

  test('bytes after the response that no request asked for: the response goes out, the bytes never become a response', async () => {
    expect(await connectionsAfter(async () => {
      expect((await call('/extra')).body).toBe('ok');
    })).toBe(1);
  });

  test('an idle connection the upstream closes leaves the pool: the next request opens a new one, no failed try', async () => {
    const from = gw.stderr().length;
    expect(await connectionsAfter(async () => {
      expect((await call('/idle-close')).body).toBe('ok');
      await closed; // the upstream's socket closed: the gateway saw the FIN and closed its side
    })).toBe(1);
    expect(gw.stderr().slice(from)).not.toContain('upstream try failed');
  });
});

describe('bad framing: 502, logged with its cause, and the connection dropped', () => {
  for (const [path, what] of [['/tecl', 'Transfer-Encoding with Content-Length'], ['/fold', 'obs-fold'], ['/bad-chunk', 'chunk-size']] as const) {
    test(`${what}`, async () => {
      const from = gw.stderr().length;
      expect(await connectionsAfter(async () => {
        const r = await call(path);
        expect(r.status).toBe(502);
        expect(JSON.parse(r.body)).toMatchObject({ code: 'GW_ERR_UPSTREAM' });
      })).toBe(1);
      await gw.waitForLog('"code":"GW_ERR_UPSTREAM_BAD_RESPONSE"', from);
      expect(gw.stderr().slice(from)).toContain(what);
    });
  }
});

/** Resolves once `progress()` has not moved for `quietMs`: the flow has stopped (there is no event for "nothing more happens"). */
async function stalled(progress: () => number, quietMs = 300): Promise<number> {
  let last = -1;
  while (progress() !== last) {
    last = progress();
    await new Promise((resolve) => setTimeout(resolve, quietMs));
  }
  return last;
}

describe('backpressure both ways', () => {
  test('a client that stops reading stops the upstream: the gateway does not read the body on into memory, and drops the upstream when the client goes', async () => {
    Object.assign(big, { written: 0, closed: false, socket: null });
    const client = connect(gw.port, '127.0.0.1');
    await once(client, 'connect');
    client.on('error', () => {});
    client.write('GET /u/big HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(client, 'data');
    client.pause();
    const written = await stalled(() => big.written);
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThan(BIG / 4);
    client.destroy();
    await expect.poll(() => big.closed).toBe(true);
  });

  test('an upstream that stops reading stops the client\'s upload: the gateway does not take the body on into memory', async () => {
    Object.assign(big, { written: 0, closed: false, socket: null });
    const client = connect(gw.port, '127.0.0.1');
    await once(client, 'connect');
    client.on('error', () => {});
    client.write(`POST /u/upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${BIG}\r\n\r\n`);
    let sent = 0;
    const more = (): void => {
      while (sent < BIG && !client.destroyed) {
        sent += PIECE.length;
        if (!client.write(PIECE)) {
          client.once('drain', more);
          return;
        }
      }
    };
    more();
    const total = await stalled(() => sent);
    expect(total).toBeLessThan(BIG / 4);
    client.destroy();
    // Reading again, the upstream finds the gateway's close behind what was buffered.
    big.socket!.resume();
    await expect.poll(() => big.closed).toBe(true);
  });
});
