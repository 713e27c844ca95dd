import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';

/**
 * `server: unix:///dev/log`: a unix DATAGRAM socket, as journald's and
 * rsyslog's are. Node cannot bind one, so the test's syslog daemon is a few
 * lines of Python; the gateway reaches it through util-linux `logger`.
 */
const have = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const runnable = have('logger') && have('python3');

const DAEMON = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(65536).decode("utf-8", "replace"), flush=True)
`;

let dir: string;
let daemon: ChildProcess;
let gw: RunningGateway;
const lines: string[] = [];
let onLine: (() => void) | null = null;

beforeAll(async () => {
  if (!runnable) return;
  dir = mkdtempSync(join(tmpdir(), 'sluice-syslog-'));
  const socketPath = join(dir, 'log');
  daemon = spawn('python3', ['-c', DAEMON, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  daemon.stdout!.setEncoding('utf8');
  let buf = '';
  await new Promise<void>((ready) => {
    daemon.stdout!.on('data', (c: string) => {
      buf += c;
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'ready') ready();
        else {
          lines.push(line);
          onLine?.();
        }
      }
    });
  });
  gw = await startGateway(() => ({
    routes: [{
      name: 'logged', paths: ['/'], return: { status: 200, body: 'ok' },
      plugins: { syslog: { server: `unix://${socketPath}`, facility: 'local3', flush_interval: '50ms' } },
    }],
  }));
});

afterAll(async () => {
  await gw?.stop();
  daemon?.kill();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test.skipIf(!runnable)('entries reach a unix datagram socket as RFC 5424 messages with the right PRI', async () => {
  const res = await request(gw.url('/hello?x=1'));
  expect(res.statusCode).toBe(200);
  await res.body.dump();
  const ours = (): string | undefined => lines.find((l) => l.includes('"path":"/hello"'));
  if (ours() === undefined) await new Promise<void>((resolve) => { onLine = () => { if (ours() !== undefined) resolve(); }; });
  const line = ours()!;
  // local3 (19) * 8 + info (6) = 158; logger writes the header, tagged sluice.
  expect(line).toMatch(/^<158>1 \d{4}-\d\d-\d\dT\S+ \S+ sluice /);
  const json = JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
  expect(json).toMatchObject({ request: { method: 'GET', path: '/hello', query: 'x=1' }, response: { status: 200 }, route: 'logged' });
});
