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
type SonicBoom = ReturnType<typeof pino.destination>;

export interface Destination {
  readonly stream: SonicBoom;
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
    stream,
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

export function createErrorLog(path: string, level: LogLevel, bindings: Record<string, unknown>): { log: Logger; dest: Destination } {
  const dest = openDestination(path);
  const log = pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest.stream);
  return { log, dest };
}
