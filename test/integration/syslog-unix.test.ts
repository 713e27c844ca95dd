import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { childrenOf, rsyslogdMissing, startRsyslogd } from '../helpers/syslog-server.ts';
import type { LocalSyslog } from '../helpers/syslog-server.ts';

/**
 * `server: unix:///dev/log`: a unix DATAGRAM socket, here a real rsyslogd's
 * imuxsock (what reads /dev/log on a Debian host) on a socket of its own.
 * The gateway reaches it through util-linux `logger`, one per worker and
 * socket path, which every worker ends and reaps before it exits.
 */
const missing = rsyslogdMissing();
if (missing !== null) console.warn(missing);

const ROUTES = ['a', 'b', 'c'];
const RELOADS = 3;

let rs: LocalSyslog;
let gw: RunningGateway;

beforeAll(async () => {
  if (missing !== null) return;
  rs = await startRsyslogd();
  // Three routes on one socket: one logger per worker, not one per route.
  gw = await startGateway(() => ({
    routes: ROUTES.map((name) => ({
      name, paths: [`/${name}/`], return: { status: 200, body: 'ok' },
      plugins: { syslog: { server: `unix://${rs.socketPath}`, facility: 'local3', format: 'rfc3164', flush_interval: '50ms' } },
    })),
  }));
});

afterAll(async () => {
  await gw?.stop();
  await rs?.close();
});

/** One request per route, on new connections so that both workers are likely to serve some. */
async function hitEveryRoute(tag: string): Promise<void> {
  for (const name of ROUTES) {
    const res = await request(gw.url(`/${name}/${tag}`), { reset: true });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  }
}

test.skipIf(missing !== null)('rsyslog parses program sluice, the gateway\'s pid, PRI and the JSON entry as the message', async () => {
  await request(gw.url('/a/hello?x=1')).then((r) => r.body.dump());
  await rs.has(1);
  const rec = rs.records().find((r) => r.msg.includes('"path":"/a/hello"'))!;
  // local3 (19) * 8 + info (6) = 158. Sent as RFC 3164 with a hostname, rsyslog took the hostname for the program.
  expect(rec).toMatchObject({ programname: 'sluice', appName: 'sluice', procid: String(gw.proc.pid), pri: 158 });
  expect(rec.msg.trimStart()).toMatch(/^\{.*\}$/);
  expect(JSON.parse(rec.msg)).toMatchObject({ request: { method: 'GET', path: '/a/hello', query: 'x=1' }, response: { status: 200 }, route: 'a' });
});

test.skipIf(missing !== null)(`after ${RELOADS} reloads: no zombie, and no child but one logger per live worker`, async () => {
  let sent = 1;
  for (let i = 0; i < RELOADS; i++) {
    await hitEveryRoute(`before-${i}`);
    sent += ROUTES.length;
    await gw.reload();
  }
  await hitEveryRoute('last');
  sent += ROUTES.length;
  // Every entry arrived: the retiring workers' loggers sent their last lines before they were ended.
  await rs.has(sent);

  const children = childrenOf(gw.proc.pid!);
  expect(children.filter((c) => c.state === 'Z')).toEqual([]);
  expect(children.map((c) => c.comm).filter((comm) => comm !== 'logger')).toEqual([]);
  const { workers } = await gw.status();
  expect(children.length).toBeGreaterThan(0);
  expect(children.length).toBeLessThanOrEqual(workers.length);
});

test.skipIf(missing !== null)('a stop ends every logger: none is left running or unreaped once the master exits', async () => {
  const pid = gw.proc.pid!;
  expect(childrenOf(pid).length).toBeGreaterThan(0);
  await gw.stop();
  // An orphan would have been re-parented: look for any process still writing to this socket.
  const ours = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(rs.socketPath);
    } catch {
      return false;
    }
  });
  expect(ours).toEqual([]);
});
