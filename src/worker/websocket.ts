import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WS_ACTIVE, WS_AT_DRAIN, WS_TOTAL } from '../contracts/stats-layout.ts';
import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { listsToken } from '../plugins/pdk/headers.ts';
import type { Exchange, ResponseOut } from './exchange.ts';
import { sendUpgrade } from './response-writer.ts';

/**
 * WebSocket proxying on `websocket: true` routes (RFC 6455). The handshake is
 * a request like any other up to the upstream (routing, plugins, identity,
 * X-Forwarded-*, balancer and retries: gateway.ts and proxy.ts); this file
 * holds what differs:
 *
 *   asksWebSocket ─► guardHandshake ─► … request path … ─► upstream 101 ─► openTunnel
 *                     (4xx, nothing sent upstream)                          │
 *                                                     bytes both ways, piped with backpressure;
 *                                                     idle (read_timeout) or either side gone: both closed;
 *                                                     drain deadline: close frame 1001 (Tunnels.goAway)
 *
 * The gateway never parses the messages: it relays bytes, and reads only the
 * frame headers from the upstream, to know where it may put a close frame.
 */

/** RFC 6455 §4.1: the Upgrade header lists the token `websocket`, in any case. */
export function asksWebSocket(req: IncomingMessage): boolean {
  const v = req.headers.upgrade;
  return v !== undefined && listsToken(v, 'websocket');
}

/** The base64 of 16 bytes (RFC 6455 §4.1 item 7), as the `ws` server checks it. */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/**
 * RFC 6455 §4.2.1, checked before any plugin or upstream sees the handshake:
 * a GET (405), HTTP/1.1 (the upgrade mechanism is 1.1's), no body (its bytes
 * would reach the upstream as WebSocket frames), a valid key (400), version 13
 * (426 naming the version we speak, §4.4).
 */
export function guardHandshake(req: IncomingMessage, out: ResponseOut): GatewayErrorCode | null {
  if (req.method !== 'GET') {
    out.setHeader('allow', 'GET');
    return 'GW_ERR_METHOD_NOT_ALLOWED';
  }
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return 'GW_ERR_BAD_HANDSHAKE';
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) return 'GW_ERR_BAD_HANDSHAKE';
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return 'GW_ERR_BAD_HANDSHAKE';
  if (req.headers['sec-websocket-version'] !== '13') {
    out.setHeader('sec-websocket-version', '13');
    return 'GW_ERR_WEBSOCKET_VERSION';
  }
  return null;
}

/** A server's close frame (unmasked, RFC 6455 §5.5.1): FIN + opcode 8, 2-byte payload, status 1001 "going away". */
const CLOSE_GOING_AWAY = Buffer.from([0x88, 0x02, 1001 >> 8, 1001 & 0xff]);

/**
 * Where the upstream's byte stream stands between frames (RFC 6455 §5.2),
 * from the frame headers alone: 2 bytes, then 2 or 8 of extended length, then
 * 4 of mask if the upstream (wrongly) masks.
 */
class FrameEdges {
  /** Payload bytes of the frame being relayed still to come. */
  private left = 0;
  /** A header split across chunks, so far. */
  private partial: Buffer | null = null;

  get atEdge(): boolean {
    return this.left === 0 && this.partial === null;
  }

  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let i = 0;
    while (i < buf.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, buf.length - i);
        this.left -= n;
        i += n;
        continue;
      }
      const avail = buf.length - i;
      if (avail < 2) break;
      const len7 = buf[i + 1]! & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const size = 2 + ext + (buf[i + 1]! & 0x80 ? 4 : 0);
      if (avail < size) break;
      this.left = ext === 0 ? len7 : ext === 2 ? buf.readUInt16BE(i + 2) : Number(buf.readBigUInt64BE(i + 2));
      i += size;
    }
    if (i < buf.length) this.partial = Buffer.from(buf.subarray(i));
  }
}

class Tunnel {
  private readonly client: Socket;
  private readonly upstream: Duplex;
  private readonly edges = new FrameEdges();
  private goingAway = false;

  constructor(tunnels: Tunnels, client: Socket, upstream: Duplex, idleMs: number, early: Buffer, onClosed: () => void) {
    this.client = client;
    this.upstream = upstream;
    tunnels.opened(this);
    // Frames the client sent right behind its handshake came with it (Node's upgrade `head`).
    if (early.length > 0) upstream.write(early);
    client.pipe(upstream);
    upstream.pipe(client);
    upstream.on('data', (chunk: Buffer) => this.edges.feed(chunk));
    // The upstream client hands the socket over without listeners; an error is a close (the client's has connection.ts's).
    upstream.on('error', () => this.close());
    // nginx's proxy_read_timeout on an upgraded connection: no byte either way for that long. Every byte crosses the client's socket.
    client.setTimeout(idleMs, () => this.close());
    client.once('close', () => {
      upstream.destroy();
      tunnels.closed(this);
      onClosed();
    });
    upstream.once('close', () => {
      if (!this.goingAway) client.destroy();
    });
  }

  close(): void {
    this.client.destroy();
    this.upstream.destroy();
  }

  /**
   * The drain's deadline: the client gets 1001 (going away) and our FIN, the
   * upstream side is closed. A frame cut in the middle would make the close
   * frame part of its payload; then the connection is only cut.
   */
  goAway(): void {
    this.goingAway = true;
    this.client.unpipe(this.upstream);
    this.upstream.unpipe(this.client);
    this.upstream.destroy();
    if (!this.edges.atEdge) {
      this.client.destroy();
      return;
    }
    this.client.end(CLOSE_GOING_AWAY);
    // The client's own close frame is not awaited: the worker is exiting.
    this.client.destroySoon();
  }
}

/** The worker's open WebSockets, for the drain deadline and /status. */
export class Tunnels {
  private readonly open = new Set<Tunnel>();
  private readonly stats: Float64Array;

  constructor(stats: Float64Array) {
    this.stats = stats;
  }

  opened(t: Tunnel): void {
    this.open.add(t);
    this.stats[WS_ACTIVE]!++;
    this.stats[WS_TOTAL]!++;
  }

  closed(t: Tunnel): void {
    if (this.open.delete(t)) this.stats[WS_ACTIVE]!--;
  }

  /** worker_shutdown_timeout of a drain: every WebSocket still open is closed with 1001. Returns how many. */
  goAway(): number {
    const n = this.open.size;
    for (const t of this.open) t.goAway();
    this.stats[WS_AT_DRAIN]! += n;
    return n;
  }
}

/**
 * The upstream answered 101: the client gets it through the response writer,
 * then the two sockets are joined. `list`: the upstream's 101 headers without
 * hop-by-hop ones; `onClosed` runs once, when the tunnel closes (at once if
 * the client has gone already).
 */
export function openTunnel(x: Exchange, list: readonly string[], upstream: Duplex, idleMs: number, onClosed: () => void): void {
  const client = x.socket;
  if (client.destroyed || x.out.destroyed) {
    upstream.destroy();
    onClosed();
    return;
  }
  sendUpgrade(x, list);
  new Tunnel(x.site.tunnels, client, upstream, idleMs, x.handshake!, onClosed);
}
