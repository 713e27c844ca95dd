import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from './free-port.ts';

/**
 * Starts the real `bin/sluice` (master + worker threads) on a conf written to
 * a fresh prefix directory, with free ports for the gateway and the status
 * listener. Ready means the master logged "sluice started", which it does only
 * once every worker listens.
 */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SLUICE = join(ROOT, 'bin/sluice');

export interface RunningGateway {
  readonly proc: ChildProcess;
  readonly dir: string;
  readonly port: number;
  readonly statusPort: number;
  readonly confFile: string;
  readonly url: (path: string) => string;
  /** Everything the master and workers wrote to stderr so far. */
  readonly stderr: () => string;
  status(): Promise<StatusDoc>;
  /** Resolves when stderr has a line containing `text` (after the current position when `fresh`). */
  waitForLog(text: string, fresh?: boolean | number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  /**
   * Resolves once only the live generation's workers remain. Until then a new
   * connection may land in the accept queue of a draining worker's listener,
   * which the kernel resets when tcp_migrate_req is 0 (most hosts): tests that
   * reload and then connect wait for this first.
   */
  settled(): Promise<void>;
  /** SIGHUP, wait for the reload to complete and the old generation to exit. */
  reload(): Promise<void>;
  exited(): Promise<number | null>;
  stop(): Promise<void>;
}

export interface StatusDoc {
  generation: number;
  requests_total: number;
  connections: { active: number; accepted: number; handled: number };
  workers: { id: number; thread_id: number; generation: number; state: string; requests: number }[];
  reloads: { ok: number; failed: number; last_error: string | null };
  shared_dicts: Record<string, { capacity: number; free_space: number; keys: number }>;
  upstreams: Record<string, Record<string, 'healthy' | 'unhealthy'>>;
  [k: string]: unknown;
}

export type ConfBuilder = (ports: { port: number; statusPort: number; dir: string }) => Record<string, unknown>;

export interface StartOptions {
  /** The master's environment; default: the test's. */
  readonly env?: NodeJS.ProcessEnv;
}

export async function startGateway(build: ConfBuilder, files: Record<string, string> = {}, opts: StartOptions = {}): Promise<RunningGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const port = await freePort();
  const statusPort = await freePort();
  const conf: Record<string, unknown> = {
    worker_processes: 2,
    error_log: { path: 'stderr', level: 'info' },
    access_log: { path: 'logs/access.log' },
    ...build({ port, statusPort, dir }),
  };
  conf.server = { listen: [`127.0.0.1:${port}`], ...(conf.server as object | undefined) };
  conf.status = { listen: `127.0.0.1:${statusPort}` };
  const confFile = join(dir, 'sluice.yaml');
  writeFileSync(confFile, stringify(conf));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);

  const proc = spawn(SLUICE, ['-c', confFile, '-p', dir], { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const waiters: { text: string; from: number; resolve: () => void }[] = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    err += chunk;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (err.indexOf(w.text, w.from) !== -1) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  });
  proc.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const waitForLog = (text: string, fresh: boolean | number = false): Promise<void> => {
    const from = typeof fresh === 'number' ? fresh : fresh ? err.length : 0;
    if (err.indexOf(text, from) !== -1) return Promise.resolve();
    return new Promise((resolve, reject) => {
      waiters.push({ text, from, resolve });
      void exit.then((code) => reject(new Error(`sluice exited (${code}) before logging "${text}":\n${err}`)));
    });
  };

  await waitForLog('"msg":"sluice started"');
  const status = async (): Promise<StatusDoc> => (await fetch(`http://127.0.0.1:${statusPort}/status`)).json() as Promise<StatusDoc>;
  const isSettled = (s: StatusDoc): boolean => s.workers.every((w) => w.generation === s.generation);
  const settled = async (): Promise<void> => {
    for (;;) {
      const mark = err.length; // an exit logged after this point wakes the wait below
      if (isSettled(await status())) return;
      await waitForLog('"msg":"worker exited"', mark);
    }
  };
  const gw: RunningGateway = {
    proc, dir, port, statusPort, confFile,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    stderr: () => err,
    status,
    waitForLog,
    signal: (sig) => proc.kill(sig),
    settled,
    reload: async () => {
      const { generation } = await status();
      proc.kill('SIGHUP');
      await waitForLog(`"generation":${generation + 1},"msg":"reload complete`);
      await settled();
    },
    exited: () => exit,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exit;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return gw;
}
