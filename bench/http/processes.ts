import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/**
 * Child processes of the bench and their cleanup. Every process and temp dir
 * is registered here the moment it exists, and one handler ends them all on a
 * normal exit, on Ctrl-C / SIGTERM, and on an uncaught error, so a failed run
 * never leaves a gateway or an nginx holding ports.
 */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping\n`);
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});

export function tempDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** stdout and stderr so far, for error messages and readiness lines. */
  output(): string;
  /** Calls `fn` with every whole line of output from now on, as it arrives. */
  onLine(fn: (line: string) => void): void;
  /** Resolves when the output has a line containing `text`; rejects if the process exits first or after `ms`. */
  waitFor(text: string, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/** `taskset -c CPUS` when asked for and available: the only pinning tool assumed. Threads and children inherit it. */
export function pinned(cmd: string, args: readonly string[], cpus: string | null): [string, string[]] {
  return cpus !== null && onPath('taskset') !== null ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, [...args]];
}

export function start(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  let out = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => {
    children.delete(proc);
    resolve();
  }));
  const waiters: { text: string; resolve: (line: string) => void }[] = [];
  const lineFns: ((line: string) => void)[] = [];
  let lineFrom = 0;
  const onData = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    for (let end = out.indexOf('\n', lineFrom); end !== -1; end = out.indexOf('\n', lineFrom)) {
      const line = out.slice(lineFrom, end);
      lineFrom = end + 1;
      for (const fn of lineFns) fn(line);
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      const at = out.indexOf(w.text);
      if (at === -1) continue;
      waiters.splice(i, 1);
      const end = out.indexOf('\n', at);
      w.resolve(out.slice(out.lastIndexOf('\n', at) + 1, end === -1 ? undefined : end));
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const spawnError = new Promise<never>((_, reject) => proc.once('error', reject));
  spawnError.catch(() => {});
  return {
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    onLine: (fn) => lineFns.push(fn),
    waitFor(text, ms = 15_000) {
      return Promise.race([
        spawnError,
        new Promise<string>((resolve, reject) => {
          waiters.push({ text, resolve });
          const timer = setTimeout(() => reject(new Error(`${cmd}: no "${text}" after ${ms} ms:\n${out}`)), ms);
          void exited.then(() => reject(new Error(`${cmd} exited (${proc.exitCode ?? proc.signalCode}) before "${text}":\n${out}`)));
          timer.unref();
        }),
      ]);
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function onPath(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0));
    });
  });
}

export function commandOutput(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error !== undefined ? '' : `${r.stdout}${r.stderr}`.trim();
}

/**
 * CPU time (user + system, seconds) from /proc: `of[i]` for each root process
 * and its descendants (Sluice's worker threads are in its own counters, nginx's
 * workers are children), and `others`: what the machine's tasks spent that
 * neither the first root's tree nor a kernel thread did (loopback traffic's
 * softirq work lands in ksoftirqd: it is ours, not a neighbour's). `others`
 * comes from the machine's counters, not from adding up the processes this
 * one can see: on a shared box the neighbours may live in another PID
 * namespace, and a process that exits takes its counters with it. Null where
 * /proc is missing.
 */
const TICK = 100; // USER_HZ, 100 on every Linux ABI Node supports
const KTHREADD = 2;

/**
 * The machine's CPU ticks from /proc/stat: `busy`, all but idle and iowait;
 * `tasks`, what processes took (user, nice, system) and what the hypervisor
 * gave other guests (steal), without interrupt handling, which the bench's own
 * loopback traffic causes. Null off Linux.
 */
function machineTicks(): { busy: number; tasks: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number): number => f[i] ?? 0;
    return { busy: f.reduce((a, b) => a + b, 0) - at(3) - at(4), tasks: at(0) + at(1) + at(2) + at(7) };
  } catch {
    return null;
  }
}

/** CPU-seconds the whole machine spent busy so far (null off Linux). */
export function machineBusy(): number | null {
  const m = machineTicks();
  return m === null ? null : m.busy / TICK;
}

export function cpuSeconds(roots: readonly number[]): { of: (number | null)[]; others: number | null } | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const machine = machineTicks();
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // Fields after the parenthesised command name: state ppid … utime(14) stime(15) cutime(16) cstime(17): the
    // last two are children it has reaped, such as the one-second wrk runs of wrk.ts, gone before any sample.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parent.set(pid, Number(f[1]));
    ticks.set(pid, Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
  }
  const of: (number | null)[] = roots.map((r) => (ticks.has(r) ? 0 : null));
  let ours = 0;
  for (const [pid, t] of ticks) {
    let mine = false;
    for (let p: number | undefined = pid; p !== undefined && p > 0; p = parent.get(p)) {
      const i = roots.indexOf(p);
      if (i !== -1) of[i]! += t;
      if (p === roots[0] || p === KTHREADD) mine = true;
    }
    if (mine) ours += t;
  }
  return { of: of.map((t) => (t === null ? null : t / TICK)), others: machine === null ? null : (machine.tasks - ours) / TICK };
}
