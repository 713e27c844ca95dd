import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import type { TestCa, TestCert } from '../helpers/certs.ts';
import { freePort } from '../helpers/free-port.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * TLS termination through the real gateway (two workers) with certificates
 * made by openssl for the test: SNI, refused protocol versions, X-Forwarded-
 * Proto upstream, a renewal picked up by reload, a broken renewal refused
 * while the old certificate keeps serving, sessions resumed whichever
 * worker the resumed connection reaches, and the ticket keys' rotation.
 */

let certs: string;
let ca: TestCa;
let api: TestCert;
let wild: TestCert;
let fallback: TestCert;
let upstream: TestUpstream;
let gw: RunningGateway;
let tlsPort = 0;
let tls12Port = 0;
let rotatingPort = 0;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), 'sluice-certs-'));
  ca = makeCa(certs);
  fallback = makeCert(certs, 'default', ['default.test'], ca);
  api = makeCert(certs, 'api', ['api.example.com'], ca);
  wild = makeCert(certs, 'wild', ['*.example.org'], ca);
  upstream = await startUpstream((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  tlsPort = await freePort();
  tls12Port = await freePort();
  rotatingPort = await freePort();
  gw = await startGateway(({ port }) => ({
    server: {
      listen: [`127.0.0.1:${port}`, { address: `127.0.0.1:${tlsPort}`, tls: true }],
      tls: { certificates: [fallback, api, wild].map((c) => ({ cert: c.cert, key: c.key })) },
    },
    upstreams: { up: { targets: [upstream.address] } },
    routes: [{ name: 'all', paths: ['/'], upstream: 'up' }],
  }));
});
afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** A handshake as a client would make it, trusting the test CA; resolves with the connected socket. */
function handshake(opts: ConnectionOptions & { port?: number }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: tlsPort, ca: ca.pem, ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A TLS 1.3 session ticket, which the server sends once the handshake is done (after the first request here). */
async function ticket(port: number, servername: string): Promise<Buffer> {
  const s = await handshake({ port, servername });
  const session = await new Promise<Buffer>((resolve) => {
    s.once('session', resolve);
    s.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
  });
  s.destroy();
  return session;
}

/** How many of ten new connections (spread over both workers by the kernel) resume `session`. */
async function resumed(session: Buffer, port: number, servername: string): Promise<number> {
  let n = 0;
  for (let i = 0; i < 10; i++) {
    const s = await handshake({ port, servername, session });
    if (s.isSessionReused()) n++;
    s.destroy();
  }
  return n;
}

async function servedSerial(servername: string): Promise<string> {
  const s = await handshake({ servername });
  const serial = s.getPeerX509Certificate()!.serialNumber;
  s.destroy();
  return serial;
}

describe('TLS listener', () => {
  it('picks the certificate by SNI: an exact name, a wildcard, and the first for any other name', async () => {
    expect(await servedSerial('api.example.com')).toBe(api.serial);
    expect(await servedSerial('shop.example.org')).toBe(wild.serial);
    expect(await servedSerial('API.EXAMPLE.COM')).toBe(api.serial);
    // Unknown names and wildcards one label too deep get the default, which the client then rejects as not its name.
    await expect(handshake({ servername: 'a.b.example.org' })).rejects.toThrow(/altnames|does not match/i);
    await expect(handshake({ servername: 'nobody.test' })).rejects.toThrow(/altnames|does not match/i);
    expect(await servedSerial('default.test')).toBe(fallback.serial);
  });

  it('refuses TLS 1.1', async () => {
    await expect(handshake({ servername: 'api.example.com', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).rejects.toThrow();
  });

  it('proxies HTTPS with X-Forwarded-Proto: https, and http on the plain listener', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port: tlsPort, servername: 'api.example.com', ca: ca.pem, path: '/x', headers: { host: 'api.example.com' } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject).end();
    });
    expect(body).toBe('ok');
    expect(seen.at(-1)!['x-forwarded-proto']).toBe('https');
    await fetch(gw.url('/y'));
    expect(seen.at(-1)!['x-forwarded-proto']).toBe('http');
  });

  it('resumes a session on whichever worker the next connections reach (tickets from the master)', async () => {
    // Ten connections spread over both workers by the kernel: a session only one worker knew would fail about half of them.
    expect(await resumed(await ticket(tlsPort, 'api.example.com'), tlsPort, 'api.example.com')).toBe(10);
  });

  it('serves a renewed certificate after a reload; a broken renewal fails the reload and the old one keeps serving', async () => {
    const renewed = makeCert(certs, 'api-renewed', ['api.example.com'], ca);
    copyFileSync(renewed.cert, api.cert);
    copyFileSync(renewed.key, api.key);
    await gw.reload();
    expect(await servedSerial('api.example.com')).toBe(renewed.serial);

    const other = makeCert(certs, 'api-other', ['api.example.com'], ca);
    copyFileSync(other.cert, api.cert); // a certbot run cut short: the new certificate, the old key
    const before = (await gw.status()).reloads.failed;
    gw.signal('SIGHUP');
    await expect.poll(async () => (await gw.status()).reloads.failed, { timeout: 10_000 }).toBe(before + 1);
    expect((await gw.status()).reloads.last_error).toContain('is not the key of');
    expect(await servedSerial('api.example.com')).toBe(renewed.serial);
    copyFileSync(renewed.cert, api.cert);
    expect(readFileSync(api.cert, 'utf8')).toContain('BEGIN CERTIFICATE');
  });
});

describe('TLS session cache without tickets', () => {
  let gw12: RunningGateway;
  beforeAll(async () => {
    gw12 = await startGateway(({ port }) => ({
      server: {
        listen: [`127.0.0.1:${port}`, { address: `127.0.0.1:${tls12Port}`, tls: true }],
        tls: { certificates: [{ cert: fallback.cert, key: fallback.key }], protocols: ['TLSv1.2'], session_tickets: false, session_cache: '1m' },
      },
      routes: [{ name: 'r', paths: ['/'], return: { status: 200, body: 'ok' } }],
    }));
  });
  afterAll(async () => {
    await gw12?.stop();
  });

  it('resumes TLS 1.2 session ids from the shared dict on either worker', async () => {
    const first = await handshake({ port: tls12Port, servername: 'default.test' });
    expect(first.getProtocol()).toBe('TLSv1.2');
    const session = first.getSession()!;
    first.destroy();
    for (let i = 0; i < 10; i++) {
      const again = await handshake({ port: tls12Port, servername: 'default.test', session });
      expect(again.isSessionReused()).toBe(true);
      again.destroy();
    }
    expect((await gw12.status()).shared_dicts['sluice_tls_sessions']!.keys).toBeGreaterThan(0);
  });

  it('refuses TLS 1.3 when only TLSv1.2 is listed', async () => {
    await expect(handshake({ port: tls12Port, servername: 'default.test', minVersion: 'TLSv1.3' })).rejects.toThrow();
  });
});

describe('TLS ticket key rotation', () => {
  const PERIOD_MS = 4000;
  const ROTATED = 'TLS ticket keys rotated';
  let gwr: RunningGateway;
  beforeAll(async () => {
    gwr = await startGateway(({ port }) => ({
      server: {
        listen: [`127.0.0.1:${port}`, { address: `127.0.0.1:${rotatingPort}`, tls: true }],
        tls: { certificates: [{ cert: api.cert, key: api.key }], session_cache: 0, session_ticket_rotation: `${PERIOD_MS}ms` },
      },
      routes: [{ name: 'r', paths: ['/'], return: { status: 200, body: 'ok' } }],
    }));
  });
  afterAll(async () => {
    await gwr?.stop();
  });

  it('replaces the keys on every worker: a ticket from before a rotation no longer resumes, one from after resumes on either worker', async () => {
    for (let attempt = 0; ; attempt++) {
      const old = await ticket(rotatingPort, 'api.example.com');
      await gwr.waitForLog(ROTATED, gwr.stderr().length);
      const rotatedAt = performance.now();
      // Each worker loads the keys when the master's message reaches it, moments after its line.
      await expect.poll(() => resumed(old, rotatingPort, 'api.example.com'), { timeout: 5000 }).toBe(0);
      const fresh = await resumed(await ticket(rotatingPort, 'api.example.com'), rotatingPort, 'api.example.com');
      // Counted only when it all ran well before the next rotation (a slow box tries again).
      if (performance.now() - rotatedAt < (PERIOD_MS * 3) / 4) {
        expect(fresh).toBe(10);
        break;
      }
      expect(attempt).toBeLessThan(3);
    }
  });
});
