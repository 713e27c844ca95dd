import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import { freePort } from '../helpers/free-port.ts';
import { ROOT, SLUICE, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { runSluice } from '../helpers/run-sluice.ts';

/*
 * The operator faults of "Hardening, round 2": a start that fails half way (7), two masters
 * on one pid file (8), the deploy steps of the README (13), and bin/sluice on a host without
 * Node 24 (14). Every case runs the real bin/sluice.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-ops-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

const gateway = async (...args: Parameters<typeof startGateway>): Promise<RunningGateway> => {
  const gw = await startGateway(...args);
  cleanups.push(() => gw.stop());
  return gw;
};

/** A plain listener (no SO_REUSEPORT), so a worker's reusePort bind on the same port fails. */
const occupy = async (port: number): Promise<Server> => {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return srv;
};

const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.once('connect', () => { s.destroy(); resolve(false); });
  s.once('error', () => resolve(true));
});

const pingConf = (port: number, statusPort: number, dir: string, extra: Record<string, unknown> = {}): string => {
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, stringify({
    worker_processes: 2,
    error_log: { path: 'stderr', level: 'info' },
    access_log: { path: 'off' },
    server: { listen: [`127.0.0.1:${port}`] },
    status: { listen: `127.0.0.1:${statusPort}` },
    routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200, body: 'pong\n' } }],
    ...extra,
  }));
  return file;
};

/** The master's "start failed" line, as the master's clock saw it. */
const failedAt = (stderr: string): number => {
  const line = stderr.split('\n').find((l) => l.includes('"msg":"start failed; stopping"'));
  expect(line, stderr).toBeDefined();
  return Date.parse((JSON.parse(line!) as { time: string }).time);
};

describe('a start that fails stops everything (item 7)', () => {
  test('status.listen on a busy port: exit 1 within a second, the reason on stderr, no worker left serving', async () => {
    const dir = tmp();
    const port = await freePort();
    const statusPort = await freePort();
    await occupy(statusPort);
    const r = await runSluice(['-c', pingConf(port, statusPort, dir), '-p', dir], { timeoutMs: 15_000 });
    const exitedAt = Date.now();
    expect(r.timedOut, r.stderr).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('sluice: could not start: status.listen: listen EADDRINUSE');
    expect(exitedAt - failedAt(r.stderr)).toBeLessThan(1000);
    expect(await refused(port)).toBe(true);
    expect(existsSync(join(dir, 'logs/sluice.pid'))).toBe(false);
  });

  test('the main port held by another program: workers fail, the status listener and the health probes stop, exit 1', async () => {
    const dir = tmp();
    const port = await freePort();
    const statusPort = await freePort();
    await occupy(port);
    const deadTarget = `127.0.0.1:${await freePort()}`;
    const conf = pingConf(port, statusPort, dir, {
      upstreams: { u: { targets: [deadTarget], healthcheck: { active: { path: '/', interval: '100ms', timeout: '100ms' } } } },
      routes: [{ name: 'u', paths: ['/'], upstream: 'u' }],
    });
    const r = await runSluice(['-c', conf, '-p', dir], { timeoutMs: 15_000 });
    const exitedAt = Date.now();
    expect(r.timedOut, r.stderr).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sluice: could not start: worker \d+ could not listen: .*EADDRINUSE/);
    expect(exitedAt - failedAt(r.stderr)).toBeLessThan(1000);
    expect(await refused(statusPort)).toBe(true);
  });
});

describe('one master per pid file (item 8)', () => {
  test('a second master on the same conf exits 1 naming the running one; the first keeps serving and -s reaches it', async () => {
    const gw = await gateway(() => ({ worker_processes: 1, access_log: { path: 'off' }, routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200 } }] }));
    const pidFile = join(gw.dir, 'logs/sluice.pid');
    const second = await runSluice(['-c', gw.confFile, '-p', gw.dir], { timeoutMs: 15_000 });
    expect(second.timedOut, second.stderr).toBe(false);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`sluice: could not start: another master is running with pid file ${pidFile} (pid ${gw.proc.pid})`);
    // No worker of the second master ever started: nothing shared the port.
    expect(second.stderr).not.toContain('"msg":"worker exited"');
    expect(readFileSync(pidFile, 'utf8')).toBe(`${gw.proc.pid}\n`);
    const reloaded = gw.waitForLog('"generation":2,"msg":"reload complete', true);
    expect(await runSluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'reload'])).toMatchObject({ code: 0, stderr: '' });
    await reloaded;
    await gw.settled();
    expect((await gw.status()).workers).toHaveLength(1);
  });

  test('two masters started at the same moment: exactly one serves, the other exits 1', async () => {
    const dir = tmp();
    const conf = pingConf(await freePort(), await freePort(), dir, { worker_processes: 1 });
    const masters = [0, 1].map(() => spawn(SLUICE, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] }));
    for (const m of masters) cleanups.push(() => stopProc(m));
    const outcomes = await Promise.all(masters.map((m) => logged(m, '"msg":"sluice started"').then(() => 'serving', () => `exit ${m.exitCode}`)));
    expect(outcomes.sort()).toEqual(['exit 1', 'serving']);
  });

  test('a pid file left by kill -9 does not block the next start', async () => {
    const gw = await gateway(() => ({ worker_processes: 1, access_log: { path: 'off' }, routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200 } }] }));
    const pidFile = join(gw.dir, 'logs/sluice.pid');
    gw.signal('SIGKILL');
    await gw.exited();
    expect(readFileSync(pidFile, 'utf8')).toBe(`${gw.proc.pid}\n`); // stale
    const next = spawn(SLUICE, ['-c', gw.confFile, '-p', gw.dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => stopProc(next));
    await logged(next, '"msg":"sluice started"');
    expect(readFileSync(pidFile, 'utf8')).toBe(`${next.pid}\n`);
    expect((await fetch(gw.url('/ping'))).status).toBe(200);
  });

  test('a pid file naming a live process that is no master (a reused pid): -s refuses to signal it, a start goes ahead', async () => {
    const dir = tmp();
    const bystander = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
    cleanups.push(() => stopProc(bystander));
    const port = await freePort();
    const conf = pingConf(port, await freePort(), dir, { worker_processes: 1 });
    const pidFile = join(dir, 'logs/sluice.pid');
    mkdirSync(join(dir, 'logs'));
    writeFileSync(pidFile, `${bystander.pid}\n`);

    const stop = await runSluice(['-c', conf, '-p', dir, '-s', 'stop']);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toContain(`sluice: cannot signal the master (${pidFile}): no master is running (the file names pid ${bystander.pid}`);
    expect(bystander.exitCode).toBeNull();
    expect(bystander.signalCode).toBeNull();

    const master = spawn(SLUICE, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => stopProc(master));
    await logged(master, '"msg":"sluice started"');
    expect(readFileSync(pidFile, 'utf8')).toBe(`${master.pid}\n`);
    expect(bystander.exitCode).toBeNull();
  });
});

describe('the README deploy steps (item 13)', () => {
  const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const UNIT = readFileSync(join(ROOT, 'deploy/sluice.service'), 'utf8');

  test('conf in /etc/sluice, code in /opt/sluice, the unit\'s command lines: the shipped /assets/ route serves public/', async () => {
    const root = tmp();
    const at = (p: string): string => join(root, p);
    // sudo git clone … /opt/sluice && npm ci (node_modules shared with this checkout)
    for (const part of ['bin', 'src', 'conf', 'public', 'package.json']) cpSync(join(ROOT, part), at(`opt/sluice/${part}`), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), at('opt/sluice/node_modules'));
    // sudo install -d /etc/sluice && sudo cp -r conf/* /etc/sluice/
    cpSync(at('opt/sluice/conf'), at('etc/sluice'), { recursive: true });
    // RuntimeDirectory= and LogsDirectory= of the unit
    mkdirSync(at('run/sluice'), { recursive: true });
    mkdirSync(at('var/log/sluice'), { recursive: true });
    const chroot = (text: string): string => text.replace(/(?<![\w/])\/(opt|etc|run|var)\/(sluice|log\/sluice)\b/g, (m) => join(root, m));

    // The README's edit of the shipped conf, run as written (paths moved under the temporary root).
    const sed = README.split('\n').find((l) => l.startsWith('sudo sed -i '));
    expect(sed).toBeDefined();
    const edited = spawnSync('sh', ['-c', chroot(sed!.replace(/^sudo /, ''))], { encoding: 'utf8' });
    expect(edited.status, edited.stderr).toBe(0);
    // "then edit …: listen addresses": ports free on this host.
    const confFile = at('etc/sluice/sluice.yaml');
    const doc = parseDocument(readFileSync(confFile, 'utf8'));
    const port = await freePort();
    const statusPort = await freePort();
    doc.setIn(['server', 'listen'], [`127.0.0.1:${port}`]);
    doc.setIn(['status', 'listen'], `127.0.0.1:${statusPort}`);
    doc.set('worker_processes', 1);
    writeFileSync(confFile, doc.toString());
    expect(doc.get('pid')).toBe(at('run/sluice/sluice.pid'));

    const command = (key: string): string[] => {
      const lines = UNIT.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => chroot(l.slice(key.length + 1)).split(/\s+/));
      expect(lines).toHaveLength(1);
      return lines[0]!;
    };
    // systemd starts the unit in /.
    const [pre, ...preArgs] = command('ExecStartPre');
    expect(await runSluice(preArgs, { bin: pre!, cwd: '/' })).toMatchObject({ code: 0 });
    const [bin, ...args] = command('ExecStart');
    const master = spawn(bin!, args, { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => stopProc(master));
    await logged(master, '"msg":"sluice started"');

    const assets = await fetch(`http://127.0.0.1:${port}/assets/`);
    expect(assets.status).toBe(200);
    expect(await assets.text()).toBe(readFileSync(join(ROOT, 'public/index.html'), 'utf8'));
    expect(readFileSync(at('run/sluice/sluice.pid'), 'utf8')).toBe(`${master.pid}\n`);

    // The README's `-s reload` by hand, from another directory.
    const reloaded = logged(master, '"generation":2,"msg":"reload complete');
    const reload = await runSluice(['-s', 'reload', '-c', confFile, '-p', at('opt/sluice')], { bin: bin!, cwd: tmp() });
    expect(reload).toMatchObject({ code: 0, stderr: '' });
    await reloaded;
  });
});

describe('bin/sluice without Node >= 24 (item 14)', () => {
  // bin/sluice in a checkout without node_modules, and a PATH holding only what it needs.
  const layout = (node: string | null): { bin: string; env: NodeJS.ProcessEnv } => {
    const dir = tmp();
    cpSync(join(ROOT, 'bin'), join(dir, 'app/bin'), { recursive: true });
    mkdirSync(join(dir, 'path'));
    symlinkSync(spawnSync('sh', ['-c', 'command -v readlink'], { encoding: 'utf8' }).stdout.trim(), join(dir, 'path/readlink'));
    if (node !== null) {
      writeFileSync(join(dir, 'path/node'), `#!/bin/sh\n[ "$1" = --version ] && echo ${node} && exit 0\necho "a stack trace" >&2; exit 1\n`, { mode: 0o755 });
    }
    return { bin: join(dir, 'app/bin/sluice'), env: { PATH: join(dir, 'path') } };
  };

  test.each([['v20.20.2'], ['v24.18.0'], [null]])('node on PATH %s: one line saying what is needed and how to get it, exit 1', async (node) => {
    const { bin, env } = layout(node);
    const r = await runSluice(['-t'], { bin, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const found = node === null ? 'no node' : `${node} at ${env.PATH}/node`;
    expect(r.stderr).toBe(`sluice: needs Node.js >= 24.18.1, found ${found}; run \`npm ci\` in ${join(bin, '../..')} to install it beside the project\n`);
  });

  test('its minimum is package.json\'s engines', () => {
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(readFileSync(SLUICE, 'utf8')).toContain(`\nmin=v${engines.replace(/^>=/, '')}\n`);
  });
});

function logged(proc: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    const onData = (c: Buffer): void => {
      err += c.toString('utf8');
      if (err.includes(text)) {
        proc.stderr!.off('data', onData);
        resolve();
      }
    };
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`exited (${code}) before "${text}":\n${err}`)));
  });
}

async function stopProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}
