import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { syslog } from '../../../src/plugins/syslog/index.ts';
import { headerHostname, rfc3164, rfc5424 } from '../../../src/plugins/syslog/format.ts';
import { Ring } from '../../../src/plugins/syslog/ring.ts';
import { DROP_LOG_EVERY_MS, Shipper } from '../../../src/plugins/syslog/shipper.ts';
import type { Pending } from '../../../src/plugins/syslog/shipper.ts';
import { LOGGER_EXIT_MS, LoggerProcess } from '../../../src/plugins/syslog/logger-process.ts';
import { createTransport, LoggerTransport, parseServer, unixMessage } from '../../../src/plugins/syslog/transport.ts';
import type { Transport } from '../../../src/plugins/syslog/transport.ts';
import { freePort } from '../../helpers/free-port.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';
import { childrenOf, rsyslogdMissing, startRsyslogd, startSyslogServer } from '../../helpers/syslog-server.ts';
import type { LocalSyslog } from '../../helpers/syslog-server.ts';

describe('schema', () => {
  test('defaults (Kong names and defaults)', () => {
    expect(checkConf(syslog, {}).conf).toEqual({
      server: 'udp://127.0.0.1:514', format: 'rfc5424', facility: 'user', log_level: 'info',
      successful_severity: 'info', client_errors_severity: 'info', server_errors_severity: 'info',
      batch_max_size: 100, flush_interval: '1s', queue_size: 10_000,
    });
  });
  test('servers: udp, tcp, IPv6, unix; anything else is refused with the path', () => {
    for (const server of ['udp://10.0.0.1:514', 'tcp://logs.example.com:6514', 'tcp://[::1]:514', 'unix:///dev/log']) {
      expect(checkConf(syslog, { server }).ok).toBe(true);
    }
    for (const server of ['http://x:1', 'udp://x', 'tcp://x:0', 'tcp://x:70000', 'unix://relative']) {
      expect(checkConf(syslog, { server }).errors[0]).toMatch(/^\/server: invalid syslog server/);
    }
  });
  test('facility and severities are Kong\'s names', () => {
    expect(checkConf(syslog, { facility: 'local7', server_errors_severity: 'crit' }).ok).toBe(true);
    expect(checkConf(syslog, { facility: 'local8' }).errors[0]).toMatch(/^\/facility/);
    expect(checkConf(syslog, { client_errors_severity: 'error' }).errors[0]).toMatch(/^\/client_errors_severity/);
  });
  test('parseServer', () => {
    expect(parseServer('tcp://[::1]:514')).toEqual({ kind: 'tcp', host: '::1', port: 514 });
    expect(parseServer('unix:///dev/log')).toEqual({ kind: 'unix', path: '/dev/log' });
  });
});

describe('formats', () => {
  const t = Date.UTC(2024, 0, 5, 3, 4, 5, 6);
  test('RFC 5424: version 1, UTC timestamp, hostname, app-name sluice, procid, nil MSGID and SD', () => {
    expect(rfc5424(14, t, 'gw1', '{"a":1}')).toBe(`<14>1 2024-01-05T03:04:05.006Z gw1 sluice ${process.pid} - - {"a":1}`);
  });
  test('RFC 3164: Mmm, space-padded day, local time, TAG[pid]:', () => {
    expect(rfc3164(14, t, 'gw1', 'm')).toMatch(new RegExp(`^<14>Jan  [45] \\d\\d:\\d\\d:05 gw1 sluice\\[${process.pid}\\]: m$`));
  });
  test('hostname is printable ASCII without spaces', () => {
    expect(headerHostname('my host\u00e9')).toBe('my-host-');
    expect(headerHostname('')).toBe('-');
  });
});

describe('Ring', () => {
  test('FIFO; full refuses the newest', () => {
    const r = new Ring<number>(3);
    for (let i = 0; i < 5; i++) r.push(i);
    expect(r.size).toBe(3);
    expect(r.take(2)).toEqual([0, 1]);
    r.push(9);
    expect(r.take(10)).toEqual([2, 9]);
    expect(r.size).toBe(0);
  });
});

const entry = (i: number): Pending => ({ pri: 14, time: 0, entry: { i, pad: 'x'.repeat(1000) } });

/** A transport stub's defaults: up, nothing to finish. */
const idle: Transport = { writable: () => true, down: () => false, send: () => {}, end: async () => {}, close: () => {} };

describe('Shipper', () => {
  const shippers: Shipper[] = [];
  afterEach(() => { for (const s of shippers.splice(0)) s.close(); });
  const make = (transport: Transport, over: Partial<ConstructorParameters<typeof Shipper>[0]> = {}) => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const s = new Shipper({
      queueSize: 10, batchSize: 4, flushMs: 60_000, stallMs: 60_000, format: (p) => JSON.stringify(p.entry),
      log: pino({}, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }),
      now: () => now, ...over,
    });
    s.attach(transport);
    shippers.push(s);
    return { s, lines, tick: (ms: number) => { now += ms; } };
  };

  test('a server that never takes anything: the queue stays at its cap, drops are counted, one log line per interval', () => {
    const never: Transport = { ...idle, writable: () => false, send: () => { throw new Error('not writable'); } };
    const { s, lines, tick } = make(never);
    for (let i = 0; i < 1000; i++) {
      s.enqueue(entry(i));
      expect(s.queue.size).toBeLessThanOrEqual(10);
    }
    expect(s.droppedTotal).toBe(990);
    s.flush();
    s.flush();
    expect(lines.filter((l) => l['msg'] === 'syslog entries dropped: queue full')).toEqual([expect.objectContaining({ dropped: 990 })]);
    s.enqueue(entry(0));
    tick(DROP_LOG_EVERY_MS);
    s.flush();
    expect(lines.at(-1)).toMatchObject({ dropped: 1, dropped_total: 991 });
  });

  test('batches of batch_max_size, oldest first; a full batch is sent on the next turn, not inline', async () => {
    const sent: string[][] = [];
    const { s } = make({ ...idle, writable: () => true, send: (m) => void sent.push([...m]) });
    for (let i = 0; i < 9; i++) s.enqueue({ pri: 14, time: 0, entry: { i } });
    expect(sent).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(sent.map((b) => b.length)).toEqual([4, 4, 1]);
    expect(JSON.parse(sent[0]![0]!)).toEqual({ i: 0 });
  });

  test('a real TCP server that accepts and never reads: the queue is capped, drops counted, one connection only', async () => {
    const sockets: Socket[] = [];
    const server: Server = createServer({ pauseOnConnect: true }, (sock) => void sockets.push(sock));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const { s } = make(null as unknown as Transport, { queueSize: 50, batchSize: 50 });
    s.attach(createTransport({ kind: 'tcp', host: '127.0.0.1', port }, pino({ level: 'silent' }), s.flush));
    try {
      // 64 KiB entries: the kernel's socket buffers fill after a few MB, then writes wait for a 'drain' that never comes.
      const big = (i: number): Pending => ({ pri: 14, time: 0, entry: { i, pad: 'x'.repeat(64 * 1024) } });
      // Connected and sending first, so the drops below come from backpressure, not from the connect.
      s.enqueue(big(-1));
      s.flush(); // connects on first use; the connect flushes again
      await new Promise((r) => setTimeout(r, 50));
      expect(s.queue.size).toBe(0);
      for (let i = 0; i < 2000 && s.droppedTotal === 0; i++) {
        s.enqueue(big(i));
        expect(s.queue.size).toBeLessThanOrEqual(50);
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
      }
      // Entries are flushed every few ms, so a drop means the socket stopped taking them (backpressure) and the queue hit its cap.
      expect(s.droppedTotal).toBeGreaterThan(0);
      expect(sockets.length).toBe(1);
    } finally {
      s.close();
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('dispose sends every queued entry, a batch per transport change, then ends the transport', async () => {
    const sent: number[] = [];
    let busy = false;
    let ended = false;
    let wake = (): void => {};
    // One batch in flight at a time, taken on a later turn: dispose must wait for each change.
    const oneAtATime: Transport = {
      ...idle,
      writable: () => !busy,
      send: (m) => {
        busy = true;
        sent.push(m.length);
        setImmediate(() => { busy = false; wake(); });
      },
      end: async () => { ended = true; },
    };
    const { s } = make(oneAtATime);
    wake = s.flush;
    for (let i = 0; i < 10; i++) s.enqueue(entry(i));
    await s.dispose();
    expect(sent).toEqual([4, 4, 2]);
    expect(ended).toBe(true);
    expect(s.droppedTotal).toBe(0);
  });

  test('dispose gives up on a server that stopped reading after stallMs: the rest is counted and logged', async () => {
    const sockets: Socket[] = [];
    const server: Server = createServer({ pauseOnConnect: true }, (sock) => void sockets.push(sock));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const { s, lines } = make(null as unknown as Transport, { queueSize: 400, batchSize: 10, stallMs: 100 });
    s.attach(createTransport({ kind: 'tcp', host: '127.0.0.1', port }, pino({ level: 'silent' }), s.flush));
    try {
      // 64 KiB each, 25 MiB in all: more than the kernel buffers on both sides take.
      for (let i = 0; i < 400; i++) s.enqueue({ pri: 14, time: 0, entry: { i, pad: 'x'.repeat(64 * 1024) } });
      const t0 = performance.now();
      await s.dispose();
      const ms = performance.now() - t0;
      expect(s.droppedTotal).toBeGreaterThan(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'syslog entries dropped at shutdown: server unreachable', dropped: s.droppedTotal });
      // Two stalls (the queue, then the FIN), never the OS's minutes.
      expect(ms).toBeLessThan(2_000);
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

/** The request paths of RFC 5424 messages, in order. */
const pathsOf = (messages: readonly string[]): string[] =>
  messages.map((m) => (JSON.parse(m.slice(m.indexOf('{'))) as { request: { path: string } }).request.path);

describe('dispose: the worker exits (reload, quit, stop)', () => {
  // An hour: nothing is sent by the timer during the test, only by dispose.
  const queued = { flush_interval: '1h' };
  const paths = ['/a', '/b', '/c', '/d', '/e'];

  test('UDP: entries waiting for their flush_interval are sent before dispose resolves', async () => {
    const udp = await startSyslogServer('udp');
    try {
      const h = harness([syslog], { syslog: { server: udp.url, ...queued } });
      for (const path of paths) await h.run({ path });
      await h.dispose();
      await udp.has(paths.length, 2_000);
      expect(pathsOf(udp.messages)).toEqual(paths);
    } finally {
      await udp.close();
    }
  });

  test('TCP: sent, then FIN; the server has every frame when dispose resolves', async () => {
    const tcp = await startSyslogServer('tcp');
    try {
      const h = harness([syslog], { syslog: { server: tcp.url, ...queued } });
      for (const path of paths) await h.run({ path });
      await h.dispose();
      expect(pathsOf(tcp.messages)).toEqual(paths);
    } finally {
      await tcp.close();
    }
  });

  test('a server that refuses: dispose gives up at once, counting and logging what it could not send', async () => {
    const h = harness([syslog], { syslog: { server: `tcp://127.0.0.1:${await freePort()}`, ...queued } });
    for (const path of paths) await h.run({ path });
    const t0 = performance.now();
    await h.dispose();
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(h.lines.filter((l) => l['msg'] === 'syslog entries dropped at shutdown: server unreachable')).toEqual([
      expect.objectContaining({ plugin: 'syslog', dropped: paths.length, dropped_total: paths.length }),
    ]);
  });
});

const noRsyslogd = rsyslogdMissing();
if (noRsyslogd !== null) console.warn(noRsyslogd);

/** The `logger` processes this test process started and has not reaped: exited ones show as zombies (`Z`). */
const loggers = () => childrenOf(process.pid).filter((c) => c.comm === 'logger');

describe.skipIf(noRsyslogd !== null)('unix socket: util-linux logger, one per worker and path, into a real rsyslogd', () => {
  let rs: LocalSyslog;
  afterEach(async () => { await rs?.close(); });

  test('rsyslog\'s imuxsock parses program sluice, the gateway\'s pid and the JSON entry; dispose reaps the logger', async () => {
    rs = await startRsyslogd();
    const h = harness([syslog], { syslog: { server: `unix://${rs.socketPath}`, facility: 'local3', format: 'rfc5424', flush_interval: '1h' } });
    for (const path of ['/a', '/b']) await h.run({ path, query: 'x=1' });
    await h.dispose();
    expect(loggers()).toEqual([]); // exited and reaped before dispose resolved: no zombie, nothing left running
    await rs.has(2);
    const [a, b] = rs.records();
    // local3 (19) * 8 + info (6) = 158; the format option is for udp/tcp: RFC 5424 here came out as program "1".
    expect(a).toMatchObject({ programname: 'sluice', appName: 'sluice', procid: String(process.pid), pri: 158 });
    expect(JSON.parse(a!.msg)).toMatchObject({ request: { method: 'GET', path: '/a', query: 'x=1' }, response: { status: 200 } });
    expect(JSON.parse(b!.msg)).toMatchObject({ request: { path: '/b' } });
  });

  test('an entry longer than logger\'s default 1 KiB arrives as one message, not split into broken JSON', async () => {
    rs = await startRsyslogd();
    const h = harness([syslog], { syslog: { server: `unix://${rs.socketPath}`, flush_interval: '1h' } });
    const path = `/${'x'.repeat(3_000)}`;
    await h.run({ path });
    await h.run({ path: '/next' });
    await h.dispose();
    await rs.has(2);
    expect(rs.records().map((r) => (JSON.parse(r.msg) as { request: { path: string } }).request.path)).toEqual([path, '/next']);
  });

  test('the instances naming one socket share one logger; stopping it sends every line, then it is reaped', async () => {
    rs = await startRsyslogd();
    const logger = new LoggerProcess(rs.socketPath, pino({ level: 'silent' }));
    const shippers = [0, 1].map((n) => {
      const s = new Shipper({
        queueSize: 100, batchSize: 10, flushMs: 3_600_000, stallMs: 2_000, log: pino({ level: 'silent' }), now: () => 0,
        format: (p) => unixMessage(p.pri, JSON.stringify(p.entry)),
      });
      s.attach(new LoggerTransport(logger, s.flush));
      for (let i = 0; i < 25; i++) s.enqueue({ pri: 14, time: 0, entry: { n, i } });
      return s;
    });
    for (const s of shippers) s.flush();
    expect(loggers()).toHaveLength(1);
    await Promise.all(shippers.map((s) => s.dispose()));
    await logger.stop();
    expect(loggers()).toEqual([]);
    await rs.has(50);
    expect(rs.records().map((r) => JSON.parse(r.msg) as { n: number; i: number }).filter((e) => e.n === 1).map((e) => e.i))
      .toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  test('a daemon that stopped reading: stop kills the blocked logger after LOGGER_EXIT_MS and reaps it, and says so', async () => {
    rs = await startRsyslogd();
    rs.pause();
    const lines: Record<string, unknown>[] = [];
    const logger = new LoggerProcess(rs.socketPath, pino({}, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }));
    // More datagrams than the socket's queue holds (net.unix.max_dgram_qlen, 512 by default): logger blocks in send.
    expect(logger.writable()).toBe(true);
    logger.write(unixMessage(14, 'x'.repeat(200) + '\n').repeat(2_000));
    const t0 = performance.now();
    await logger.stop();
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(LOGGER_EXIT_MS - 10);
    expect(ms).toBeLessThan(LOGGER_EXIT_MS + 1_000);
    expect(loggers()).toEqual([]);
    expect(lines).toEqual([expect.objectContaining({ msg: expect.stringMatching(/^syslog: logger did not exit/) })]);
  });
});
