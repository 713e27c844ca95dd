import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { freePort } from './free-port.ts';

/**
 * A real redis-server on 127.0.0.1, for `policy: redis`. Tests skip with
 * {@link NO_REDIS} as the reason where it is not installed.
 */
export const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;
export const NO_REDIS = 'redis-server is not installed (apt-get install redis-server)';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILL: what a crashed or unreachable Redis looks like to its clients. */
  kill(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (c: string) => {
      out += c;
      if (out.includes('Ready to accept connections')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  const gone = new Promise((resolve) => proc.once('exit', resolve));
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await gone;
    },
  };
}
