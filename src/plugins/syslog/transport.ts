import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as DgramSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Where batches go. `writable()` says whether a batch may be handed over now
 * (connected, socket buffer not full); when it says no, the shipper leaves the
 * entries in its bounded queue and tries again when `onChange` fires (connected,
 * drained, datagrams sent, or a connection lost) or at its next tick. A
 * transport never buffers more than the one batch it was given.
 */
export interface Transport {
  writable(): boolean;
  /** The last attempt failed (refused, lost, logger exited) and the next one waits for its backoff. */
  down(): boolean;
  send(messages: readonly string[]): void;
  /** Resolves once everything sent has left the process, then closes: the graceful end of `dispose`. */
  end(): Promise<void>;
  /** Closes now; whatever is still buffered is lost. */
  close(): void;
}

export type ServerAddress =
  | { readonly kind: 'udp' | 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** `udp://host:port`, `tcp://host:port` (IPv6 in brackets) or `unix:///path`; null when malformed. */
export function parseServer(v: string): ServerAddress | null {
  const unix = /^unix:\/\/(\/.+)$/.exec(v);
  if (unix !== null) return { kind: 'unix', path: unix[1]! };
  const m = /^(udp|tcp):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { kind: m[1] as 'udp' | 'tcp', host, port };
}

/** UDP datagrams still in libuv's hands, at most: bounds memory when sends are slower than the queue. */
const MAX_UDP_IN_FLIGHT = 256;

/** RFC 5426: one message per datagram. Sends are never waited on; only their number in flight is bounded. */
class UdpTransport implements Transport {
  private readonly socket: DgramSocket;
  private inFlight = 0;
  private closed = false;
  /** Set by `end`: closes once the last datagram in flight is sent. */
  private whenIdle: (() => void) | null = null;
  private readonly sent = (err: Error | null): void => {
    this.inFlight--;
    if (err !== null) this.log.debug({ err }, 'syslog datagram not sent');
    if (this.inFlight !== 0) return;
    this.onChange();
    this.whenIdle?.();
  };

  private readonly host: string;
  private readonly port: number;
  private readonly log: Logger;
  private readonly onChange: () => void;

  constructor(host: string, port: number, log: Logger, onChange: () => void) {
    this.host = host;
    this.port = port;
    this.log = log;
    this.onChange = onChange;
    this.socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    this.socket.on('error', (err) => log.warn({ err }, 'syslog udp socket error'));
    this.socket.unref();
  }

  writable(): boolean {
    return this.inFlight < MAX_UDP_IN_FLIGHT;
  }

  /** Never: UDP has no connection to lose, and a datagram nobody receives is gone without a word. */
  down(): boolean {
    return false;
  }

  send(messages: readonly string[]): void {
    for (const m of messages) {
      this.inFlight++;
      this.socket.send(m, this.port, this.host, this.sent);
    }
  }

  end(): Promise<void> {
    return new Promise((resolve) => {
      this.whenIdle = () => {
        this.close();
        resolve();
      };
      if (this.inFlight === 0) this.whenIdle();
    });
  }

  close(): void {
    // end() may close after a shipper that gave up on it already did.
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 30_000;

/**
 * Reconnect pacing shared by the stream and logger transports: after a
 * failure wait 100 ms, doubling to 30 s, until a success resets it; `quiet`
 * says whether this outage was already logged (one line per outage).
 */
class Backoff {
  private delay = RETRY_FIRST_MS;
  private timer: NodeJS.Timeout | null = null;

  get waiting(): boolean {
    return this.timer !== null;
  }

  get quiet(): boolean {
    return this.delay !== RETRY_FIRST_MS;
  }

  succeeded(): void {
    this.delay = RETRY_FIRST_MS;
  }

  /** Calls `retry` after the current delay, then doubles it. */
  schedule(retry: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      retry();
    }, this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
  }
}

/**
 * A stream to the syslog server: TCP with RFC 6587 octet-counting (`LEN SP MSG`).
 * At most one connection at a time; after a failure it waits (100 ms,
 * doubling to 30 s, reset by a successful connect) before the next attempt.
 * A write the kernel does not take at once makes it unwritable until 'drain'.
 */
class StreamTransport implements Transport {
  private socket: Socket | null = null;
  private connected = false;
  private readonly backoff = new Backoff();
  private closed = false;

  private readonly address: { readonly host: string; readonly port: number };
  private readonly log: Logger;
  private readonly onChange: () => void;

  constructor(address: { readonly host: string; readonly port: number }, log: Logger, onChange: () => void) {
    this.address = address;
    this.log = log;
    this.onChange = onChange;
  }

  writable(): boolean {
    if (this.socket === null && !this.backoff.waiting && !this.closed) this.connect();
    return this.connected && !this.socket!.writableNeedDrain;
  }

  down(): boolean {
    return this.backoff.waiting;
  }

  send(messages: readonly string[]): void {
    let out = '';
    for (const m of messages) out += `${Buffer.byteLength(m)} ${m}`;
    this.socket!.write(out);
  }

  /** Sends FIN after the last byte and resolves when the server has closed its side too: it has read everything. */
  end(): Promise<void> {
    this.closed = true;
    this.backoff.cancel();
    const s = this.socket;
    if (s === null) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
    });
  }

  close(): void {
    this.closed = true;
    this.backoff.cancel();
    this.socket?.destroy();
  }

  private connect(): void {
    const s = connect({ host: this.address.host, port: this.address.port });
    this.socket = s;
    s.unref();
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connected = true;
      this.backoff.succeeded();
      this.onChange();
    });
    s.on('drain', this.onChange);
    // The server has nothing to say; read and discard so its bytes never pile up.
    s.resume();
    s.on('error', (err) => {
      if (!this.backoff.quiet) this.log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'syslog connection failed');
    });
    s.on('close', () => {
      this.socket = null;
      this.connected = false;
      if (this.closed) return;
      this.backoff.schedule(this.onChange);
      this.onChange(); // now down(): a disposing shipper stops waiting
    });
  }
}

/**
 * `unix:///dev/log`: the local syslog socket is a datagram socket (journald,
 * rsyslog's imuxsock), and node:dgram has no unix datagrams. util-linux
 * `logger`, on every Linux host (Debian's Essential bsdutils), writes to it:
 * one `logger` process per plugin instance reads `<PRI>message` lines on its
 * stdin and sends each as one message (datagram, or stream when the socket is
 * one) with its own RFC 5424 / 3164 header, tagged `sluice`. A logger that
 * exits (socket missing, daemon restarted) is restarted with the stream
 * transport's backoff; stdin backpressure makes the transport unwritable.
 */
class LoggerTransport implements Transport {
  private child: ChildProcess | null = null;
  private readonly backoff = new Backoff();
  private closed = false;
  private readonly args: readonly string[];
  private readonly log: Logger;
  private readonly onChange: () => void;

  constructor(path: string, format: 'rfc5424' | 'rfc3164', log: Logger, onChange: () => void) {
    this.args = ['--socket', path, '--socket-errors=on', '--prio-prefix', '--tag', 'sluice', `--${format}`];
    this.log = log;
    this.onChange = onChange;
  }

  writable(): boolean {
    if (this.child === null && !this.backoff.waiting && !this.closed) this.start();
    return this.child !== null && this.child.stdin !== null && !this.child.stdin.writableNeedDrain;
  }

  down(): boolean {
    return this.backoff.waiting;
  }

  send(messages: readonly string[]): void {
    let out = '';
    for (const m of messages) out += `${m}\n`;
    this.child!.stdin!.write(out);
  }

  /** Closes logger's stdin and resolves when it exits, having sent every line it read. */
  end(): Promise<void> {
    this.closed = true;
    this.backoff.cancel();
    const child = this.child;
    if (child === null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('close', () => resolve());
      child.stdin!.end();
    });
  }

  close(): void {
    this.closed = true;
    this.backoff.cancel();
    this.child?.kill();
  }

  private start(): void {
    const child = spawn('logger', this.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => { if (stderr.length < 1024) stderr += c; });
    child.stdin!.on('drain', this.onChange);
    child.stdin!.on('error', () => {}); // the exit below says why
    child.once('spawn', () => {
      this.backoff.succeeded();
      this.onChange();
    });
    child.once('error', (err) => {
      if (!this.backoff.quiet) this.log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'syslog: cannot run logger');
    });
    child.once('close', (code) => {
      this.child = null;
      if (this.closed) return;
      if (!this.backoff.quiet) this.log.warn({ code, stderr: stderr.trim() }, 'syslog: logger exited');
      this.backoff.schedule(this.onChange);
      this.onChange(); // now down(): a disposing shipper stops waiting
    });
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
  }
}

/**
 * The transport for `address`. For unix sockets `logger` writes the header,
 * so its messages are `<PRI>` and the JSON entry only (see {@link unixMessage}).
 */
export function createTransport(address: ServerAddress, format: 'rfc5424' | 'rfc3164', log: Logger, onChange: () => void): Transport {
  switch (address.kind) {
    case 'udp': return new UdpTransport(address.host, address.port, log, onChange);
    case 'tcp': return new StreamTransport(address, log, onChange);
    case 'unix': return new LoggerTransport(address.path, format, log, onChange);
  }
}

/** A line for {@link LoggerTransport}: logger reads the PRI prefix and adds the rest of the header itself. */
export const unixMessage = (pri: number, msg: string): string => `<${pri}>${msg}`;
