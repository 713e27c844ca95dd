import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { stringify } from 'yaml';
import type { BenchCertificate } from './certificate.ts';
import { PEERS } from './peers/peers.ts';
import type { Peer } from './peers/peers.ts';
import type { Scenario } from './scenarios.ts';
import { commandOutput, freePort, onPath, pinned, start, tempDir } from './processes.ts';
import type { Child } from './processes.ts';

/**
 * The systems under test, each started on a free port in a temp prefix and
 * considered ready only once it says so (upstream, Sluice, the Node peers) or
 * answers (nginx).
 */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = process.execPath;

export interface Running {
  readonly child: Child;
  readonly port: number;
}

export async function startUpstream(cpu: string | null): Promise<Running> {
  const [cmd, args] = pinned(NODE, [join(ROOT, 'bench/http/upstream.ts')], cpu);
  const child = start(cmd, args);
  const line = await child.waitFor('listening ');
  return { child, port: Number(line.split(' ')[1]) };
}

/** How every system under test is run: the same workers, upstream and CPUs. */
export interface SystemSettings {
  readonly workers: number;
  readonly upstreamPort: number;
  /** CPUs for the system's processes and threads (a taskset -c list), or null for any. */
  readonly cpu: string | null;
  /** Listen with TLS on this certificate (HTTPS scenarios), or null for cleartext. */
  readonly tls: BenchCertificate | null;
  /** With `tls`: offer HTTP/2 by ALPN. */
  readonly http2: boolean;
}

/** The bench's base conf; a scenario's fragment is laid over its top-level keys. */
export async function startSluice(s: SystemSettings, fragment: Readonly<Record<string, unknown>>): Promise<Running> {
  const dir = tempDir(mkdtempSync(join(tmpdir(), 'sluice-bench-')));
  const port = await freePort();
  const statusPort = await freePort();
  const conf = {
    worker_processes: s.workers,
    pid: 'sluice.pid',
    error_log: { path: 'stderr', level: 'warn' },
    access_log: { path: 'off' },
    server: s.tls === null
      ? { listen: [`127.0.0.1:${port}`] }
      : { listen: [{ address: `127.0.0.1:${port}`, tls: true, http2: s.http2 }], tls: { certificates: [{ cert: s.tls.cert, key: s.tls.key }] } },
    // Readiness comes from /status: at level warn the master does not log "sluice started".
    status: { listen: `127.0.0.1:${statusPort}` },
    upstreams: { origin: { targets: [`127.0.0.1:${s.upstreamPort}`], keepalive: 64 } },
    ...fragment,
  };
  const file = join(dir, 'sluice.yaml');
  writeFileSync(file, stringify(conf));
  const child = start(...pinned(NODE, [join(ROOT, 'src/master/entry.js'), '-c', file, '-p', dir], s.cpu));
  await until(child, 'sluice', async () => {
    const doc = await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json() as { workers: { state: string }[] };
    return doc.workers.length === s.workers && doc.workers.every((w) => w.state === 'running');
  });
  return { child, port };
}

/**
 * The systems the bench runs beside Sluice, not part of it: nginx (from PATH)
 * and the Node peers (devDependencies). Each is named with its version, or is
 * missing with the reason, and every scenario of one starts the same way.
 */
export type External = Extract<Scenario, { kind: 'nginx' | Peer }>;
export type ExternalKind = External['kind'];

export function externalVersion(kind: ExternalKind): { readonly version: string } | { readonly missing: string } {
  if (kind === 'nginx') {
    const v = onPath('nginx') === null ? '' : commandOutput('nginx', ['-v']).replace(/^nginx version:\s*(nginx\/)?/, '');
    return v === '' ? { missing: 'nginx not on PATH' } : { version: `nginx ${v}` };
  }
  if (PEERS[kind].length === 0) return { version: `node ${process.versions.node}` };
  const require = createRequire(import.meta.url);
  try {
    return { version: PEERS[kind].map((p) => `${p} ${(require(`${p}/package.json`) as { version: string }).version}`).join(' + ') };
  } catch {
    return { missing: `${PEERS[kind].join(' and ')} not installed (npm ci installs the devDependencies)` };
  }
}

export function startExternal(s: External, settings: SystemSettings): Promise<Running> {
  return s.kind === 'nginx' ? startNginx({ ...settings, location: s.location ?? 'proxy_pass' }) : startPeer(s.kind, settings);
}

/** A Node peer as bench/http/peers/serve.ts runs it: `workers` processes under one parent, the bench's child. */
async function startPeer(peer: Peer, s: SystemSettings): Promise<Running> {
  if (s.tls !== null) throw new Error(`the bench runs ${peer} over cleartext only`);
  const port = await freePort();
  const child = start(...pinned(NODE, [join(ROOT, 'bench/http/peers/serve.ts'), peer, String(s.workers), String(port), String(s.upstreamPort)], s.cpu));
  await child.waitFor(`listening ${port}`);
  return { child, port };
}

interface NginxSettings extends SystemSettings {
  /** What the location does: proxy, proxy from a proxy_cache zone, or answer itself (see nginxConf). */
  readonly location: 'proxy_pass' | 'proxy_cache' | 'return';
}

/**
 * nginx as the reference reverse proxy: the same worker count, SO_REUSEPORT
 * like Sluice's workers, keep-alive to the upstream (HTTP/1.1 with the
 * Connection header cleared, as nginx requires for upstream keepalive), no
 * access log. Everything it writes stays in the temp prefix; it runs as the
 * bench's own user (`user root` only when that is who we are, since nginx
 * would otherwise drop its workers to nobody).
 *
 * With `location: 'proxy_cache'`, the same proxy answers from a proxy_cache zone, set up as
 * Sluice's proxy-cache is: a lock so concurrent misses make one upstream
 * request, 200s kept 5 minutes (the upstream sends no Cache-Control), and the
 * cache status in X-Cache-Status, which Sluice sends too and the bench's probe
 * checks. The keys zone holds about 8,000 keys per MB; 8m and a 64m max_size
 * on disk (the page cache, in practice) match Sluice's 64m zone.
 */
function nginxConf(s: NginxSettings, dir: string, port: number): string {
  const proxy = `
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`;
  const location = {
    proxy_pass: { zone: '', location: proxy },
    proxy_cache: {
      zone: `\n  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:8m max_size=64m inactive=10m use_temp_path=off;`,
      location: `${proxy}
      proxy_cache bench;
      proxy_cache_lock on;
      proxy_cache_valid 200 5m;
      add_header X-Cache-Status $upstream_cache_status;`,
    },
    // The upstream's answer, the same 12 bytes and Content-Type, from nginx itself: the Sluice return route's peer.
    return: { zone: '', location: `
      default_type text/plain;
      return 200 "hello world\\n";` },
  }[s.location];
  return `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes ${s.workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;${location.zone}
  upstream origin {
    server 127.0.0.1:${s.upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port} reuseport${s.tls === null ? ';' : ` ssl${s.http2 ? ' http2' : ''};
    ssl_certificate ${s.tls.cert};
    ssl_certificate_key ${s.tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;${s.http2 ? `
    # nginx ends an HTTP/2 connection after 1,000 requests by default, and h2load does not reconnect.
    keepalive_requests 10000000;` : ''}`}
    location / {${location.location}
    }
  }
}
`;
}

async function startNginx(s: NginxSettings): Promise<Running> {
  const dir = tempDir(mkdtempSync(join(tmpdir(), 'sluice-bench-nginx-')));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(s, dir, port));
  const child = start(...pinned('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], s.cpu));
  // Ready once it accepts connections (an https answer would need the bench's certificate trusted).
  await until(child, 'nginx', () => new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  }));
  return { child, port };
}

/** Polls `ready` (a refused connection counts as not yet) until true, the process exits, or 15 s pass. */
async function until(child: Child, name: string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`${name} exited (${child.proc.exitCode}):\n${child.output()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${name} not ready after 15 s:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
