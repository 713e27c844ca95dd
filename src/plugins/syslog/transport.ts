import { createSocket } from 'node:dgram';
import type { Socket as DgramSocket } from 'node:dgram';
import { connect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { Backoff } from './backoff.ts';
import type { LoggerProcess } from './logger-process.ts';

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
  /** Resolves once everything sent has left the process (or, for a unix socket, is in the worker's logger's stdin), then closes: the graceful end of `dispose`. */
  end(): Promise<void>;
  /** Closes now; whatever is still buffered is lost. */
  close(): void;
}

export interface NetAddress { readonly kind: 'udp' | 'tcp'; readonly host: string; readonly port: number }
export type ServerAddress = NetAddress | { readonly kind: 'unix'; readonly path: string };

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
 * One instance's view of its worker's {@link LoggerProcess} for a unix
 * socket: the instances naming that path write to the same logger, each
 * flushed when it may take more. Ending an instance only stops listening:
 * its lines are in logger's stdin, and the plugin's dispose ends the logger
 * after every instance has handed over its queue.
 */
export class LoggerTransport implements Transport {
  private readonly logger: LoggerProcess;
  private readonly onChange: () => void;

  constructor(logger: LoggerProcess, onChange: () => void) {
    this.logger = logger;
    this.onChange = onChange;
    logger.listen(onChange);
  }

  writable(): boolean {
    return this.logger.writable();
  }

  down(): boolean {
    return this.logger.down();
  }

  send(messages: readonly string[]): void {
    let out = '';
    for (const m of messages) out += `${m}\n`;
    this.logger.write(out);
  }

  end(): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  close(): void {
    this.logger.unlisten(this.onChange);
  }
}

/** The transport to a udp or tcp server; a unix socket's is a {@link LoggerTransport}. */
export function createTransport(address: NetAddress, log: Logger, onChange: () => void): Transport {
  return address.kind === 'udp' ? new UdpTransport(address.host, address.port, log, onChange) : new StreamTransport(address, log, onChange);
}

/** A line for the logger process: logger reads the PRI prefix and adds the rest of the header itself. */
export const unixMessage = (pri: number, msg: string): string => `<${pri}>${msg}`;
