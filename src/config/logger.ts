import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { Logger } from 'pino';
import type { LogLevel } from './types.ts';

/**
 * Log destinations shared by master and workers. Each thread opens its own
 * O_APPEND descriptor on the same file: writes are whole buffered lines, so
 * lines from different threads never interleave. Writes are asynchronous
 * (sonic-boom), so a slow disk never stalls a reactor; `reopen()` is what USR1
 * calls after logrotate has renamed the file.
 */
export interface Destination {
  write(line: string): void;
  /** After logrotate renamed the file: open it anew. stderr/stdout have nothing to reopen. */
  reopen(): void;
  flushSync(): void;
  /** Writes what is buffered or in flight, then closes the file (never stdout/stderr), and resolves. */
  close(): Promise<void>;
}

export function openDestination(path: string): Destination {
  const isStd = path === 'stderr' || path === 'stdout';
  if (!isStd) mkdirSync(dirname(path), { recursive: true });
  const stream = pino.destination({ dest: path === 'stderr' ? 2 : path === 'stdout' ? 1 : path, sync: false });
  return {
    write: (line) => void stream.write(line),
    reopen: isStd ? () => {} : () => stream.reopen(),
    flushSync: () => {
      try {
        stream.flushSync();
      } catch {
        // not yet open (async open still pending): nothing buffered to lose
      }
    },
    close: () => new Promise<void>((resolve) => {
      stream.once('close', () => resolve());
      stream.once('error', () => resolve());
      stream.end();
    }),
  };
}

/**
 * An error log. A reload may name another file or level (nginx applies
 * error_log on reload): `use` moves both while the same logger object, which
 * the master's parts hold, keeps logging; the old file gets every line written
 * before the move, then is closed.
 */
export interface ErrorLog {
  readonly log: Logger;
  /** After logrotate renamed the file (USR1). */
  reopen(): void;
  flushSync(): void;
  use(path: string, level: LogLevel): void;
}

export function createErrorLog(path: string, level: LogLevel, bindings: Record<string, unknown>): ErrorLog {
  let open = { path, dest: openDestination(path) };
  const log = pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, {
    write: (line: string) => open.dest.write(line),
  });
  return {
    log,
    reopen: () => open.dest.reopen(),
    flushSync: () => open.dest.flushSync(),
    use(nextPath, nextLevel) {
      log.level = nextLevel;
      if (nextPath === open.path) return;
      const old = open.dest;
      open = { path: nextPath, dest: openDestination(nextPath) };
      void old.close();
    },
  };
}
