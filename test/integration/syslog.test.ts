import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { freePort } from '../helpers/free-port.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startSyslogServer } from '../helpers/syslog-server.ts';
import type { SyslogServer } from '../helpers/syslog-server.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) sluice (\d+) - - (\{.*\})$/;
const RFC3164 = /^<(\d{1,3})>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\S+) sluice\[(\d+)\]: (\{.*\})$/;

let echo: TestUpstream;
let gw: RunningGateway;
let udp: SyslogServer;
let tcp: SyslogServer;
let blackhole: Server;
const blackholed: Socket[] = [];

const listen = (s: Server): Promise<number> => new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

beforeAll(async () => {
  echo = await startUpstream(echoHandler);
  udp = await startSyslogServer('udp');
  tcp = await startSyslogServer('tcp');
  // Accepts and never reads.
  blackhole = createServer({ pauseOnConnect: true }, (s) => void blackholed.push(s));
  const blackholePort = await listen(blackhole);
  const deadUdpPort = await freePort();
  const fast = { flush_interval: '50ms', batch_max_size: 5 };
  const statuses = (name: string, server: string, extra: object) => [
    { name: `${name}-ok`, paths: [`= /${name}/ok`], upstream: 'echo', plugins: { syslog: { server, ...fast, ...extra } } },
    { name: `${name}-404`, paths: [`= /${name}/404`], return: { status: 404, body: 'no' }, plugins: { syslog: { server, ...fast, ...extra } } },
    { name: `${name}-503`, paths: [`= /${name}/503`], return: { status: 503, body: 'down' }, plugins: { syslog: { server, ...fast, ...extra } } },
  ];
  gw = await startGateway(() => ({
    worker_processes: 1,
    upstreams: { echo: { targets: [{ address: echo.address }] } },
    routes: [
      // local4 (20): 2xx info (6) -> 166, 4xx warning (4) -> 164, 5xx crit (2) -> 162.
      ...statuses('udp', udp.url,
        { facility: 'local4', successful_severity: 'info', client_errors_severity: 'warning', server_errors_severity: 'crit' }),
      ...statuses('tcp', tcp.url, { server_errors_severity: 'err' }),
      { name: 'bsd', paths: ['= /bsd'], upstream: 'echo', plugins: { syslog: { server: udp.url, format: 'rfc3164', ...fast } } },
      { name: 'stuck', paths: ['= /stuck'], upstream: 'echo', plugins: { syslog: { server: `tcp://127.0.0.1:${blackholePort}`, queue_size: 20, batch_max_size: 10, flush_interval: '20ms' } } },
      { name: 'refused', paths: ['= /refused'], upstream: 'echo', plugins: { syslog: { server: `tcp://127.0.0.1:${deadUdpPort}`, queue_size: 20, flush_interval: '20ms' } } },
      { name: 'nobody', paths: ['= /nobody'], upstream: 'echo', plugins: { syslog: { server: `udp://127.0.0.1:${deadUdpPort}`, queue_size: 20, flush_interval: '20ms' } } },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
  await udp?.close();
  for (const s of blackholed) s.destroy();
  await tcp?.close();
  blackhole?.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(gw.url(path), { headers });
  await res.body.dump();
  return res.statusCode;
}

async function lineFor(lines: string[], marker: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const l = lines.find((x) => x.includes(marker));
    if (l !== undefined) return l;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no syslog line with ${marker}; got ${lines.join('\n')}`);
}

describe('syslog through the gateway', () => {
  test('UDP: well-formed RFC 5424 lines, PRI = facility*8 + severity per status class, the entry as JSON', async () => {
    expect(await get('/udp/ok?m=u1')).toBe(200);
    expect(await get('/udp/404?m=u1')).toBe(404);
    expect(await get('/udp/503?m=u1')).toBe(503);
    const parse = async (path: string) => RFC5424.exec(await lineFor(udp.messages, `"path":"${path}","query":"m=u1"`));
    const ok = await parse('/udp/ok');
    expect(ok).not.toBeNull();
    expect(ok![1]).toBe('166');
    expect((await parse('/udp/404'))![1]).toBe('164');
    expect((await parse('/udp/503'))![1]).toBe('162');
    const entry = JSON.parse(ok![5]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ client: '127.0.0.1', route: 'udp-ok', request: { method: 'GET', path: '/udp/ok' }, response: { status: 200 }, upstream: echo.address });
    expect(entry['latencies']).toEqual({ request: expect.any(Number), upstream: expect.any(Number), gateway: expect.any(Number) });
  });

  test('TCP: octet-counted RFC 5424 frames with the right PRI (user = 1)', async () => {
    expect(await get('/tcp/ok?m=t1')).toBe(200);
    expect(await get('/tcp/404?m=t1')).toBe(404);
    expect(await get('/tcp/503?m=t1')).toBe(503);
    const pri = async (path: string) => RFC5424.exec(await lineFor(tcp.messages, `"path":"${path}","query":"m=t1"`))![1];
    expect(await pri('/tcp/ok')).toBe('14');
    expect(await pri('/tcp/404')).toBe('14');
    expect(await pri('/tcp/503')).toBe('11');
  });

  test('RFC 3164 format', async () => {
    expect(await get('/bsd?m=b1')).toBe(200);
    const m = RFC3164.exec(await lineFor(udp.messages, '"path":"/bsd","query":"m=b1"'));
    expect(m).not.toBeNull();
    expect(m![1]).toBe('14');
  });

  test('a server that accepts and never reads, one that refuses, and a UDP port nobody listens on: requests all complete while entries are dropped and counted', async () => {
    for (const path of ['/stuck', '/refused', '/nobody']) {
      // Large entries (a long query) fill the blackholed socket's buffers quickly.
      const q = `?pad=${'x'.repeat(4000)}`;
      for (let round = 0; round < 20; round++) {
        const statuses = await Promise.all(Array.from({ length: 25 }, () => get(path + q)));
        expect(statuses.every((s) => s === 200)).toBe(true);
      }
    }
    // The refused server's queue (20) overflows: drops are counted and logged (once per interval).
    await gw.waitForLog('"msg":"syslog entries dropped: queue full"');
    expect(gw.stderr()).toMatch(/"dropped":\d+,"dropped_total":\d+,"queue_size":20/);
    expect(await get('/udp/ok')).toBe(200);
  });
});
