import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import pino from 'pino';
import type { Exit, Ids, PluginDef } from '../../src/plugins/pdk/index.ts';
import { Exchange } from '../../src/worker/exchange.ts';
import type { Site } from '../../src/worker/exchange.ts';
import { compileChains } from '../../src/worker/pipeline/chain.ts';
import { createPluginEnvs } from '../../src/worker/pipeline/env.ts';
import type { PluginEnvs } from '../../src/worker/pipeline/env.ts';
import { disposePlugins, initPlugins, namedPlugins } from '../../src/worker/pipeline/lifecycle.ts';
import { runBodyFilter, runHeaderFilter, runLog, runRequestPhases } from '../../src/worker/pipeline/run.ts';
import type { ConsumerConf, SluiceConf, UpstreamConf } from '../../src/config/types.ts';
import type { Obj } from '../../src/config/loose.ts';
import { checkPluginConfs } from '../../src/config/plugin-confs.ts';
import { Reporter } from '../../src/config/reporter.ts';
import { GatewayError } from '../../src/plugins/pdk/errors.ts';
import { schemasOf } from '../../src/plugins/registry.ts';
import { validate } from '../../src/config/validate.ts';
import { compileConsumers } from '../../src/worker/pipeline/consumers.ts';
import { closeUpstream, createUpstream } from '../../src/worker/proxy.ts';
import type { Upstream } from '../../src/worker/proxy.ts';
import { Tunnels } from '../../src/worker/websocket.ts';

/**
 * Runs plugins' phases in-process on a fake request, through the real
 * pipeline (chain building, ctx, runner), so a plugin test sees exactly what
 * the gateway would do, without sockets.
 */

export interface ConfCheck {
  readonly ok: boolean;
  /** The conf with defaults filled in, as `create` would get it. */
  readonly conf: unknown;
  /** Faults as `path: message`, path like `/allow/0`. */
  readonly errors: string[];
}

/** Schema check as the master does it (the same `validate`): defaults first, then every fault. */
export function checkConf(def: PluginDef, conf: unknown): ConfCheck {
  const checked = validate(def.schema, conf);
  return { ok: checked.ok, conf: checked.value, errors: checked.faults.map((f) => `/${f.path.join('/')}: ${f.message}`) };
}

export interface FakeRequest {
  readonly method?: string;
  readonly path?: string;
  readonly query?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly client?: string;
  /** The request body the client streams (Content-Length is added); none by default. */
  readonly body?: string | Buffer;
  /** What the upstream answers when plugins let the request through. */
  readonly upstream?: { status?: number; headers?: Record<string, string>; body?: string[] };
}

export interface RunResult {
  readonly exit: Exit | null;
  /** The request as sent upstream (null when a plugin ended it); `name`: the upstream it goes to (`ctx.upstream`). */
  readonly upstream: { name: string | null; path: string; target: string; headers: readonly string[]; bodyLimit: number; body: string | null } | null;
  readonly status: number;
  /** Response headers after headerFilter, lower-cased name -> values. */
  readonly headers: Record<string, string[]>;
  readonly header: (name: string) => string | undefined;
  /** Proxied body after bodyFilter. */
  readonly body: string;
  readonly requestId: string | null;
  readonly errors: Record<string, unknown>[];
}

export interface Harness {
  run(req?: FakeRequest): Promise<RunResult>;
  /** Stops what the plugins' env started (the offload pool). */
  close(): Promise<void>;
  /**
   * The worker exiting (reload, quit, stop), as the worker does it: every
   * instance's `dispose`, then every named plugin's, bounded like
   * `worker_shutdown_timeout`'s default.
   */
  dispose(): Promise<void>;
  /** Every pino line the plugins and the runner wrote. */
  readonly lines: Record<string, unknown>[];
}

export interface HarnessOptions {
  readonly now?: () => number;
  readonly ids?: Ids;
  readonly random?: () => number;
  /** Which other workers still run (env.workerAlive); default: all of them. */
  readonly workerAlive?: (id: number) => boolean;
  /**
   * The conf's upstreams, by name (each one target that is never asked): the
   * route proxies to the first, and `ctx.useUpstream` may choose any. None:
   * the route does not proxy.
   */
  readonly upstreams?: readonly string[];
  readonly zones?: Record<string, SharedArrayBuffer>;
  /** Plugins configured globally (top-level `plugins:`), name -> conf. */
  readonly globals?: Record<string, unknown>;
  /** `consumers:` as in the conf (resolved shape). */
  readonly consumers?: readonly ConsumerConf[];
}

const toRaw = (h: Record<string, string | string[]>): string[] =>
  Object.entries(h).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v]));

/**
 * A client request as Node's parser hands it to the gateway: method, target,
 * raw headers, and the body as a stream that readBody consumes for real.
 */
function fakeIncoming(r: FakeRequest): IncomingMessage {
  const body = r.body === undefined ? null : Buffer.from(r.body);
  const headers = { ...(r.headers ?? {}), ...(body === null ? {} : { 'content-length': String(body.length) }) };
  const socket = { remoteAddress: r.client ?? '127.0.0.1', bytesWritten: 0, setTimeout: () => socket } as unknown as Socket;
  const stream = Readable.from(body === null ? [] : [body], { objectMode: false });
  const incoming = Object.assign(stream, {
    method: r.method ?? 'GET',
    url: r.path ?? '/',
    rawHeaders: toRaw(headers),
    headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    socket,
    complete: false,
    setTimeout: () => incoming,
  }) as unknown as IncomingMessage & { complete: boolean };
  stream.once('end', () => { incoming.complete = true; });
  return incoming;
}

/** worker_shutdown_timeout's default: how long `dispose` may take. */
const DISPOSE_BOUND_MS = 10_000;

/** One worker's view of a conf with one route, `test`: its logger, plugin envs and the plugins the conf names. */
interface Worker {
  readonly lines: Record<string, unknown>[];
  readonly log: pino.Logger;
  readonly envs: PluginEnvs;
  readonly conf: SluiceConf;
  readonly plugins: ReadonlyMap<string, PluginDef>;
  readonly named: readonly PluginDef[];
  readonly upstreams: ReadonlyMap<string, Upstream>;
}

/**
 * The route's and global plugin confs and the consumers' credentials, checked
 * as the master checks them before a worker sees the conf (defaults filled in,
 * on copies); the first fault is thrown, as `sluice -t` would refuse the conf.
 */
function masterChecked(defs: readonly PluginDef[], plugins: Record<string, unknown>, opts: HarnessOptions): SluiceConf {
  const upstreams = opts.upstreams ?? [];
  const route = { name: 'test', plugins: structuredClone(plugins), upstream: upstreams[0] };
  const conf = {
    plugins: structuredClone(opts.globals ?? {}), routes: [route], consumers: structuredClone(opts.consumers ?? []),
    // What plugin confs may name: the harness's zones and upstreams.
    shared_dicts: Object.fromEntries(Object.keys(opts.zones ?? {}).map((name) => [name, true])),
    upstreams: Object.fromEntries(upstreams.map((name) => [name, true])),
  };
  const reporter = new Reporter('harness');
  const { schemas, credentialSchemas } = schemasOf(defs);
  checkPluginConfs(conf as unknown as Obj, { pluginSchemas: schemas, credentialSchemas }, reporter);
  const fault = reporter.issues[0];
  if (fault !== undefined) throw new GatewayError('GW_ERR_PLUGIN_CONF', `${fault.path}: ${fault.message}`);
  return conf as unknown as SluiceConf;
}

function worker(defs: readonly PluginDef[], plugins: Record<string, unknown>, opts: HarnessOptions): Worker {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const conf = masterChecked(defs, plugins, opts);
  const envs = createPluginEnvs({
    log, workerId: 1, zones: opts.zones ?? {}, consumers: compileConsumers(conf.consumers),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.ids === undefined ? {} : { ids: opts.ids }),
    ...(opts.random === undefined ? {} : { random: opts.random }),
    ...(opts.workerAlive === undefined ? {} : { workerAlive: opts.workerAlive }),
  });
  const upstreams = new Map((opts.upstreams ?? []).map((name) => [name, createUpstream(upstreamConf(name))]));
  const map = new Map(defs.map((d) => [d.name, d]));
  return { lines, log, envs, conf, plugins: map, named: namedPlugins(conf, map), upstreams };
}

/** An upstream as the conf loader resolves it, with one target on the discard port: the harness never connects. */
function upstreamConf(name: string): UpstreamConf {
  return {
    name, algorithm: 'round-robin', hash_on: 'ip', keepalive: 1, connect_timeout: 1000, send_timeout: 1000, read_timeout: 1000,
    retries: 0, host_header: null, tls: null, healthcheck: { active: null, passive: null },
    targets: [{ address: '127.0.0.1:9', host: '127.0.0.1', port: 9, weight: 1, backup: false }],
  };
}

/**
 * `plugins`: the route's plugins (name -> conf); `defs`: the definitions they
 * may name. A plugin with an `init` needs {@link startHarness}.
 */
export function harness(defs: readonly PluginDef[], plugins: Record<string, unknown>, opts: HarnessOptions = {}): Harness {
  const w = worker(defs, plugins, opts);
  const withInit = w.named.find((d) => d.init !== undefined);
  if (withInit !== undefined) throw new Error(`plugin ${withInit.name} has an init: use startHarness`);
  return build(w);
}

/** `harness` after every named plugin's `init`, which the worker awaits before it builds any chain. */
export async function startHarness(defs: readonly PluginDef[], plugins: Record<string, unknown>, opts: HarnessOptions = {}): Promise<Harness> {
  const w = worker(defs, plugins, opts);
  await initPlugins(w.named, w.envs.envFor);
  return build(w);
}

function build({ lines, log, envs, conf, plugins, named, upstreams }: Worker): Harness {
  const chains = compileChains({ conf, plugins, envFor: envs.envFor, log });

  const stats = new Float64Array(64);
  const site: Site = {
    log, accessLog: null, stats, lifecycle: { draining: false }, routes: 1,
    bodyLimits: { maxBody: 0, idleMs: 1000 }, upstreams, tunnels: new Tunnels(stats),
  };
  const routeUpstream = upstreams.values().next().value ?? null;

  async function run(r: FakeRequest = {}): Promise<RunResult> {
    const before = lines.length;
    const incoming = fakeIncoming(r);
    const ctx = new Exchange(site, incoming, new ServerResponse(incoming), chains.routes[0]!, 0);
    ctx.client = r.client ?? '127.0.0.1';
    ctx.proxyTo = routeUpstream;
    ctx.req.routeTo(r.path ?? '/', r.query ?? '');
    const exit = ctx.chain.request === null ? null : await runRequestPhases(ctx, ctx.chain.request, 0);
    let status: number;
    let body = '';
    if (exit !== null) {
      status = exit.status;
      const list = ctx.startResponse(status, toRaw(exit.headers ?? {}), 'exit');
      if (typeof exit.body === 'object' && !(exit.body instanceof Uint8Array) && !list.has('content-type')) list.set('content-type', 'application/json');
      runHeaderFilter(ctx);
      body = exit.body === undefined ? '' : typeof exit.body === 'string' ? exit.body : JSON.stringify(exit.body);
    } else {
      const up = r.upstream ?? {};
      status = up.status ?? 200;
      ctx.startResponse(status, toRaw(up.headers ?? {}), 'upstream');
      runHeaderFilter(ctx);
      const dec = new TextDecoder();
      for (const chunk of up.body ?? []) body += dec.decode(runBodyFilter(ctx, new TextEncoder().encode(chunk), false), { stream: true });
      body += dec.decode(runBodyFilter(ctx, new Uint8Array(0), true));
    }
    runLog(ctx, status, 1);
    const headers: Record<string, string[]> = {};
    ctx.res.headers.forEach((v, n) => void (headers[n.toLowerCase()] ??= []).push(v));
    return {
      exit,
      upstream: exit !== null ? null : {
        name: ctx.upstream, path: ctx.req.path, target: ctx.req.target(), headers: ctx.req.headers.list, bodyLimit: ctx.req.bodyLimit,
        body: ctx.req.buffered === null ? null : ctx.req.buffered.toString(),
      },
      status,
      headers,
      header: (name) => headers[name.toLowerCase()]?.[0],
      body,
      requestId: ctx.requestId,
      errors: lines.slice(before).filter((l) => l['level'] === 50),
    };
  }
  return {
    run, lines,
    close: async () => {
      await Promise.all([...upstreams.values()].map(closeUpstream));
      await envs.close();
    },
    dispose: () => disposePlugins({ instances: chains.instances, defs: named, envFor: envs.envFor, log }, DISPOSE_BOUND_MS),
  };
}

/** Header value from a flat list, case-insensitive (first one). */
export function headerOf(list: readonly string[], name: string): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === name.toLowerCase()) return list[i + 1];
  return undefined;
}
