import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../helpers/free-port.ts';
import { ROOT } from '../helpers/gateway.ts';

/*
 * Upgrade in place: the master keeps running the code it started with while each new
 * worker loads the code on disk. Here the gateway runs from a copy of the project; the
 * copy's shared-dict layout is edited while it runs, as an upgrade would, and reloaded:
 * the zone must come back empty with a warning naming it, never misread by the new
 * workers; a reload with the layout unchanged keeps the data (lifecycle.test.ts too).
 */

let proc: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc!.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  proc = undefined;
  dir = undefined;
});

test('a zone whose layout changed on disk is recreated empty at reload, with a warning naming it', async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upgrade-'));
  const app = join(dir, 'app');
  for (const part of ['bin', 'src', 'package.json', 'test/fixtures/plugins']) cpSync(join(ROOT, part), join(app, part), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const statusPort = await freePort();
  const confFile = join(dir, 'sluice.yaml');
  writeFileSync(
    confFile,
    stringify({
      worker_processes: 2,
      error_log: { path: 'stderr', level: 'info' },
      access_log: { path: 'off' },
      pid: join(dir, 'logs/sluice.pid'),
      plugin_paths: [join(app, 'test/fixtures/plugins')],
      shared_dicts: { probe: '1m' },
      server: { listen: [`127.0.0.1:${port}`] },
      status: { listen: `127.0.0.1:${statusPort}` },
      routes: [{ name: 'probe', paths: ['/'], plugins: { 'lifecycle-probe': {} }, return: { status: 200, body: 'ok' } }],
    }),
  );

  proc = spawn(join(app, 'bin/sluice'), ['-c', confFile, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((resolve) => proc!.once('exit', () => resolve()));
  const seen = (text: string, from: number): number => err.slice(from).split(text).length - 1;
  const waitFor = async (text: string, from = 0, times = 1): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (seen(text, from) < times) {
      if (proc!.exitCode !== null || Date.now() > deadline) throw new Error(`no "${text}" in:\n${err}`);
      await Promise.race([new Promise((r) => setTimeout(r, 20)), exited]);
    }
  };
  const count = async (): Promise<string> => {
    const res = await request(`http://127.0.0.1:${port}/count`, { reset: true });
    return res.body.text();
  };
  const reload = async (generation: number): Promise<void> => {
    const mark = err.length;
    proc!.kill('SIGHUP');
    await waitFor(`"generation":${generation},"msg":"reload complete`, mark);
    // Only the new generation listens once the old one's two workers have exited.
    await waitFor('"msg":"worker exited"', mark, 2);
  };

  await waitFor('"msg":"sluice started"');
  for (let i = 1; i <= 3; i++) expect(await count()).toBe(`${i}\n`);

  // A reload with the code unchanged keeps the zone.
  await reload(2);
  expect(await count()).toBe('4\n');

  // The upgrade: one more item field moves every offset after it.
  const layout = join(app, 'src/shdict/layout.ts');
  const before = readFileSync(layout, 'utf8');
  expect(before).toContain("['stamp', i32],");
  writeFileSync(layout, before.replace("['stamp', i32],", "['stamp', i32],\n  ['upgrade', i32],"));
  const mark = err.length;
  await reload(3);
  expect(err.slice(mark)).toMatch(/"zone":"probe".*shared dict \\"probe\\" was written with another memory layout.*recreated empty/);
  expect(await count()).toBe('1\n');
  expect(await count()).toBe('2\n');
  const status = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { shared_dicts: Record<string, { keys: number }> };
  expect(status.shared_dicts['probe']!.keys).toBe(1);
  expect(err).not.toMatch(/SHDICT_ERR|reload failed/);
}, 90_000);
