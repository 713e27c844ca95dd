import { afterEach, describe, expect, test } from 'vitest';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { startSyslogServer } from '../helpers/syslog-server.ts';
import type { SyslogServer } from '../helpers/syslog-server.ts';

/**
 * Plugins' dispose through the real gateway: a worker that exits (reload,
 * quit, stop) first sends what its syslog instances queued. flush_interval is
 * an hour, so every entry that arrives was sent by dispose, not by the timer.
 */
let gw: RunningGateway | null = null;
let syslog: SyslogServer | null = null;

afterEach(async () => {
  await gw?.stop();
  await syslog?.close();
  gw = null;
  syslog = null;
});

const COUNT = 12;

async function start(kind: 'udp' | 'tcp'): Promise<{ gw: RunningGateway; syslog: SyslogServer }> {
  syslog = await startSyslogServer(kind);
  const server = syslog.url;
  gw = await startGateway(() => ({
    worker_processes: 2,
    routes: [{ name: 'logged', paths: ['= /logged'], return: { status: 200, body: 'ok\n' }, plugins: { syslog: { server, flush_interval: '1h' } } }],
  }));
  return { gw, syslog };
}

/** COUNT requests, each marked `?m=<tag><i>`, answered before this resolves. */
async function send(g: RunningGateway, tag: string): Promise<string[]> {
  const marks = Array.from({ length: COUNT }, (_, i) => `${tag}${i}`);
  for (const m of marks) {
    const res = await fetch(g.url(`/logged?m=${m}`));
    expect(res.status).toBe(200);
    await res.text();
  }
  return marks;
}

const marksIn = (messages: readonly string[]): string[] =>
  messages.map((m) => (JSON.parse(m.slice(m.indexOf('{'))) as { request: { query: string } }).request.query.slice(2)).sort();

describe('syslog entries queued when a worker exits are sent, not lost', () => {
  test('reload: the old workers send theirs before they exit', async () => {
    const { gw, syslog } = await start('udp');
    const marks = await send(gw, 'r');
    // Queued for the hour: nothing has gone yet.
    expect(syslog.messages).toEqual([]);
    await gw.reload();
    await syslog.has(COUNT);
    expect(marksIn(syslog.messages)).toEqual([...marks].sort());
  });

  test('graceful quit (SIGQUIT): none lost, over TCP', async () => {
    const { gw, syslog } = await start('tcp');
    const marks = await send(gw, 'q');
    gw.signal('SIGQUIT');
    expect(await gw.exited()).toBe(0);
    await syslog.has(COUNT);
    expect(marksIn(syslog.messages)).toEqual([...marks].sort());
  });

  test('stop (SIGTERM): none lost', async () => {
    const { gw, syslog } = await start('udp');
    const marks = await send(gw, 's');
    gw.signal('SIGTERM');
    await gw.exited();
    await syslog.has(COUNT);
    expect(marksIn(syslog.messages)).toEqual([...marks].sort());
  });
});
