import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { dumpConf, formatIssue } from '../../../src/config/format.ts';
import { loadConf } from '../../../src/config/load.ts';
import type { SluiceConf } from '../../../src/config/types.ts';
import { BUILTIN_PLUGINS, loadPluginRegistry } from '../../../src/plugins/index.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/conf');
const PREFIX = '/srv/sluice';

function load(rel: string): SluiceConf {
  const r = loadConf(join(FIXTURES, rel), { prefix: PREFIX });
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join('\n'));
  return r.conf;
}

describe('loadConf on a valid conf', () => {
  it('resolves the full conf with its conf.d includes and defaults', () => {
    const conf = load('full/sluice.yaml');
    expect(conf).toEqual({
      file: join(FIXTURES, 'full/sluice.yaml'),
      prefix: PREFIX,
      worker_processes: 2,
      worker_shutdown_timeout: 90_000,
      pid: '/srv/sluice/run/sluice.pid',
      plugin_paths: ['/srv/sluice/plugins'],
      error_log: { path: '/srv/sluice/logs/error.log', level: 'warn' },
      access_log: { path: 'off', buffer: 32 * 1024, flush: 5000 },
      shared_dicts: { sluice_limits: 10 * 1024 * 1024, sluice_cache: 64 * 1024 * 1024 },
      server: {
        listen: [
          { host: '127.0.0.1', port: 8080, tls: false, http2: false },
          { host: '::1', port: 8081, tls: false, http2: false },
        ],
        tls: { certificates: [], minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: null, session_cache: 10 * 1024 * 1024, session_tickets: true, session_ticket_rotation: 12 * 3_600_000 },
        client_max_body_size: 512 * 1024,
        client_header_timeout: 60_000,
        client_body_timeout: 60_000,
        keepalive_timeout: 5_000,
        real_ip: { header: 'X-Forwarded-For', trusted: ['127.0.0.1/32', '10.0.0.0/8', '::1'], recursive: true },
      },
      status: { listen: null },
      upstreams: {
        echo: {
          name: 'echo',
          algorithm: 'round-robin',
          hash_on: 'ip',
          targets: [
            { address: '127.0.0.1:9001', host: '127.0.0.1', port: 9001, weight: 5, backup: false },
            { address: 'localhost:9002', host: 'localhost', port: 9002, weight: 1, backup: false },
          ],
          keepalive: 64,
          connect_timeout: 5_000,
          send_timeout: 60_000,
          read_timeout: 60_000,
          retries: 1,
          host_header: null,
          tls: null,
          healthcheck: { active: { path: '/healthz', interval: 2_000, timeout: 1_000, healthy: 2, unhealthy: 3 }, passive: null },
        },
        billing: {
          name: 'billing',
          algorithm: 'consistent-hash',
          hash_on: 'header:X-Tenant',
          targets: [{ address: '10.0.0.1:80', host: '10.0.0.1', port: 80, weight: 1, backup: false }],
          keepalive: 0,
          connect_timeout: 500,
          send_timeout: 10_000,
          read_timeout: 3_600_000,
          retries: 0,
          host_header: 'billing.internal',
          tls: null,
          healthcheck: { active: null, passive: { max_fails: 5, fail_timeout: 30_000 } },
        },
      },
      consumers: [{ username: 'alice', attributes: { user_id: '1001', company_id: '42' }, credentials: { 'key-auth': [{ key: 'alice-key-1' }] } }],
      plugins: { 'correlation-id': { header_name: 'X-Request-Id' } },
      routes: [
        {
          name: 'echo',
          hosts: ['api.example.com', '*.example.org'],
          paths: ['/echo', '~* ^/v[0-9]+/echo'],
          methods: ['GET', 'POST'],
          strip_path: true,
          headers: {},
          preserve_host: false,
          websocket: false,
          upstream: 'echo',
          return: null,
          root: null,
          plugins: { 'key-auth': {} },
        },
        {
          name: 'ping',
          hosts: [],
          paths: ['= /ping'],
          methods: [],
          strip_path: false,
          headers: {},
          preserve_host: false,
          websocket: false,
          upstream: null,
          return: { status: 200, body: 'pong\n', headers: { 'content-type': 'text/plain' } },
          root: null,
          plugins: {},
        },
        // conf.d/10-assets.yaml, then conf.d/20-billing.yaml: glob order, after the main file's own routes.
        {
          name: 'assets',
          hosts: [],
          paths: ['^~ /assets/'],
          methods: [],
          strip_path: false,
          headers: {},
          preserve_host: false,
          websocket: false,
          upstream: null,
          return: null,
          root: '/srv/sluice/public',
          plugins: {},
        },
        {
          name: 'billing',
          hosts: [],
          paths: ['/billing'],
          methods: [],
          strip_path: false,
          headers: {},
          preserve_host: true,
          websocket: false,
          upstream: 'billing',
          return: null,
          root: null,
          plugins: {},
        },
      ],
    } satisfies SluiceConf);
  });

  it('fills every default into a minimal conf', () => {
    const conf = load('minimal/sluice.yaml');
    expect(conf.worker_processes).toBe(availableParallelism());
    expect(conf.worker_shutdown_timeout).toBe(10_000);
    expect(conf.pid).toBe('/srv/sluice/logs/sluice.pid');
    expect(conf.plugin_paths).toEqual([]);
    expect(conf.error_log).toEqual({ path: 'stderr', level: 'info' });
    expect(conf.access_log).toEqual({ path: '/srv/sluice/logs/access.log', buffer: 0, flush: 1000 });
    expect(conf.shared_dicts).toEqual({});
    expect(conf.server).toEqual({
      listen: [{ host: '0.0.0.0', port: 8080, tls: false, http2: false }],
      tls: { certificates: [], minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: null, session_cache: 10 * 1024 * 1024, session_tickets: true, session_ticket_rotation: 12 * 3_600_000 },
      client_max_body_size: 1024 * 1024,
      client_header_timeout: 60_000,
      client_body_timeout: 60_000,
      keepalive_timeout: 75_000,
      real_ip: null,
    });
    expect(conf.status).toEqual({ listen: { host: '127.0.0.1', port: 9145 } });
    expect(conf.upstreams).toEqual({});
    expect(conf.consumers).toEqual([]);
    expect(conf.plugins).toEqual({});
    expect(conf.routes).toEqual([
      {
        name: 'ping',
        hosts: [],
        paths: ['= /ping'],
        methods: [],
        strip_path: false,
        headers: {},
        preserve_host: false,
        websocket: false,
        upstream: null,
        return: { status: 204, body: '', headers: {} },
        root: null,
        plugins: {},
      },
    ]);
  });

  it('defaults the prefix to the working directory', () => {
    const r = loadConf(join(FIXTURES, 'minimal/sluice.yaml'));
    expect(r.ok && r.conf.pid).toBe(join(process.cwd(), 'logs/sluice.pid'));
  });

});

describe('the conf as written, as sluice -T prints it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-dump-'));
  afterAll(() => rmSync(dir, { recursive: true }));

  // Valid confs: the shipped one and the valid fixtures, with the built-in plugins' schemas so plugin defaults are dumped too.
  it.each(['full/sluice.yaml', 'minimal/sluice.yaml', 'plugins-ok/sluice.yaml', '../cli/ok/sluice.yaml', '../../../conf/sluice.yaml'])(
    '%s: the dump loads back to the same conf, and dumps the same again',
    async (rel) => {
      const registry = await loadPluginRegistry([], new Set(BUILTIN_PLUGINS.keys()));
      const opts = { prefix: PREFIX, pluginSchemas: registry.schemas, credentialSchemas: registry.credentialSchemas };
      const first = loadConf(join(FIXTURES, rel), opts);
      if (!first.ok) throw new Error(first.issues.map(formatIssue).join('\n'));
      const file = join(dir, `${rel.replaceAll('/', '_')}.yaml`);
      writeFileSync(file, dumpConf(first.written, first.conf.file));
      const again = loadConf(file, opts);
      if (!again.ok) throw new Error(again.issues.map(formatIssue).join('\n'));
      expect({ ...again.conf, file: first.conf.file }).toEqual(first.conf);
      expect(again.written).toEqual(first.written);
    },
  );

  it('keeps durations and sizes as written, fills defaults in their units, and drops include', () => {
    const r = loadConf(join(FIXTURES, 'full/sluice.yaml'), { prefix: PREFIX });
    if (!r.ok) throw new Error('full/sluice.yaml did not load');
    const dumped = parse(dumpConf(r.written, r.conf.file)) as Record<string, any>;
    expect(dumped['worker_shutdown_timeout']).toBe('1m30s');
    expect(dumped['server']).toMatchObject({ client_max_body_size: '512k', client_header_timeout: '60s', listen: ['127.0.0.1:8080', '[::1]:8081'] });
    expect(dumped['upstreams'].billing).toMatchObject({ read_timeout: '1h', connect_timeout: '500ms', targets: ['10.0.0.1:80'] });
    expect(dumped['upstreams'].echo.healthcheck.active).toEqual({ path: '/healthz', interval: '2s', timeout: '1s', healthy: 2, unhealthy: 3 });
    expect(dumped['shared_dicts']).toEqual({ sluice_limits: '10m', sluice_cache: '64m' });
    expect(Object.keys(dumped)).not.toContain('include');
    expect(dumped['routes'].map((route: { name: string }) => route.name)).toEqual(['echo', 'ping', 'assets', 'billing']);
  });
});
