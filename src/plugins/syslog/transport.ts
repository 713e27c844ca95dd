import { createSocket } from 'node:dgram';
import type { Socket as DgramSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/**
 * Where batches go. `writable()` says whether a batch may be handed over now
 * (connected, socket buffer not full); when it says no, the shipper leaves the
 * entries in its bounded queue and tries again when `onWritable` fires or at
 * its next tick. A transport never buffers more than the one batch it was given.
 */
export interface Transport {
  writable(): boolean;
  send(messages: readonly string[]): void;
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
  private readonly sent = (err: Error | null): void => {
    this.inFlight--;
    if (err !== null) this.log.debug({ err }, 'syslog datagram not sent');
    if (this.inFlight === 0) this.onWritable();
  };

  private readonly host: string;
  private readonly port: number;
  private readonly log: Logger;
  private readonly onWritable: () => void;

  constructor(host: string, port: number, log: Logger, onWritable: () => void) {
    this.host = host;
    this.port = port;
    this.log = log;
    this.onWritable = onWritable;
    this.socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    this.socket.on('error', (err) => log.warn({ err }, 'syslog udp socket error'));
    this.socket.unref();
  }

  writable(): boolean {
    return this.inFlight < MAX_UDP_IN_FLIGHT;
  }

  send(messages: readonly string[]): void {
    for (const m of messages) {
      this.inFlight++;
      this.socket.send(m, this.port, this.host, this.sent);
    }
  }

  close(): void {
    this.socket.close();
  }
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 30_000;

/**
 * A stream to the syslog server: TCP with RFC 6587 octet-counting
 * (`LEN SP MSG`), or a unix stream socket with newline-terminated messages.
 * At most one connection at a time; after a failure it waits (100 ms,
 * doubling to 30 s, reset by a successful connect) before the next attempt.
 * A write the kernel does not take at once makes it unwritable until 'drain'.
 */
class StreamTransport implements Transport {
  private socket: Socket | null = null;
  private connected = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff = RETRY_FIRST_MS;
  private closed = false;

  private readonly address: ServerAddress;
  private readonly log: Logger;
  private readonly onWritable: () => void;

  constructor(address: ServerAddress, log: Logger, onWritable: () => void) {
    this.address = address;
    this.log = log;
    this.onWritable = onWritable;
  }

  writable(): boolean {
    if (this.socket === null && this.retryTimer === null && !this.closed) this.connect();
    return this.connected && !this.socket!.writableNeedDrain;
  }

  send(messages: readonly string[]): void {
    const octets = this.address.kind === 'tcp';
    let out = '';
    for (const m of messages) out += octets ? `${Buffer.byteLength(m)} ${m}` : `${m}\n`;
    this.socket!.write(out);
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.socket?.destroy();
  }

  private connect(): void {
    const a = this.address;
    const s = a.kind === 'unix' ? connect({ path: a.path }) : connect({ host: a.host, port: a.port });
    this.socket = s;
    s.unref();
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connected = true;
      this.backoff = RETRY_FIRST_MS;
      this.onWritable();
    });
    s.on('drain', this.onWritable);
    // The server has nothing to say; read and discard so its bytes never pile up.
    s.resume();
    s.on('error', (err) => {
      // One line per outage, not per retry.
      if (this.backoff === RETRY_FIRST_MS) this.log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'syslog connection failed');
    });
    s.on('close', () => {
      this.socket = null;
      this.connected = false;
      if (this.closed) return;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.onWritable();
      }, this.backoff);
      this.retryTimer.unref();
      this.backoff = Math.min(this.backoff * 2, RETRY_MAX_MS);
    });
  }
}

export function createTransport(address: ServerAddress, log: Logger, onWritable: () => void): Transport {
  return address.kind === 'udp' ? new UdpTransport(address.host, address.port, log, onWritable) : new StreamTransport(address, log, onWritable);
}
