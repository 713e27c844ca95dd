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
export type Destination = ReturnType<typeof pino.destination>;

export function openDestination(path: string): Destination {
  if (path === 'stderr') return pino.destination({ dest: 2, sync: false });
  if (path === 'stdout') return pino.destination({ dest: 1, sync: false });
  mkdirSync(dirname(path), { recursive: true });
  return pino.destination({ dest: path, sync: false });
}

export function createErrorLog(path: string, level: LogLevel, bindings: Record<string, unknown>): { log: Logger; dest: Destination } {
  const dest = openDestination(path);
  const log = pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  return { log, dest };
}
