import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/** GET /metrics on the status listener: Prometheus text, summed over all workers, surviving reloads. */
let gw: RunningGateway;
let up: TestUpstream;

beforeAll(async () => {
  up = await startUpstream(echoHandler);
  const address = up.address;
  gw = await startGateway(() => ({
    shared_dicts: { cache: '1m' },
    upstreams: { echo: { targets: [{ address }] } },
    routes: [
      { name: 'ping', paths: ['= /ping'], return: { status: 200, body: 'pong' } },
      { name: 'api', paths: ['/api/'], upstream: 'echo' },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await up?.close();
});

async function scrape(): Promise<Map<string, number>> {
  const res = await request(`http://127.0.0.1:${gw.statusPort}/metrics`);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of (await res.body.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/**
 * A worker counts a request when the response's 'close' event reaches it,
 * which can trail the client's receipt of the last byte on a loaded machine:
 * scrape again (briefly) until the sample the test waits for has arrived.
 */
async function scrapeUntil(sample: string, value: number): Promise<Map<string, number>> {
  for (let i = 0; ; i++) {
    const m = await scrape();
    if (m.get(sample) === value || i === 50) return m;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const hit = async (path: string, n: number): Promise<void> => {
  for (let i = 0; i < n; i++) {
    const res = await request(gw.url(path), { reset: true });
    await res.body.dump();
  }
};

test('requests by route and status class, latency histograms, health, dicts, reloads; counts never go backwards', async () => {
  await hit('/ping', 7);
  await hit('/api/x', 5);
  await hit('/nowhere', 3);
  const m = await scrapeUntil('sluice_http_requests_total{route="(none)",status="4xx"}', 3);
  expect(m.get('sluice_http_requests_total{route="ping",status="2xx"}')).toBe(7);
  expect(m.get('sluice_http_requests_total{route="api",status="2xx"}')).toBe(5);
  expect(m.get('sluice_http_requests_total{route="(none)",status="4xx"}')).toBe(3);
  expect(m.get('sluice_request_duration_seconds_count{route="ping"}')).toBe(7);
  expect(m.get('sluice_request_duration_seconds_bucket{route="ping",le="+Inf"}')).toBe(7);
  expect(m.get('sluice_upstream_duration_seconds_count{route="api"}')).toBe(5);
  expect(m.get('sluice_upstream_duration_seconds_count{route="ping"}')).toBe(0);
  expect(m.get(`sluice_upstream_target_healthy{upstream="echo",target="${up.address}"}`)).toBe(1);
  expect(m.get('sluice_shared_dict_capacity_bytes{dict="cache"}')).toBeGreaterThan(0);
  expect(m.get('sluice_workers{state="running"}')).toBe(2);
  expect(m.get('sluice_worker_restarts_total')).toBe(0);
  expect(m.get('sluice_reloads_total{result="ok"}')).toBe(0);

  const statusBefore = await gw.status();
  expect(statusBefore.connections.accepted).toBeGreaterThanOrEqual(15);
  await gw.reload();
  await hit('/ping', 2);
  const after = await scrapeUntil('sluice_http_requests_total{route="ping",status="2xx"}', 9);
  expect(after.get('sluice_http_requests_total{route="ping",status="2xx"}')).toBe(9);
  expect(after.get('sluice_http_requests_total{route="api",status="2xx"}')).toBe(5);
  expect(after.get('sluice_reloads_total{result="ok"}')).toBe(1);
  // The retired generation's connections stay counted (they were reset to 0 on reload).
  expect(after.get('sluice_connections_accepted_total')).toBeGreaterThanOrEqual(m.get('sluice_connections_accepted_total')! + 2);
  const statusAfter = await gw.status();
  expect(statusAfter.connections.accepted).toBeGreaterThanOrEqual(statusBefore.connections.accepted + 2);
  expect(statusAfter.connections.handled).toBeGreaterThanOrEqual(statusBefore.connections.handled);
  expect(statusAfter.requests_total).toBeGreaterThanOrEqual(statusBefore.requests_total + 2);
});
