import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { echoHandler, startUpstream } from './upstream.ts';
import type { TestUpstream } from './upstream.ts';

/**
 * A minimal WebSocket echo upstream (RFC 6455), on node:http's 'upgrade':
 * answers the handshake with 101 and sends every frame back unmasked with its
 * opcode and FIN bit (a close frame too, then ends). Not a WebSocket library:
 * just enough of one to see what the gateway relays. Plain requests get
 * upstream.ts's JSON echo; a plain `GET …/rogue-101` is answered with a 101
 * nobody asked for; a handshake to `…/deny` gets a 403.
 */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface WebSocketUpstream extends TestUpstream {
  /** Handshakes received, in order. */
  readonly upgrades: SeenRequest[];
  /** Plain requests received, in order. */
  readonly requests: SeenRequest[];
  /** Sockets of the WebSockets open now. */
  readonly open: Set<Socket>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const acceptKey = (key: string): string => createHash('sha1').update(key + GUID).digest('base64');

/** A server frame: unmasked, FIN as given. */
export function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) head[1] = len;
  else if (ext === 2) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

/** Reads client frames off a socket as they complete: (opcode, fin, unmasked payload). */
function readFrames(socket: Socket, head: Buffer, onFrame: (opcode: number, fin: boolean, payload: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let total = 0;
  const take = (): Buffer => {
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks.length = 0;
    return all;
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    total += chunk.length;
    for (;;) {
      if (total < 2) return;
      let buf = take();
      const len7 = buf[1]! & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const masked = (buf[1]! & 0x80) !== 0;
      const size = 2 + ext + (masked ? 4 : 0);
      const len = total < size ? 0 : ext === 0 ? len7 : ext === 2 ? buf.readUInt16BE(2) : Number(buf.readBigUInt64BE(2));
      if (total < size || total < size + len) {
        chunks.push(buf);
        return;
      }
      const b0 = buf[0]!;
      const payload = Buffer.from(buf.subarray(size, size + len));
      if (masked) {
        const mask = buf.subarray(size - 4, size);
        for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      }
      buf = buf.subarray(size + len);
      total = buf.length;
      if (total > 0) chunks.push(buf);
      onFrame(b0 & 0x0f, (b0 & 0x80) !== 0, payload);
    }
  };
  socket.on('data', onData);
  if (head.length > 0) onData(head);
}

export async function startWebSocketUpstream(): Promise<WebSocketUpstream> {
  const upgrades: SeenRequest[] = [];
  const requests: SeenRequest[] = [];
  const open = new Set<Socket>();
  const u = await startUpstream((req, res) => {
    requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    if (req.url!.endsWith('/rogue-101')) {
      req.socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
      return;
    }
    echoHandler(req, res);
  });
  u.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    upgrades.push({ method: req.method!, url: req.url!, headers: req.headers });
    socket.on('error', () => socket.destroy());
    if (req.url!.endsWith('/deny')) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: close\r\n\r\ndenied');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    // As WebSocket servers do: the peer's FIN ends the connection (node:http keeps sockets half-open).
    socket.once('end', () => socket.end());
    readFrames(socket, head, (opcode, fin, payload) => {
      socket.write(frame(opcode, payload, fin));
      if (opcode === 8) socket.end();
    });
  });
  const close = (): Promise<void> => {
    // server.close() waits for every socket, and closeAllConnections() does not see upgraded ones.
    for (const socket of open) socket.destroy();
    return u.close();
  };
  return { ...u, close, upgrades, requests, open };
}
