import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ROOT, SLUICE, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';

/**
 * deploy/sluice.service passes `systemd-analyze verify` (where the command
 * exists) with its ExecStart pointed at this checkout, since verify insists
 * that the binaries exist; and it keeps the lifecycle promises of DESIGN.md §3.
 */
const UNIT = readFileSync(join(ROOT, 'deploy/sluice.service'), 'utf8');
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

test.skipIf(!hasAnalyze)('systemd-analyze verify accepts the unit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-unit-'));
  try {
    const unit = join(dir, 'sluice.service');
    writeFileSync(unit, UNIT.replaceAll('/opt/sluice', ROOT.replace(/\/$/, '')));
    const out = execFileSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the unit reloads with HUP, stops gracefully, restarts on failure and is hardened', () => {
  expect(UNIT).toMatch(/^Type=exec$/m);
  expect(UNIT).toMatch(/^ExecReload=\/opt\/sluice\/bin\/sluice -t -c \/etc\/sluice\/sluice.yaml -p \/opt\/sluice\nExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  expect(UNIT).toMatch(/^KillSignal=SIGQUIT$/m);
  expect(UNIT).toMatch(/^Restart=on-failure$/m);
  expect(UNIT).toMatch(/^ExecStartPre=.* -t /m);
  for (const key of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'LimitNOFILE=']) expect(UNIT).toContain(key);
  // The master's single-instance lock is a unix socket (src/master/pid-file.ts).
  expect(UNIT).toMatch(/^RestrictAddressFamilies=.*\bAF_UNIX\b/m);
  expect(UNIT).not.toMatch(/^PrivateNetwork=yes/m);
  expect(UNIT).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
});

let gw: RunningGateway | undefined;
afterAll(async () => {
  await gw?.stop();
});

/**
 * `systemctl reload` as systemd runs it: each ExecReload= line in order, with $MAINPID
 * substituted; the first that fails fails the reload, and the lines after it do not run.
 */
async function systemctlReload(mainPid: number, confFile: string, prefix: string): Promise<{ code: number; stderr: string }> {
  const lines = UNIT.split('\n').filter((l) => l.startsWith('ExecReload=')).map((l) => l.slice('ExecReload='.length));
  let stderr = '';
  for (const line of lines) {
    const [bin, ...args] = line
      .replaceAll('/opt/sluice/bin/sluice', SLUICE)
      .replaceAll('/etc/sluice/sluice.yaml', confFile)
      .replaceAll('/opt/sluice', prefix)
      .replaceAll('$MAINPID', String(mainPid))
      .split(/\s+/);
    const code = await new Promise<number>((resolve, reject) => {
      const proc = spawn(bin!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      proc.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
      proc.once('error', reject);
      proc.once('close', (c) => resolve(c ?? 1));
    });
    if (code !== 0) return { code, stderr };
  }
  return { code: 0, stderr };
}

test('systemctl reload tests the conf first: a broken conf fails the reload with its errors, and no HUP is sent', async () => {
  gw = await startGateway(() => ({ worker_processes: 1, access_log: { path: 'off' }, routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200 } }] }));
  const g = gw;
  const reloaded = g.waitForLog('"generation":2,"msg":"reload complete', true);
  expect(await systemctlReload(g.proc.pid!, g.confFile, g.dir)).toMatchObject({ code: 0 });
  await reloaded;

  writeFileSync(g.confFile, readFileSync(g.confFile, 'utf8').replace('worker_processes: 1', 'worker_processes: many'));
  const broken = await systemctlReload(g.proc.pid!, g.confFile, g.dir);
  expect(broken.code).toBe(1);
  expect(broken.stderr).toMatch(new RegExp(`^${g.confFile}:\\d+:\\d+: worker_processes: `, 'm'));
  expect(broken.stderr).toContain(`sluice: configuration file ${g.confFile} test failed`);
  // The master never saw a HUP: nothing was attempted, nothing counted as failed.
  const status = await g.status();
  expect(status.reloads).toMatchObject({ ok: 1, failed: 0 });
  expect(status.generation).toBe(2);
  expect(g.stderr()).not.toContain('reload failed');
});
