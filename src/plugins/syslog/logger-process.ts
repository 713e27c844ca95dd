import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { PluginEnv } from '../pdk/index.ts';
import { Backoff } from './backoff.ts';
import { APP_NAME } from './format.ts';

/**
 * How long a logger whose stdin was closed gets to send the lines it read and
 * exit before it is killed: it only fails to when the daemon stopped reading
 * its socket (logger blocks in send), and then its lines are lost anyway.
 */
export const LOGGER_EXIT_MS = 1_000;

/**
 * The longest line logger sends as one message. Its default, 1 KiB, splits a
 * longer entry (a long URL) into several messages of broken JSON; the daemon
 * applies its own limit (rsyslog's maxMessageSize, 8 KiB by default) to one.
 */
const MAX_MESSAGE = 64 * 1024;

/**
 * util-linux `logger` writing to a local syslog socket, one per worker and
 * socket path, shared by the worker's syslog instances that name that path.
 *
 * Why a child process: the local socket (`/dev/log`: journald, rsyslog's
 * imuxsock) is a unix DATAGRAM socket, and node:dgram has no unix datagrams.
 * The addons that do either must be compiled against the running Node's
 * headers and watch their socket on the main thread's loop (unix-dgram), or
 * abort the whole process when a worker thread exits with a socket open
 * (node-unix-socket); `logger` is on every Linux host (Debian's Essential
 * bsdutils) and costs the worker thread less per message than a native send
 * (measured in src/plugins/README.md).
 *
 * It reads `<PRI>message` lines on its stdin and sends each as one message in
 * the local socket format, `<PRI>TIMESTAMP sluice[PID]: MSG` with the
 * gateway's pid: what syslog(3) sends and what imuxsock and journald parse
 * (RFC 5424 or 3164 headers there come out as app-name `1` or the hostname).
 *
 * A child started by a worker thread is reaped only by that thread's event
 * loop, so it must have exited before the worker does: `stop` (the plugin's
 * dispose, after every instance has handed over its queue) closes stdin,
 * kills the logger if it has not exited within LOGGER_EXIT_MS, and resolves
 * once it is reaped. A logger that exits while the worker runs (socket
 * missing, daemon restarted) is reaped then and restarted with the stream
 * transport's backoff; stdin backpressure makes it unwritable.
 */
export class LoggerProcess {
  private child: ChildProcess | null = null;
  /** Resolves when the current child has exited and been reaped. */
  private gone: Promise<void> = Promise.resolve();
  private readonly backoff = new Backoff();
  private stopped = false;
  /** The instances' flushes, called when it may have become writable or went down. */
  private readonly listeners = new Set<() => void>();
  private readonly changed = (): void => {
    for (const l of this.listeners) l();
  };

  private readonly args: readonly string[];
  private readonly log: Logger;

  constructor(path: string, log: Logger) {
    this.args = ['--socket', path, '--socket-errors=on', '--prio-prefix', '--tag', APP_NAME, `--id=${process.pid}`, '--size', String(MAX_MESSAGE)];
    this.log = log;
  }

  listen(onChange: () => void): void {
    this.listeners.add(onChange);
  }

  unlisten(onChange: () => void): void {
    this.listeners.delete(onChange);
  }

  writable(): boolean {
    if (this.child === null && !this.backoff.waiting && !this.stopped) this.start();
    return this.child !== null && !this.child.stdin!.writableNeedDrain;
  }

  /** The logger failed (could not run, or exited) and the next one waits for its backoff. */
  down(): boolean {
    return this.backoff.waiting;
  }

  write(lines: string): void {
    this.child!.stdin!.write(lines);
  }

  /** Closes logger's stdin, kills it if it has not exited within LOGGER_EXIT_MS, and resolves once it is reaped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.backoff.cancel();
    this.listeners.clear();
    const child = this.child;
    if (child === null) return;
    child.stdin!.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, LOGGER_EXIT_MS, true); });
    const killed = await Promise.race([this.gone.then(() => false), late]);
    clearTimeout(timer);
    if (!killed) return;
    this.log.warn({ timeout_ms: LOGGER_EXIT_MS }, 'syslog: logger did not exit after its input ended (the daemon is not reading); killed');
    child.kill('SIGKILL'); // cannot be caught or blocked: the exit, and the reaping, follow at once
    await this.gone;
  }

  private start(): void {
    const child = spawn('logger', this.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    // 'close' follows the exit (or a failed spawn) once libuv has reaped the child and its pipes are closed.
    this.gone = new Promise((resolve) => child.once('close', () => resolve()));
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => { if (stderr.length < 1024) stderr += c; });
    child.stdin!.on('drain', this.changed);
    child.stdin!.on('error', () => {}); // the exit below says why
    child.once('spawn', () => {
      this.backoff.succeeded();
      this.changed();
    });
    child.once('error', (err) => {
      if (!this.backoff.quiet) this.log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'syslog: cannot run logger');
    });
    child.once('close', (code) => {
      this.child = null;
      if (this.stopped) return;
      if (!this.backoff.quiet) this.log.warn({ code, stderr: stderr.trim() }, 'syslog: logger exited');
      this.backoff.schedule(this.changed);
      this.changed(); // now down(): a disposing shipper stops waiting
    });
    // The worker's exit waits for `stop`, not for the child: an idle logger keeps no loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
  }
}

/** Per worker (env is one per plugin and worker): socket path -> its logger. */
const loggers = new WeakMap<PluginEnv, Map<string, LoggerProcess>>();

/** The worker's logger for `path`, made on first use; `stopLoggers` ends it. */
export function loggerFor(env: PluginEnv, path: string): LoggerProcess {
  let byPath = loggers.get(env);
  if (byPath === undefined) loggers.set(env, (byPath = new Map()));
  let logger = byPath.get(path);
  if (logger === undefined) byPath.set(path, (logger = new LoggerProcess(path, env.log)));
  return logger;
}

/** The plugin's dispose, after every instance's: ends the worker's loggers and resolves once all are reaped. */
export async function stopLoggers(env: PluginEnv): Promise<void> {
  const byPath = loggers.get(env);
  loggers.delete(env);
  if (byPath !== undefined) await Promise.all([...byPath.values()].map((l) => l.stop()));
}
