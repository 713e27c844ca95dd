import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { PidFileLockedError, isPidFileLocked, lockPidFile, writePidFile } from '../../../src/master/pid-file.ts';

const held: Server[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const s of held.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-pid-'));
  dirs.push(d);
  return d;
};
const lock = async (path: string): Promise<Server> => {
  const s = await lockPidFile(path);
  held.push(s);
  return s;
};

test('one holder per pid file; the error names the file and the pid in it; closing frees it', async () => {
  const pidFile = join(tmp(), 'logs/sluice.pid');
  const first = await lock(pidFile);
  writePidFile(pidFile);
  expect(await isPidFileLocked(pidFile)).toBe(true);
  const second = lockPidFile(pidFile);
  await expect(second).rejects.toBeInstanceOf(PidFileLockedError);
  await expect(second).rejects.toThrow(`another master is running with pid file ${pidFile} (pid ${process.pid})`);
  first.close();
  expect(await isPidFileLocked(pidFile)).toBe(false);
  await lock(pidFile);
});

test('the same file through a symlinked directory is the same lock; another file is another lock', async () => {
  const dir = tmp();
  mkdirSync(join(dir, 'run'));
  symlinkSync(join(dir, 'run'), join(dir, 'var-run'));
  await lock(join(dir, 'run/sluice.pid'));
  await expect(lockPidFile(join(dir, 'var-run/sluice.pid'))).rejects.toBeInstanceOf(PidFileLockedError);
  await lock(join(dir, 'run/other.pid'));
});

test('concurrent attempts: exactly one wins', async () => {
  const pidFile = join(tmp(), 'sluice.pid');
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => lockPidFile(pidFile)));
  const won = results.filter((r) => r.status === 'fulfilled');
  for (const r of won) held.push(r.value);
  expect(won).toHaveLength(1);
});
