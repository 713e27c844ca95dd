import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { ROOT, startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';
import { workerHeapLimitMb } from '../../src/master/worker-heap.ts';

const ROOT_FIXTURES = join(ROOT, 'test/fixtures');

/** Signals to the real master: HUP with a broken conf, QUIT, TERM, USR1, and many reloads. */
let gw: RunningGateway | undefined;
let up: TestUpstream | undefined;

afterEach(async () => {
  await gw?.stop();
  await up?.close();
  gw = undefined;
  up = undefined;
});

const body = async (url: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> => {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
};

const pongConf = (text: string) => () => ({
  routes: [{ name: 'which', paths: ['= /which'], return: { status: 200, body: text } }],
});

describe('reload (HUP)', () => {
  test('a broken conf is refused, counted, and the old conf keeps serving', async () => {
    gw = await startGateway(pongConf('old'));
    writeFileSync(gw.confFile, 'routes: [ { name: broken, paths: ["/x"], upstream: nowhere } ]\nserver: { listen: [ nope ] }\n');
    gw.signal('SIGHUP');
    await gw.waitForLog('"msg":"reload failed');
    expect(await body(gw.url('/which'))).toMatchObject({ status: 200, text: 'old' });
    const status = await gw.status();
    expect(status.reloads.ok).toBe(0);
    expect(status.reloads.failed).toBe(1);
    expect(status.reloads.last_error).toMatch(/sluice\.yaml:\d+:\d+: /);
    expect(status.generation).toBe(1);
  });

  test('a listen address that cannot be bound fails the reload and leaves the old workers serving', async () => {
    const blocker = await startUpstream((_q, r) => r.end()); // holds a port without SO_REUSEPORT
    gw = await startGateway(pongConf('old'));
    const conf = readFileSync(gw.confFile, 'utf8').replace('listen:\n', `listen:\n    - 127.0.0.1:${blocker.port}\n`);
    writeFileSync(gw.confFile, conf.replace('body: old', 'body: new'));
    gw.signal('SIGHUP');
    await gw.waitForLog('"msg":"reload failed');
    expect((await gw.status()).reloads.last_error).toMatch(/EADDRINUSE/);
    expect(await body(gw.url('/which'))).toMatchObject({ text: 'old' });
    await blocker.close();
  });

  test('reloads arriving during a reload are coalesced into one more pass; the last conf on disk wins', async () => {
    gw = await startGateway(pongConf('v0'));
    const g = gw;
    const setBody = (text: string): void => writeFileSync(g.confFile, readFileSync(g.confFile, 'utf8').replace(/body: v\w+/, `body: ${text}`));
    setBody('v1');
    g.signal('SIGHUP');
    await g.waitForLog('"msg":"reload requested"');
    // Three more while the first is starting its workers, each after the conf changed again.
    for (const text of ['v2', 'v3', 'vlast']) {
      setBody(text);
      g.signal('SIGHUP');
    }
    await g.waitForLog('"generation":3,"msg":"reload complete');
    await g.settled();
    const status = await g.status();
    expect(status.reloads.ok).toBe(2);
    expect(status.generation).toBe(3);
    expect(await body(g.url('/which'))).toMatchObject({ text: 'vlast' });
  });

  test.skipIf(!existsSync('/proc/sys/net/ipv4/tcp_migrate_req'))('the master warns at start when tcp_migrate_req is 0', async () => {
    gw = await startGateway(pongConf('x'));
    const value = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
    const warned = gw.stderr().includes('tcp_migrate_req is 0');
    expect(warned).toBe(value === '0');
  });

  test('a good conf starts a new generation and the old workers exit', async () => {
    gw = await startGateway(pongConf('one'));
    const first = await gw.status();
    writeFileSync(gw.confFile, readFileSync(gw.confFile, 'utf8').replace('body: one', 'body: two'));
    gw.signal('SIGHUP');
    await gw.waitForLog('"msg":"reload complete');
    const oldIds = first.workers.map((w) => w.id);
    for (const id of oldIds) await gw.waitForLog(`"worker":${id},"generation":1,"code":0,"msg":"worker exited"`);
    expect(await body(gw.url('/which'))).toMatchObject({ text: 'two' });
    const status = await gw.status();
    expect(status.generation).toBe(2);
    expect(status.workers.map((w) => w.generation)).toEqual([2, 2]);
    // Each worker is a thread of its own, numbered by Node (worker_threads' threadId), new threads for the new generation.
    const threads = status.workers.map((w) => w.thread_id);
    expect(new Set([...threads, ...first.workers.map((w) => w.thread_id)]).size).toBe(4);
    for (const t of threads) expect(t).toBeGreaterThan(0);
    expect(status.reloads).toMatchObject({ ok: 1, failed: 0 });
  });
});

describe('stop and logs', () => {
  test('QUIT lets a slow in-flight request finish with Connection: close, then exits 0 and removes the pid file', async () => {
    let arrived!: () => void;
    const atUpstream = new Promise<void>((resolve) => { arrived = resolve; });
    up = await startUpstream((_req, res) => {
      arrived();
      setTimeout(() => res.end('slow but complete'), 400);
    });
    const address = up.address;
    gw = await startGateway(() => ({
      upstreams: { slow: { targets: [{ address }] } },
      routes: [{ name: 'slow', paths: ['/slow'], upstream: 'slow' }],
    }));
    const pidFile = join(gw.dir, 'logs/sluice.pid');
    expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(gw.proc.pid));
    const pending = body(gw.url('/slow'));
    await atUpstream;
    gw.signal('SIGQUIT');
    const res = await pending;
    expect(res).toMatchObject({ status: 200, text: 'slow but complete' });
    expect(res.headers['connection']).toBe('close');
    expect(await gw.exited()).toBe(0);
    expect(existsSync(pidFile)).toBe(false);
  });

  test('TERM stops at once, even with a request hanging on the upstream', async () => {
    let arrived!: () => void;
    const atUpstream = new Promise<void>((resolve) => { arrived = resolve; });
    up = await startUpstream(() => arrived());
    const address = up.address;
    gw = await startGateway(() => ({
      worker_shutdown_timeout: '30s',
      upstreams: { hang: { targets: [{ address }] } },
      routes: [{ name: 'hang', paths: ['/hang'], upstream: 'hang' }],
    }));
    const pending = request(gw.url('/hang')).catch((err: unknown) => err);
    await atUpstream;
    const t0 = performance.now();
    gw.signal('SIGTERM');
    expect(await gw.exited()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(await pending).toBeInstanceOf(Error);
  });

  test('USR1 reopens the access log after logrotate renamed it', async () => {
    gw = await startGateway(pongConf('x'));
    await body(gw.url('/which'));
    const log = join(gw.dir, 'logs/access.log');
    renameSync(log, `${log}.1`);
    gw.signal('SIGUSR1');
    await gw.waitForLog('"msg":"log files reopened"');
    // Each worker reopens on its own message; wait until a request's line lands in the new file.
    let text = '';
    for (let i = 0; i < 200 && !text.includes('"path":"/which"'); i++) {
      await body(gw.url('/which'));
      text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    }
    expect(text).toContain('"path":"/which"');
  });
});

describe('access log buffer (nginx buffer= flush=)', () => {
  const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"path":"/which"')) : []);

  test('lines wait in the buffer, and a graceful stop writes every one', async () => {
    gw = await startGateway(() => ({ ...pongConf('x')(), access_log: { path: 'logs/access.log', buffer: '64k', flush: '1h' } }));
    const log = join(gw.dir, 'logs/access.log');
    for (let i = 0; i < 20; i++) expect((await body(gw.url('/which'))).status).toBe(200);
    // 20 lines are far below 64k and the flush interval is an hour: nothing has been written yet.
    expect(lines(log)).toHaveLength(0);
    gw.signal('SIGQUIT');
    expect(await gw.exited()).toBe(0);
    expect(lines(log)).toHaveLength(20);
  });

  test('the flush interval writes buffered lines without more traffic', async () => {
    gw = await startGateway(() => ({ ...pongConf('x')(), access_log: { path: 'logs/access.log', buffer: '64k', flush: '100ms' } }));
    const log = join(gw.dir, 'logs/access.log');
    for (let i = 0; i < 3; i++) await body(gw.url('/which'));
    for (let waited = 0; lines(log).length < 3 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect(lines(log)).toHaveLength(3);
  });
});

describe('many reloads', () => {
  const procStatus = (pid: number, field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

  test.skipIf(!existsSync('/proc/self/status'))('after 50 reloads the thread count and memory are back at their baseline', async () => {
    gw = await startGateway(() => ({ worker_processes: 1, worker_shutdown_timeout: '2s', ...pongConf('v0')() }));
    const g = gw;
    const pid = g.proc.pid!;
    const reload = async (n: number): Promise<void> => {
      writeFileSync(g.confFile, readFileSync(g.confFile, 'utf8').replace(/body: v\d+/, `body: v${n}`));
      g.signal('SIGHUP');
      await g.waitForLog(`"generation":${n + 1},"msg":"reload complete`);
      // The retired generation's worker has exited: nothing is left over from this reload.
      await g.waitForLog(`"generation":${n},"code":0,"msg":"worker exited"`);
    };
    // Baseline after a few reloads, so lazily created runtime threads and caches already exist.
    for (let n = 1; n <= 5; n++) await reload(n);
    const threads0 = procStatus(pid, 'Threads');
    const rss0 = procStatus(pid, 'VmRSS') * 1024;
    for (let n = 6; n <= 55; n++) await reload(n);
    expect(procStatus(pid, 'Threads')).toBe(threads0);
    // Each retired worker's heap must be released: allow noise, not 50 workers' worth (~10 MB each).
    expect(procStatus(pid, 'VmRSS') * 1024).toBeLessThan(rss0 + 60 * 1024 * 1024);
    expect(await body(g.url('/which'))).toMatchObject({ text: 'v55' });
    expect((await g.status()).workers).toHaveLength(1);
  }, 120_000);
});

describe('workers and zones', () => {
  const probeConf = (body: string) => ({ dir }: { dir: string }) => ({
    plugin_paths: [join(ROOT_FIXTURES, 'plugins')],
    shared_dicts: { probe: '1m' },
    routes: [{ name: 'probe', paths: ['/'], plugins: { 'lifecycle-probe': {} }, return: { status: 200, body } }],
    pid: join(dir, 'logs/sluice.pid'),
  });

  test('a worker that crashes is replaced and the other never stops serving', async () => {
    gw = await startGateway(probeConf('ok'));
    const before = await gw.status();
    const crash = await body(gw.url('/crash'));
    expect(crash.status).toBe(202);
    const crashed = Number(/crashing worker (\d+)/.exec(crash.text)![1]);
    await gw.waitForLog('"msg":"worker exited unexpectedly; starting a replacement"');
    // Meanwhile and after, fresh connections are all answered (by the survivor, then by both).
    for (let i = 0; i < 40; i++) {
      const res = await request(gw.url('/fine'), { reset: true });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    await gw.waitForLog(`"replaced":${crashed},"msg":"replacement worker listening"`);
    const after = await gw.status();
    expect(after.workers.map((w) => w.state)).toEqual(['running', 'running']);
    const ids = after.workers.map((w) => w.id);
    expect(ids).not.toContain(crashed);
    expect(ids.filter((id) => before.workers.some((w) => w.id === id))).toHaveLength(1);
  });

  test("each worker runs with the heap limit the master logged (a leaking worker ends alone, as a crash)", async () => {
    // Four workers: five shares of the memory, under V8's default on a host of less than about 30 GB.
    gw = await startGateway((ports) => ({ ...probeConf('ok')(ports), worker_processes: 4 }));
    const started = /"worker_heap_limit_mb":(\d+)/.exec(gw.stderr());
    expect(started).not.toBeNull();
    const limit = Number(started![1]);
    expect(limit).toBe(workerHeapLimitMb(4));
    // V8's heap limit is the old generation's plus the young one's, which is a few MB to a few hundred.
    const heap = Number((await body(gw.url('/heap'))).text);
    expect(heap).toBeGreaterThanOrEqual(limit);
    expect(heap).toBeLessThan(limit + 400);
  });

  test('a worker that keeps crashing is restarted with growing backoff, never in a hot loop', async () => {
    gw = await startGateway(probeConf('ok'));
    for (let i = 0; i < 3; i++) {
      const crash = await body(gw.url('/crash'));
      const crashed = Number(/crashing worker (\d+)/.exec(crash.text)![1]);
      await gw.waitForLog(`"replaced":${crashed},"msg":"replacement worker listening"`);
    }
    const delays = [...gw.stderr().matchAll(/"restartInMs":(\d+),"msg":"worker exited unexpectedly/g)].map((m) => Number(m[1]));
    expect(delays).toEqual([0, 250, 500]);
  });

  test('counters in a shared dict survive a reload; a resized zone starts empty', async () => {
    gw = await startGateway(probeConf('ok'));
    for (let i = 1; i <= 3; i++) expect((await body(gw.url('/count'))).text).toBe(`${i}\n`);
    await gw.reload();
    expect((await body(gw.url('/count'))).text).toBe('4\n');
    expect((await gw.status()).shared_dicts['probe']!.keys).toBe(1);
    writeFileSync(gw.confFile, readFileSync(gw.confFile, 'utf8').replace('probe: 1m', 'probe: 2m'));
    await gw.reload();
    expect((await body(gw.url('/count'))).text).toBe('1\n');
  });
});
