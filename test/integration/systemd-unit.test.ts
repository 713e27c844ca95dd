import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ROOT } from '../helpers/gateway.ts';

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
  expect(UNIT).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  expect(UNIT).toMatch(/^KillSignal=SIGQUIT$/m);
  expect(UNIT).toMatch(/^Restart=on-failure$/m);
  expect(UNIT).toMatch(/^ExecStartPre=.* -t /m);
  for (const key of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'LimitNOFILE=']) expect(UNIT).toContain(key);
  expect(UNIT).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
});
