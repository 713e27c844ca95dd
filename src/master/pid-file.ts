import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** nginx's pid file: written at start, read by `sluice -s`, removed on exit. */
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
