import { mkdtempSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeCert } from '../helpers/certs.ts';
import type { TestCa, TestCert } from '../helpers/certs.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * TLS to upstreams through the real gateway (two workers), with real HTTPS
 * upstreams on 127.0.0.1 and certificates made by openssl for the test: a
 * private CA with server_name, refusals (wrong CA, wrong name, expired
 * certificate, a client certificate missing) answered 502 and logged with the
 * TLS error while the upstream never sees the request, verify: false, mTLS,
 * session resumption, and active health checks through TLS.
 */

const DAY = 86_400_000;
let ca: TestCa;
let otherCa: TestCa;
let client: TestCert;
let gw: RunningGateway;
const servers: Record<string, TestUpstream> = {};
/** Requests each upstream's handler got, by upstream name: a refused handshake must leave them at 0. */
const got: Record<string, string[]> = {};
/** TCP connections each upstream accepted: counted on accept, so before the gateway can have seen the certificate it refuses. */
const connections: Record<string, number> = {};

interface Seen {
  host: string;
  sni: string | false | null;
  reused: boolean;
  clientCN: string | null;
  body: string;
}

function handler(name: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      (got[name] ??= []).push(req.url!);
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      const seen: Seen = {
        host: req.headers.host!,
        sni: socket.servername,
        reused: socket.isSessionReused(),
        clientCN: peer.subject === undefined ? null : String(peer.subject.CN),
        body: Buffer.concat(chunks).toString(),
      };
      // /close: the next request needs a new connection, which should resume this one's session.
      res.writeHead(200, { 'content-type': 'application/json', ...(req.url === '/close' ? { connection: 'close' } : {}) });
      res.end(JSON.stringify(seen));
    });
  };
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-upstream-tls-'));
  ca = makeCa(dir, 'internal-ca');
  otherCa = makeCa(dir, 'other-ca');
  const billing = makeCert(dir, 'billing', ['billing.internal'], ca);
  const expired = makeCert(dir, 'expired', ['billing.internal'], ca, { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
  const selfSigned = makeCa(dir, 'self-signed');
  client = makeCert(dir, 'client', ['gateway.client'], ca);
  const pems = (c: { cert: string; key: string }) => ({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
  const specs: Record<string, object> = {
    billing: pems(billing),
    expired: pems(expired),
    selfSigned: pems(selfSigned),
    mtls: { ...pems(billing), requestCert: true, rejectUnauthorized: true, ca: ca.pem },
    // Its own server, so that probes (a failing one reconnects every time) leave the others' counts alone.
    probed: pems(billing),
  };
  for (const [name, opts] of Object.entries(specs)) {
    const s = await startUpstream(handler(name), opts);
    connections[name] = 0;
    s.server.on('connection', () => connections[name]!++);
    servers[name] = s;
  }
  const billingTls = { ca: ca.cert, server_name: 'billing.internal' };
  const up = (target: string, tls: object, extra: object = {}) => ({ targets: [servers[target]!.address], tls, retries: 0, ...extra });
  const probe = { active: { path: '/healthz', interval: '100ms', timeout: '1s', healthy: 1, unhealthy: 2 } };
  gw = await startGateway(() => ({
    upstreams: {
      good: up('billing', billingTls),
      wrongCa: up('billing', { ca: otherCa.cert, server_name: 'billing.internal' }),
      wrongName: up('billing', { ca: ca.cert, server_name: 'other.internal' }),
      expired: up('expired', billingTls),
      insecure: up('selfSigned', { verify: false }),
      mtls: up('mtls', { ...billingTls, cert: client.cert, key: client.key }),
      mtlsNoCert: up('mtls', billingTls),
      // The expired target first: round-robin starts there, and the good one takes the retry.
      failover: { targets: [servers['expired']!.address, servers['billing']!.address], tls: billingTls, retries: 1 },
      probedGood: up('probed', billingTls, { healthcheck: probe }),
      probedBad: up('probed', { ca: otherCa.cert, server_name: 'billing.internal' }, { healthcheck: probe }),
    },
    routes: [
      ...['good', 'wrongCa', 'wrongName', 'expired', 'insecure', 'mtls', 'mtlsNoCert', 'failover'].map((name) => ({
        name, paths: [`/${name}/`], strip_path: true, upstream: name,
      })),
      { name: 'preserve', paths: ['/preserve/'], strip_path: true, upstream: 'good', preserve_host: true },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

async function get(path: string, init: { method?: 'GET' | 'POST'; body?: string; host?: string } = {}): Promise<{ status: number; body: string }> {
  const headers = init.host === undefined ? {} : { host: init.host };
  const res = await request(gw.url(path), { method: init.method ?? 'GET', body: init.body ?? null, headers, reset: true });
  return { status: res.statusCode, body: await res.body.text() };
}

describe('TLS to upstreams', () => {
  it('proxies to an https upstream with a private CA and server_name: SNI is server_name, the Host header stays the target', async () => {
    const res = await get('/good/hello');
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as Seen;
    expect(seen.sni).toBe('billing.internal');
    expect(seen.host).toBe(servers['billing']!.address);
    expect(seen.clientCN).toBeNull();
  });

  it('with preserve_host, the client\'s Host goes upstream but never becomes the SNI, nor costs a connection when it changes', async () => {
    const before = connections['billing']!;
    for (let i = 0; i < 6; i++) {
      const res = await get('/preserve/x', { host: `tenant${i}.example.com` });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ host: `tenant${i}.example.com`, sni: 'billing.internal' });
    }
    // Kept-alive connections, one per worker at most: a connection's server name is the target's, never a request's Host.
    expect(connections['billing']! - before).toBeLessThanOrEqual(2);
  });

  it.each([
    ['wrongCa', 'billing', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['wrongName', 'billing', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['expired', 'expired', 'CERT_HAS_EXPIRED'],
  ])('refuses %s: 502, logged with %s… the upstream never gets the request, and no second try is made', async (route, server, tlsCode) => {
    const before = got[server]?.length ?? 0;
    const connectionsBefore = connections[server]!;
    const mark = gw.stderr().length;
    const res = await get(`/${route}/secret`, { method: 'POST', body: 'do-not-send' });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'GW_ERR_UPSTREAM' });
    await gw.waitForLog(`"code":"${tlsCode}"`, mark);
    expect(gw.stderr().slice(mark)).toContain('"code":"GW_ERR_UPSTREAM"');
    expect(got[server]?.length ?? 0).toBe(before);
    // A GET would be retried if it were taken for a reset: one connection per request, no more.
    await get(`/${route}/again`);
    expect(connections[server]! - connectionsBefore).toBe(2);
    expect(got[server]?.length ?? 0).toBe(before);
  });

  it('moves a GET on to the next target when one target\'s certificate fails (nginx proxy_next_upstream error)', async () => {
    const mark = gw.stderr().length;
    const res = await get('/failover/x');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as Seen).sni).toBe('billing.internal');
    await gw.waitForLog('"msg":"upstream try failed; trying again"', mark);
    expect(gw.stderr().slice(mark)).toContain('"code":"CERT_HAS_EXPIRED"');
  });

  it('verify: false connects to a self-signed upstream', async () => {
    const res = await get('/insecure/x');
    expect(res.status).toBe(200);
    expect(got['selfSigned']).toContain('/x');
  });

  it('mTLS: the upstream requires a client certificate and gets the configured one; without one it refuses and the answer is 502', async () => {
    const res = await get('/mtls/who');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.body) as Seen).clientCN).toBe('gateway.client');
    const mark = gw.stderr().length;
    const none = await get('/mtlsNoCert/who');
    expect(none.status).toBe(502);
    await gw.waitForLog('"code":"GW_ERR_UPSTREAM"', mark);
    expect(got['mtls']).toEqual(['/who']);
  });

  it('resumes TLS sessions on new connections to the upstream (the per-target connector\'s session cache)', async () => {
    const seen: Seen[] = [];
    for (let i = 0; i < 6; i++) seen.push(JSON.parse((await get('/good/close')).body) as Seen);
    // One full handshake per worker at most (two workers); every other connection resumes.
    expect(seen.filter((s) => s.reused).length).toBeGreaterThanOrEqual(4);
  });

  it('active health checks probe https targets with the same TLS settings: verified ones healthy, a failing certificate unhealthy and logged', async () => {
    await gw.waitForLog('"last_failure":"UNABLE_TO_VERIFY_LEAF_SIGNATURE"');
    const addr = servers['probed']!.address;
    // Probes of probedGood reached the handler through TLS.
    expect(got['probed']).toContain('/healthz');
    const { upstreams } = await gw.status() as unknown as { upstreams: Record<string, Record<string, string>> };
    expect(upstreams['probedGood']).toEqual({ [addr]: 'healthy' });
    expect(upstreams['probedBad']).toEqual({ [addr]: 'unhealthy' });
  });
});
