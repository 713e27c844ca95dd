import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Syslog servers for tests: on 127.0.0.1, UDP (a message per datagram) or TCP
 * with RFC 6587 octet counting (`LEN SP MSG`, back to back); on a unix
 * datagram socket, a real rsyslogd (`startRsyslogd`).
 */
export interface SyslogServer {
  /** The plugin's `server` option for it. */
  readonly url: string;
  readonly messages: string[];
  /** Resolves once `n` messages arrived; fails after `ms` saying how many are missing. */
  has(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSyslogServer(kind: 'udp' | 'tcp'): Promise<SyslogServer> {
  const messages: string[] = [];
  const waiters = new Set<{ n: number; done: () => void }>();
  const push = (m: string): void => {
    messages.push(m);
    for (const w of waiters) if (messages.length >= w.n) w.done();
  };
  const has = (n: number, ms = 5_000): Promise<void> => {
    if (messages.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { n, done: () => { clearTimeout(timer); waiters.delete(w); resolve(); } };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`syslog entries missing: ${messages.length} of ${n} arrived`));
      }, ms);
      waiters.add(w);
    });
  };

  if (kind === 'udp') {
    const udp = createSocket('udp4');
    udp.on('message', (m) => push(m.toString()));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    return { url: `udp://127.0.0.1:${(udp.address() as AddressInfo).port}`, messages, has, close: () => new Promise((r) => udp.close(r)) };
  }

  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp === -1) return;
        const end = sp + 1 + Number(buf.subarray(0, sp).toString());
        if (buf.length < end) return;
        push(buf.subarray(sp + 1, end).toString());
        buf = buf.subarray(end);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    messages,
    has,
    close: () => new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** What rsyslogd made of one message, by its property names. */
export interface RsyslogRecord {
  readonly programname: string;
  readonly appName: string;
  readonly procid: string;
  readonly pri: number;
  /** The message after the header, as rsyslog keeps it (with the space that followed the tag). */
  readonly msg: string;
}

export interface LocalSyslog {
  /** The unix datagram socket rsyslogd's imuxsock reads, as /dev/log would be. */
  readonly socketPath: string;
  readonly pid: number;
  records(): RsyslogRecord[];
  /** Resolves once `n` records were written; fails after `ms` saying how many are missing. */
  has(n: number, ms?: number): Promise<void>;
  /** SIGSTOP / SIGCONT: a daemon that stopped reading its socket. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

const RSYSLOGD = '/usr/sbin/rsyslogd';

/** Why the tests against a real rsyslogd cannot run here, or null when they can. */
export function rsyslogdMissing(): string | null {
  if (!existsSync(RSYSLOGD)) return `${RSYSLOGD} not found (Debian package rsyslog): the unix:// syslog tests against rsyslogd are skipped`;
  if (spawnSync('logger', ['--version'], { stdio: 'ignore' }).status !== 0) return 'util-linux logger not found: the unix:// syslog tests are skipped';
  return null;
}

/**
 * A real rsyslogd in the foreground with its own conf in a temp dir: imuxsock
 * (the module behind /dev/log, with its defaults) on its own socket, rate
 * limiting off, and a template that writes the parsed programname, app-name,
 * procid, PRI and msg of every message, tab-separated, to a file read back.
 */
export async function startRsyslogd(): Promise<LocalSyslog> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rsyslog-'));
  const socketPath = join(dir, 'log');
  const out = join(dir, 'out.log');
  writeFileSync(join(dir, 'rsyslog.conf'), [
    `global(workDirectory="${dir}")`,
    'module(load="imuxsock" SysSock.Use="off")',
    `input(type="imuxsock" Socket="${socketPath}" RateLimit.Interval="0")`,
    String.raw`template(name="fields" type="string" string="%programname%\t%app-name%\t%procid%\t%pri%\t%msg%\n")`,
    `*.* action(type="omfile" file="${out}" template="fields")`,
    '',
  ].join('\n'));
  const proc = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => { stderr += c; });
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));

  // Every change in the dir (the socket bound, the output file written) re-checks the waits.
  const checks = new Set<() => void>();
  const watcher = watch(dir, () => { for (const c of checks) c(); });
  const until = (ok: () => boolean, ms: number, what: () => string): Promise<void> => {
    if (ok()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ok()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${what()}\nrsyslogd stderr: ${stderr}`)); }, ms);
      const cleanup = (): void => { clearTimeout(timer); checks.delete(check); };
      checks.add(check);
      void exited.then(() => { cleanup(); reject(new Error(`rsyslogd exited: ${stderr}`)); });
    });
  };
  const records = (): RsyslogRecord[] => {
    if (!existsSync(out)) return [];
    return readFileSync(out, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
      const [programname, appName, procid, pri, ...msg] = l.split('\t');
      return { programname: programname!, appName: appName!, procid: procid!, pri: Number(pri), msg: msg.join('\t') };
    });
  };

  await until(() => existsSync(socketPath), 10_000, () => `rsyslogd did not create ${socketPath}`);
  return {
    socketPath,
    pid: proc.pid!,
    records,
    has: (n, ms = 5_000) => until(() => records().length >= n, ms, () => `syslog entries missing: ${records().length} of ${n} arrived`),
    pause: () => { proc.kill('SIGSTOP'); },
    resume: () => { proc.kill('SIGCONT'); },
    close: async () => {
      watcher.close();
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A process as /proc shows it: state `Z` is a zombie (exited, not reaped by its parent). */
export interface ProcessInfo {
  readonly pid: number;
  readonly state: string;
  readonly comm: string;
}

/** The live children of `parent`, zombies included, read from /proc (what `ps --ppid` shows). */
export function childrenOf(parent: number): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while listed
    }
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    const [state, ppid] = stat.slice(close + 2).split(' ');
    if (Number(ppid) === parent) out.push({ pid: Number(name), state: state!, comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return out;
}
