import { spawn } from 'node:child_process';
import { SLUICE } from './gateway.ts';

export interface SluiceRun {
  /** The exit code; null when a signal ended it. */
  readonly code: number | null;
  /** It did not end by itself within `timeoutMs` and was sent SIGTERM. */
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `bin/sluice` (or another copy of it) as an operator does and collects its output.
 * A run that should end but does not is stopped with SIGTERM after `timeoutMs`, so the
 * test fails on its exit code instead of hanging, and leaves nothing serving behind.
 */
export function runSluice(
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; bin?: string; timeoutMs?: number } = {},
): Promise<SluiceRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(opts.bin ?? SLUICE, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGTERM');
    }, opts.timeoutMs ?? 20_000);
    proc.once('error', reject);
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, stdout, stderr });
    });
  });
}
