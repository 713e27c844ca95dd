import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { basename, dirname, join } from 'node:path';

/*
 * nginx's pid file (written once the master serves, read by `sluice -s`,
 * removed on exit) and the lock that allows one master per pid file.
 *
 * The lock is a unix socket in Linux's abstract namespace, named after the
 * pid file's real path. The kernel frees it when the holder dies, however it
 * dies (kill -9 included), so a stale pid file never blocks a start and a
 * reused pid never passes for a live master; binding is atomic, so two masters
 * started at once cannot both win. A lock file (O_EXCL plus a liveness check)
 * has neither property: its stale-file takeover races, and `kill(pid, 0)`
 * believes whatever process now has the pid. The price: the name lives in the
 * network namespace, and any local user there could bind it first.
 */

/** Written once the master serves, so `-s` never signals a master without its handlers. */
export function writePidFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${process.pid}\n`);
}

export function readPidFile(path: string): number {
  const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${path}: no valid pid in file`);
  return pid;
}

/** Removes the file only if it is still ours: a newer master may have replaced it. */
export function removePidFile(path: string): void {
  try {
    if (readPidFile(path) === process.pid) rmSync(path);
  } catch {
    // already gone
  }
}

/** The same pid file reached through a symlinked directory gets the same lock. */
function lockName(pidFile: string): string {
  let dir = dirname(pidFile);
  try {
    dir = realpathSync(dir);
  } catch {
    // not created yet: nobody can hold it under another spelling
  }
  const digest = createHash('sha256').update(join(dir, basename(pidFile))).digest('hex').slice(0, 32);
  return `\0sluice-master-${digest}`;
}

export class PidFileLockedError extends Error {}

/**
 * Takes the pid file's lock, held until `close()` or the process's end.
 * Rejects with PidFileLockedError when another master holds it.
 */
export function lockPidFile(pidFile: string): Promise<Server> {
  mkdirSync(dirname(pidFile), { recursive: true });
  // Nothing is ever said on the socket: a connection (`sluice -s` checking the lock) is closed at once.
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') {
        reject(err);
        return;
      }
      let holder = '';
      try {
        holder = ` (pid ${readPidFile(pidFile)})`;
      } catch {
        // the other master is still starting and has not written it yet
      }
      reject(new PidFileLockedError(`another master is running with pid file ${pidFile}${holder}; signal it with -s, or give this one its own pid file`));
    });
    server.listen({ path: lockName(pidFile) }, () => {
      server.unref(); // the lock must not keep the process alive
      resolve(server);
    });
  });
}

/** Whether a live master holds the pid file's lock (what `sluice -s` checks before it signals). */
export function isPidFileLocked(pidFile: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: lockName(pidFile) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve(false);
      else reject(err);
    });
  });
}
