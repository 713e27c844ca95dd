import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { requestHead } from '../../../../src/worker/upstream-client/request-head.ts';
import type { UpstreamRequest } from '../../../../src/worker/upstream-client/request-head.ts';

const req = (over: Partial<UpstreamRequest>): UpstreamRequest => ({
  method: 'GET', target: '/a?b=1', headers: ['host', 'up:9001', 'X-Mixed', 'v'], body: null, upgrade: false, ...over,
});

describe('requestHead: the request head in one string', () => {
  it('writes the request line and the list as given, names unchanged, and no Connection field on a keep-alive connection', () => {
    expect(requestHead(req({}), false)).toEqual({ head: 'GET /a?b=1 HTTP/1.1\r\nhost: up:9001\r\nX-Mixed: v\r\n\r\n', chunked: false });
  });

  it('says Connection: close on a connection that carries one request', () => {
    expect(requestHead(req({}), true).head).toMatch(/\r\nconnection: close\r\n\r\n$/);
  });

  it('asks for the WebSocket upgrade itself (the client\'s Connection and Upgrade were dropped as hop-by-hop)', () => {
    expect(requestHead(req({ upgrade: true }), false).head).toMatch(/\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n$/);
  });

  it('frames bodies: a stream without Content-Length is chunked; with one, or a Buffer, it goes as it is', () => {
    const stream = Readable.from([]);
    expect(requestHead(req({ method: 'POST', body: stream }), false)).toMatchObject({ chunked: true });
    expect(requestHead(req({ method: 'POST', body: stream }), false).head).toContain('\r\ntransfer-encoding: chunked\r\n');
    const withLength = requestHead(req({ method: 'POST', body: stream, headers: ['Content-Length', '3'] }), false);
    expect(withLength).toEqual({ head: 'POST /a?b=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n', chunked: false });
    expect(requestHead(req({ method: 'PUT', body: Buffer.from('abcd'), headers: [] }), false).head).toBe('PUT /a?b=1 HTTP/1.1\r\ncontent-length: 4\r\n\r\n');
  });

  it('gives POST, PUT and PATCH without a body Content-Length: 0, and nothing to other methods', () => {
    expect(requestHead(req({ method: 'POST', headers: [] }), false).head).toBe('POST /a?b=1 HTTP/1.1\r\ncontent-length: 0\r\n\r\n');
    expect(requestHead(req({ method: 'DELETE', headers: [] }), false).head).toBe('DELETE /a?b=1 HTTP/1.1\r\n\r\n');
    expect(requestHead(req({ method: 'POST', headers: ['content-length', '0'] }), false).head).toBe('POST /a?b=1 HTTP/1.1\r\ncontent-length: 0\r\n\r\n');
  });
});
