import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ROOT } from '../helpers/gateway.ts';

/**
 * 20 SIGHUP reloads alternating two confs under load on keep-alive and fresh
 * connections: zero failed requests, and every answer comes from conf A or B.
 * Run inside a network namespace made for the test (`unshare -rn`) so that
 * net.ipv4.tcp_migrate_req=1 can be set there: without it the kernel resets
 * connections queued on a listener that closes (reliability.md §1).
 */
const DRIVER = join(ROOT, 'test/fixtures/lifecycle/reload-under-load.ts');
const NODE = process.execPath;

function canUnshare(): boolean {
  try {
    execFileSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && echo 1 > /proc/sys/net/ipv4/tcp_migrate_req'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (c: string) => { out += c; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`driver exited ${code}: ${out}`))));
  });
}

test('20 reloads under load lose no request', async () => {
  const isolated = canUnshare();
  let hostMigrate = '0';
  try { hostMigrate = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim(); } catch { /* not Linux */ }
  if (!isolated) {
    console.warn(`reload test: cannot create a network namespace here (unshare -rn failed); running on the host network with tcp_migrate_req=${hostMigrate}`);
  }
  const out = isolated
    ? await run('unshare', ['-rn', 'sh', '-c', `ip link set lo up && echo 1 > /proc/sys/net/ipv4/tcp_migrate_req && exec "${NODE}" "${DRIVER}"`])
    : await run(NODE, [DRIVER]);
  const result = JSON.parse(out.trim().split('\n').pop()!) as {
    ok: number; failures: Record<string, number>; seen: Record<string, number>; reloadsDone: number;
    status: { reloads: { ok: number; failed: number }; generation: number }; tcp_migrate_req: string;
  };
  expect(result.reloadsDone).toBe(20);
  expect(result.status.reloads).toMatchObject({ ok: 20, failed: 0 });
  expect(result.status.generation).toBe(21);
  expect(Object.keys(result.seen).sort()).toEqual(['A', 'B']);
  expect(result.ok).toBeGreaterThan(1000);
  if (result.tcp_migrate_req === '1') {
    expect(result.failures).toEqual({});
  } else {
    // Without migration only fresh connections queued on a closing listener may be reset; keep-alive never.
    expect(Object.keys(result.failures).filter((k) => k.startsWith('keepalive'))).toEqual([]);
  }
}, 120_000);
