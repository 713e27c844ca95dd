import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway, StatusDoc } from '../helpers/gateway.ts';
import { freePort } from '../helpers/free-port.ts';
import { runSluice } from '../helpers/run-sluice.ts';

/** `bin/sluice` as an operator runs it. */
const sluice = (args: readonly string[], cwd = ROOT) => runSluice(args, { cwd });

const FIXTURES = join(ROOT, 'test/fixtures/cli');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const tmpDirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  tmpDirs.push(d);
  return d;
};
const gateways: RunningGateway[] = [];

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

// Plain CLI runs are independent: run them side by side (each is a Node start-up).
describe.concurrent('-v and usage', () => {
  test.each([['-v'], ['--version']])('%s prints the version and exits 0', async (flag) => {
    const r = await sluice([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`sluice version: ${VERSION}\n`);
  });

  test.each([['-h'], ['--help']])('%s prints the usage, which lists -h, --help, -v and --version, and exits 0', async (flag) => {
    const r = await sluice([flag]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.startsWith('usage: sluice [-c FILE] [-p PREFIX] [-t | -T] [-s reload|reopen|quit|stop] [-v]\n')).toBe(true);
    expect(r.stdout).toMatch(/^ {2}-v, --version {2}/m);
    expect(r.stdout).toMatch(/^ {2}-h, --help {5}/m);
  });

  test.each([['-x'], ['extra-positional'], ['-c']])('%s exits 2 with the usage', async (...args) => {
    const r = await sluice(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage: sluice [-c FILE] [-p PREFIX] [-t | -T] [-s reload|reopen|quit|stop] [-v]');
    expect(r.stdout).toBe('');
  });

  test('-s with an unknown signal exits 2 and names it', async () => {
    const r = await sluice(['-s', 'restart', '-c', join(FIXTURES, 'ok/sluice.yaml'), '-p', tmp()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sluice: invalid signal "restart"');
    expect(r.stderr).toContain('usage: sluice');
  });
});

describe.concurrent('-t', () => {
  test('a valid conf (with an include) exits 0 and says so', async () => {
    const file = join(FIXTURES, 'ok/sluice.yaml');
    const r = await sluice(['-t', '-c', file, '-p', tmp()]);
    expect(r.stderr).toBe(
      `sluice: the configuration file ${file} syntax is ok\nsluice: configuration file ${file} test is successful\n`,
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  test('-c is relative to -p, and defaults to conf/sluice.yaml under it', async () => {
    expect((await sluice(['-t', '-c', 'ok/sluice.yaml', '-p', FIXTURES])).code).toBe(0);
    const prefix = tmp();
    mkdirSync(join(prefix, 'conf'));
    writeFileSync(join(prefix, 'conf/sluice.yaml'), readFileSync(join(FIXTURES, 'yaml-syntax.yaml')));
    const r = await sluice(['-t', '-p', prefix]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(prefix, 'conf/sluice.yaml')}:4:1: `);
  });

  test('a broken conf: every error as file:line:col: path: message, included files too, exit 1', async () => {
    const file = join(FIXTURES, 'broken/sluice.yaml');
    const included = join(FIXTURES, 'broken/conf.d/10-extra.yaml');
    const r = await sluice(['-t', '-c', file, '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      `${file}:3:1: colour: unknown key "colour"`,
      `${file}:6:22: server.keepalive_timeout: invalid duration "5 minutes": expected a number and a unit (ms, s, m, h, d) at "5 minutes"`,
      `${file}:13:15: routes[0].upstream: upstream "nowhere" is not defined`,
      `${file}:15:13: routes[1].paths[0]: bad regex: Invalid regular expression: /^/(unclosed/: Unterminated group`,
      `${file}:17:11: routes[2].name: duplicate route name "api" (first defined at ${file}:11)`,
      `${included}:4:19: upstreams.extra.read_timeout: invalid duration "soon": expected a number and a unit (ms, s, m, h, d) at "soon"`,
      `sluice: configuration file ${file} test failed`,
      '',
    ]);
  });

  test('a YAML syntax error, at its position, exit 1', async () => {
    const file = join(FIXTURES, 'yaml-syntax.yaml');
    const r = await sluice(['-t', '-c', file, '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')).toEqual([
      `${file}:4:1: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      `sluice: configuration file ${file} test failed`,
      '',
    ]);
  });

  test('plugin confs are checked by the master: unknown plugins and bad options at their position', async () => {
    const dir = tmp();
    const file = join(dir, 'plugins.yaml');
    writeFileSync(file, [
      'plugins:',
      '  no-such-plugin: {}',
      'routes:',
      '  - name: r',
      '    paths: ["/"]',
      '    return: { status: 200 }',
      '    plugins:',
      '      ip-restriction: { allow: ["10.0.0.0/33"] }',
      '',
    ].join('\n'));
    const r = await sluice(['-t', '-c', file, '-p', dir]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`${file}:2:3: plugins.no-such-plugin: unknown plugin "no-such-plugin"`);
    expect(lines[1]).toMatch(new RegExp(`^${file}:8:33: routes\\[0\\]\\.plugins\\.ip-restriction\\.allow\\[0\\]: `));
  });

  test('a missing conf file is an error at 1:1, exit 1', async () => {
    const prefix = tmp();
    const r = await sluice(['-t', '-c', 'absent.yaml', '-p', prefix]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${join(prefix, 'absent.yaml')}:1:1: cannot read conf file: ENOENT`));
  });

  test('a broken conf without -t does not start either', async () => {
    const file = join(FIXTURES, 'broken/sluice.yaml');
    const r = await sluice(['-c', file, '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:3:1: colour: unknown key "colour"`);
  });
});

describe.concurrent('-T', () => {
  test('prints the conf as written: includes merged, defaults filled in their units, relative paths kept', async () => {
    const file = join(FIXTURES, 'ok/sluice.yaml');
    const r = await sluice(['-T', '-c', file, '-p', tmp()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('test is successful');
    expect(r.stdout.startsWith(`# ${file} with its includes merged and every default filled in\n`)).toBe(true);
    expect(r.stdout).toContain('  keepalive_timeout: 75s\n');
    const conf = parse(r.stdout) as Record<string, any>;
    expect(conf.include).toBeUndefined();
    expect(conf.worker_processes).toBe(1);
    expect(conf.worker_shutdown_timeout).toBe('10s');
    expect(conf.pid).toBe('logs/sluice.pid');
    expect(conf.access_log).toEqual({ path: 'logs/access.log', buffer: 0, flush: '1s' });
    expect(conf.error_log).toEqual({ path: 'stderr', level: 'info' });
    expect(conf.server).toEqual({
      listen: ['127.0.0.1:8080'],
      client_max_body_size: '1m',
      client_header_timeout: '60s',
      client_body_timeout: '60s',
      keepalive_timeout: '75s',
      real_ip: null,
      tls: { certificates: [], protocols: ['TLSv1.2', 'TLSv1.3'], ciphers: null, session_cache: '10m', session_tickets: true, session_ticket_rotation: '12h' },
    });
    expect(conf.status).toEqual({ listen: '127.0.0.1:9145' });
    expect(conf.upstreams.echo).toMatchObject({ algorithm: 'round-robin', keepalive: 64, connect_timeout: '5s', retries: 1, targets: ['127.0.0.1:9001'] });
    // From conf.d/10-extra.yaml.
    expect(conf.upstreams.extra).toMatchObject({ read_timeout: '2m', targets: [{ address: '127.0.0.1:9002', weight: 3 }] });
    expect(conf.routes.map((route: { name: string }) => route.name)).toEqual(['echo', 'ping', 'extra']);
    expect(conf.routes[1]).toMatchObject({ return: { status: 200, body: 'pong\n', headers: {} }, strip_path: false });
  });

  // The shipped conf and the valid fixtures: what -T prints is a conf that -t accepts.
  test.each([
    ['conf/sluice.yaml', ROOT],
    ['test/fixtures/cli/ok/sluice.yaml', null],
    ['test/fixtures/conf/minimal/sluice.yaml', null],
    ['test/fixtures/conf/plugins-ok/sluice.yaml', null],
    ['test/fixtures/conf/full/sluice.yaml', null],
  ])('-T of %s passes -t', async (rel, prefixOrNull) => {
    let prefix = prefixOrNull;
    if (prefix === null) {
      prefix = tmp();
      mkdirSync(join(prefix, 'plugins')); // full/sluice.yaml's plugin_paths
    }
    const dumped = await sluice(['-T', '-c', join(ROOT, rel), '-p', prefix]);
    expect(dumped.code).toBe(0);
    const file = join(tmp(), 'dumped.yaml');
    writeFileSync(file, dumped.stdout);
    const r = await sluice(['-t', '-c', file, '-p', prefix]);
    expect(r.stderr).toBe(`sluice: the configuration file ${file} syntax is ok\nsluice: configuration file ${file} test is successful\n`);
    expect(r.code).toBe(0);
  });

  test('-T on a broken conf prints no conf, only the errors', async () => {
    const r = await sluice(['-T', '-c', join(FIXTURES, 'broken/sluice.yaml'), '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('unknown key "colour"');
  });
});

describe('-s', () => {
  const start = async (): Promise<RunningGateway> => {
    const gw = await startGateway(() => ({
      worker_processes: 1,
      access_log: { path: 'off' },
      routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200, body: 'pong\n' } }],
    }));
    gateways.push(gw);
    return gw;
  };

  test('reload, then stop: the master exits 0 and removes its pid file', async () => {
    const gw = await start();
    const pidFile = join(gw.dir, 'logs/sluice.pid');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(gw.proc.pid));

    const reloaded = gw.waitForLog('"msg":"reload complete', true);
    const reload = await sluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'reload']);
    expect(reload).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await reloaded;
    expect((await gw.status()).generation).toBe(2);

    const stop = await sluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'stop']);
    expect(stop.code).toBe(0);
    expect(await gw.exited()).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
    expect(gw.stderr()).toContain('"msg":"fast stop"');
  });

  test('from any directory, -c and -p find the pid file: absolute, or -c relative to -p', async () => {
    const gw = await start();
    const elsewhere = tmp();
    const reloaded = gw.waitForLog('"generation":3,"msg":"reload complete', true);
    expect(await sluice(['-s', 'reload', '-c', gw.confFile, '-p', gw.dir], elsewhere)).toMatchObject({ code: 0, stderr: '' });
    expect(await sluice(['-s', 'reload', '-c', 'sluice.yaml', '-p', gw.dir], elsewhere)).toMatchObject({ code: 0, stderr: '' });
    await reloaded;
  });

  test('without them, it says which pid file it looked for and how it got that path', async () => {
    const gw = await start();
    const elsewhere = tmp();
    const pidFile = join(elsewhere, 'logs/sluice.pid');
    const bare = await sluice(['-s', 'reload'], elsewhere);
    expect(bare.code).toBe(1);
    expect(bare.stderr.split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^sluice: cannot signal the master \\(${pidFile}\\): ENOENT`)),
      `sluice: looked for the default pid file (${join(elsewhere, 'conf/sluice.yaml')} does not load), relative paths under the prefix ${elsewhere}; pass the -c and -p the master was started with`,
      '',
    ]);
    // The right conf with the wrong prefix: the conf's relative pid path lands under that prefix.
    const wrongPrefix = await sluice(['-s', 'reload', '-c', gw.confFile], elsewhere);
    expect(wrongPrefix.code).toBe(1);
    expect(wrongPrefix.stderr).toContain(`sluice: looked for the pid file named by ${gw.confFile}, relative paths under the prefix ${elsewhere}; pass the -c and -p the master was started with\n`);
    expect((await gw.status()).generation).toBe(1);
  });

  test("a reload moves the master's own settings: the status listener, the pid file and the error log", async () => {
    const gw = await start();
    const edit = (change: (conf: Record<string, any>) => void): void => {
      const conf = parse(readFileSync(gw.confFile, 'utf8')) as Record<string, any>;
      change(conf);
      writeFileSync(gw.confFile, stringify(conf));
    };
    const oldPid = join(gw.dir, 'logs/sluice.pid');
    const newPid = join(gw.dir, 'logs/moved.pid');
    const statusPort = await freePort();
    edit((conf) => {
      conf.status = { listen: `127.0.0.1:${statusPort}` };
      conf.pid = 'logs/moved.pid';
    });
    const reloaded = gw.waitForLog('"generation":2,"msg":"reload complete', true);
    expect((await sluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'reload'])).code).toBe(1); // -s reads the new pid path: nobody holds it yet
    gw.signal('SIGHUP');
    await reloaded;
    const doc = await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json() as StatusDoc;
    expect(doc.reloads).toMatchObject({ ok: 1, failed: 0 });
    await expect(fetch(`http://127.0.0.1:${gw.statusPort}/status`)).rejects.toThrow();
    expect(existsSync(oldPid)).toBe(false);
    expect(readFileSync(newPid, 'utf8').trim()).toBe(String(gw.proc.pid));
    // The moved pid file is locked: a second master on this conf refuses to start beside the first.
    const second = await sluice(['-c', gw.confFile, '-p', gw.dir], ROOT);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('another master is running with pid file');

    const logFile = join(gw.dir, 'logs/master.log');
    const logged = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    const count = (text: string, what: string): number => text.split(what).length - 1;
    const generation = async (): Promise<number> => ((await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as StatusDoc).generation;
    edit((conf) => {
      conf.error_log = { path: 'logs/master.log', level: 'info' };
    });
    gw.signal('SIGHUP');
    // The reload's own last line is the first in the new file.
    await expect.poll(logged, { timeout: 10_000 }).toContain('"generation":3,"msg":"reload complete');
    expect(gw.stderr()).not.toContain('"generation":3,"msg":"reload complete');

    edit((conf) => {
      conf.error_log.level = 'warn';
    });
    gw.signal('SIGHUP');
    await expect.poll(generation, { timeout: 10_000 }).toBe(4);
    writeFileSync(gw.confFile, 'worker_processes: [\n');
    gw.signal('SIGHUP');
    await expect.poll(logged, { timeout: 10_000 }).toContain('"msg":"reload failed; still serving the previous conf"');
    // At warn, the last reload's info lines are gone: only the one before it, still at info, said "reload requested".
    expect(count(logged(), '"msg":"reload requested"')).toBe(1);
    expect(logged()).not.toContain('"generation":4,"msg":"reload complete');
  });

  test('quit works even when the conf on disk no longer validates (default pid path)', async () => {
    const gw = await start();
    const pidFile = join(gw.dir, 'logs/sluice.pid');
    writeFileSync(gw.confFile, 'worker_processes: [\n');
    const quit = await sluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'quit']);
    expect(quit.code).toBe(0);
    expect(await gw.exited()).toBe(0);
    expect(gw.stderr()).toContain('"msg":"graceful stop"');
    expect(existsSync(pidFile)).toBe(false);
  });
});

// With error_log on stderr (the shipped default), `sluice -s reopen` (SIGUSR1, what logrotate's postrotate
// sends) once killed the master: SonicBoom cannot reopen a file descriptor (config/logger.ts now skips it).
describe('-s reopen', () => {
  test('reopen with error_log on stderr keeps the gateway running', async () => {
    const gw = await startGateway(() => ({
      worker_processes: 1,
      access_log: { path: 'off' },
      routes: [{ name: 'ping', paths: ['= /ping'], return: { status: 200, body: 'pong\n' } }],
    }));
    gateways.push(gw);
    const reopened = gw.waitForLog('"msg":"log files reopened"', true);
    expect((await sluice(['-c', gw.confFile, '-p', gw.dir, '-s', 'reopen'])).code).toBe(0);
    await reopened;
    expect((await fetch(gw.url('/ping'))).status).toBe(200);
    expect(gw.proc.exitCode).toBeNull();
  });
});

describe.concurrent('-s without a running master', () => {
  test('no pid file: exit 1 with a message naming the pid file', async () => {
    const prefix = tmp();
    const r = await sluice(['-c', join(FIXTURES, 'ok/sluice.yaml'), '-p', prefix, '-s', 'stop']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^sluice: cannot signal the master \\(${join(prefix, 'logs/sluice.pid')}\\): .*ENOENT`));
  });

  test('a stale pid file (the master is gone): exit 1', async () => {
    const prefix = tmp();
    // A pid that certainly belonged to a process that has exited.
    const dead = spawn(process.execPath, ['-e', '']);
    const deadPid = dead.pid!;
    await new Promise((resolve) => dead.once('exit', resolve));
    mkdirSync(join(prefix, 'logs'));
    writeFileSync(join(prefix, 'logs/sluice.pid'), `${deadPid}\n`);
    const r = await sluice(['-c', join(FIXTURES, 'ok/sluice.yaml'), '-p', prefix, '-s', 'reload']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`sluice: cannot signal the master (${join(prefix, 'logs/sluice.pid')}): no master is running (the file names pid ${deadPid}`);
  });

  test('a pid file with garbage: exit 1', async () => {
    const prefix = tmp();
    mkdirSync(join(prefix, 'logs'));
    writeFileSync(join(prefix, 'logs/sluice.pid'), 'not a pid\n');
    const r = await sluice(['-c', join(FIXTURES, 'ok/sluice.yaml'), '-p', prefix, '-s', 'stop']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no valid pid in file');
  });
});

describe.concurrent('-t checks what plugins refer to', () => {
  test('consumer credentials against their auth plugin, and shared dicts named by plugins', async () => {
    const dir = tmp();
    const file = join(dir, 'refs.yaml');
    writeFileSync(file, [
      'consumers:',
      '  - username: alice',
      '    credentials:',
      '      key-auth: [ { kee: "typo" } ]',
      '      no-such-auth: [ {} ]',
      'routes:',
      '  - name: r',
      '    paths: ["/"]',
      '    return: { status: 200 }',
      '    plugins:',
      '      rate-limiting: { limits: [ { by: ip, second: 1 } ], dict: missing_zone }',
      '',
    ].join('\n'));
    const r = await sluice(['-t', '-c', file, '-p', dir]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines).toContain(`${file}:5:7: consumers[0].credentials.no-such-auth: no plugin "no-such-auth" takes consumer credentials`);
    expect(lines).toContain(`${file}:4:19: consumers[0].credentials.key-auth[0]: missing required key "key"`);
    expect(lines).toContain(`${file}:4:21: consumers[0].credentials.key-auth[0].kee: unknown key "kee"`);
    expect(lines).toContain(`${file}:11:65: routes[0].plugins.rate-limiting.dict: shared dict "missing_zone" is not declared in shared_dicts`);
  });

  test('core, reference, plugin and credential faults all in one run', async () => {
    const file = join(FIXTURES, 'every-fault/sluice.yaml');
    const r = await sluice(['-t', '-c', file, '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')).toEqual([
      `${file}:5:22: server.keepalive_timeout: must be a duration such as 500ms, 10s, 5m or 1h`,
      `${file}:9:19: consumers[0].credentials.key-auth[0]: missing required key "key"`,
      `${file}:9:21: consumers[0].credentials.key-auth[0].kee: unknown key "kee"`,
      `${file}:13:15: routes[0].upstream: upstream "nowhere" is not defined`,
      `${file}:15:65: routes[0].plugins.rate-limiting.dict: shared dict "missing_zone" is not declared in shared_dicts`,
      `${file}:16:33: routes[0].plugins.ip-restriction.allow[0]: invalid IP or CIDR "10.0.0.0/33"`,
      `sluice: configuration file ${file} test failed`,
      '',
    ]);
  });

  test('a defaulted shared dict a plugin would open, at the plugin, only where the plugin opens it', async () => {
    // forward-auth opens cache_dict (default sluice_cache) only with a cache_ttl: the second route's conf is fine.
    const file = join(FIXTURES, 'dict-default/sluice.yaml');
    const r = await sluice(['-t', '-c', file, '-p', tmp()]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')).toEqual([
      `${file}:10:7: routes[0].plugins.forward-auth.cache_dict: shared dict "sluice_cache" is not declared in shared_dicts`,
      `sluice: configuration file ${file} test failed`,
      '',
    ]);
  });
});
