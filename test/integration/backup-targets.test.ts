import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * `backup: true` targets, with real upstreams and both workers: a backup answers
 * only while every primary is down, whether the master's prober says so (active)
 * or the workers saw it fail (passive, max_fails: 1), and the primaries get the
 * traffic back once they recover.
 */
let gw: RunningGateway;
const upstreams: TestUpstream[] = [];
/** Requests each upstream served, by name (probes not counted). */
const served: Record<string, number> = {};
let primaryProbesOk = true;
/** The passive primary resets every connection it is sent a request on. */
let passivePrimaryDown = false;

beforeAll(async () => {
  const names = ['active-primary', 'active-backup', 'passive-primary', 'passive-backup'];
  for (const name of names) {
    upstreams.push(await startUpstream((req, res) => {
      if (req.url === '/healthz') {
        res.statusCode = name === 'active-primary' && !primaryProbesOk ? 500 : 200;
        res.end();
        return;
      }
      if (name === 'passive-primary' && passivePrimaryDown) {
        req.socket.destroy();
        return;
      }
      served[name] = (served[name] ?? 0) + 1;
      res.end(name);
    }));
  }
  const [activePrimary, activeBackup, passivePrimary, passiveBackup] = upstreams.map((u) => u.address);
  gw = await startGateway(() => ({
    upstreams: {
      active: {
        targets: [{ address: activePrimary }, { address: activeBackup, backup: true }],
        healthcheck: { active: { path: '/healthz', interval: '100ms', timeout: '500ms', healthy: 2, unhealthy: 2 } },
      },
      passive: {
        targets: [{ address: passivePrimary }, { address: passiveBackup, backup: true }],
        healthcheck: { passive: { max_fails: 1, fail_timeout: '1s' } },
      },
    },
    routes: [
      { name: 'active', paths: ['/active'], upstream: 'active' },
      { name: 'passive', paths: ['/passive'], upstream: 'passive' },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all(upstreams.map((u) => u.close()));
});

/** `n` requests, each on a new connection so that both workers get some; the set of answers. */
async function answers(path: string, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await request(gw.url(path), { reset: true });
    seen.add(`${res.statusCode} ${await res.body.text()}`);
  }
  return seen;
}

/**
 * Asks until `path` is answered by `name` alone over 10 requests, at most `ms`: the primary
 * comes back when its fail_timeout is over, a time no event announces.
 */
async function until(path: string, name: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await answers(path, 10);
    if (got.size === 1 && got.has(`200 ${name}`)) return;
    if (Date.now() > deadline) throw new Error(`${path} never answered by ${name} alone; last ${[...got].join()}`);
  }
}

describe('backup targets', () => {
  test('a backup gets nothing while the primary answers', async () => {
    expect(await answers('/active', 20)).toEqual(new Set(['200 active-primary']));
    expect(await answers('/passive', 20)).toEqual(new Set(['200 passive-primary']));
    expect(served['active-backup']).toBeUndefined();
    expect(served['passive-backup']).toBeUndefined();
  });

  test('primary actively unhealthy: the backup answers everything; back to the primary when it recovers', async () => {
    primaryProbesOk = false;
    await gw.waitForLog('"msg":"upstream target marked unhealthy"');
    const before = served['active-primary'] ?? 0;
    expect(await answers('/active', 20)).toEqual(new Set(['200 active-backup']));
    expect(served['active-primary'] ?? 0).toBe(before); // never tried: the prober's word is enough

    primaryProbesOk = true;
    await gw.waitForLog('"msg":"upstream target is healthy again"');
    expect(await answers('/active', 20)).toEqual(new Set(['200 active-primary']));
  });

  test('primary failing on traffic (max_fails: 1): the backup answers, the primary is left alone, then gets its traffic back', async () => {
    passivePrimaryDown = true;
    // The first request fails on the primary (a reset, then its one extra try on a fresh connection)
    // and goes on to the backup; after that the primary is out for fail_timeout in both workers
    // (one upstream zone) and the backup is picked directly, whichever worker serves.
    const backupBefore = served['passive-backup'] ?? 0;
    expect(await answers('/passive', 20)).toEqual(new Set(['200 passive-backup']));
    expect((served['passive-backup'] ?? 0) - backupBefore).toBe(20);
    const tries = gw.stderr().split('"msg":"upstream try failed; trying again"').length - 1;
    // One request's two failed tries, not two per worker.
    expect(tries).toBe(2);

    passivePrimaryDown = false;
    await until('/passive', 'passive-primary', 5_000);
  });
});
