import type { Socket } from 'node:net';
import pino from 'pino';
import { Value } from 'typebox/value';
import type { Exit, Ids, PluginDef } from '../../src/plugins/pdk/index.ts';
import { Exchange } from '../../src/worker/exchange.ts';
import { compileChains } from '../../src/worker/pipeline/chain.ts';
import { PluginCtx } from '../../src/worker/pipeline/ctx.ts';
import { createPluginEnvs } from '../../src/worker/pipeline/env.ts';
import { runBodyFilter, runHeaderFilter, runLog, runRequestPhases } from '../../src/worker/pipeline/run.ts';
import type { ConsumerConf, RouteConf, SluiceConf } from '../../src/config/types.ts';
import { compileConsumers } from '../../src/worker/pipeline/consumers.ts';

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

/** Schema check as the master does it: defaults first, then every fault. */
export function checkConf(def: PluginDef, conf: unknown): ConfCheck {
  const filled = Value.Default(def.schema, structuredClone(conf));
  const errors = [...Value.Errors(def.schema, filled)].map((e) => `${e.instancePath}: ${e.message}`);
  return { ok: errors.length === 0, conf: filled, errors };
}

export interface FakeRequest {
  readonly method?: string;
  readonly path?: string;
  readonly query?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly client?: string;
  /** What the upstream answers when plugins let the request through. */
  readonly upstream?: { status?: number; headers?: Record<string, string>; body?: string[] };
}

export interface RunResult {
  readonly exit: Exit | null;
  /** The request as sent upstream (null when a plugin ended it). */
  readonly upstream: { path: string; target: string; headers: readonly string[]; bodyLimit: number } | null;
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
  /** Every pino line the plugins and the runner wrote. */
  readonly lines: Record<string, unknown>[];
}

export interface HarnessOptions {
  readonly now?: () => number;
  readonly ids?: Ids;
  readonly zones?: Record<string, SharedArrayBuffer>;
  /** Plugins configured globally (top-level `plugins:`), name -> conf. */
  readonly globals?: Record<string, unknown>;
  /** `consumers:` as in the conf (resolved shape). */
  readonly consumers?: readonly ConsumerConf[];
}

const toRaw = (h: Record<string, string | string[]>): string[] =>
  Object.entries(h).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v]));

/** `plugins`: the route's plugins (name -> conf); `defs`: the definitions they may name. */
export function harness(defs: readonly PluginDef[], plugins: Record<string, unknown>, opts: HarnessOptions = {}): Harness {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const envs = createPluginEnvs({
    log, workerId: 1, zones: opts.zones ?? {}, consumers: compileConsumers(opts.consumers ?? []),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.ids === undefined ? {} : { ids: opts.ids }),
  });
  const route = { name: 'test', plugins } as unknown as RouteConf;
  const conf = { plugins: opts.globals ?? {}, routes: [route] } as unknown as SluiceConf;
  const chain = compileChains({ conf, plugins: new Map(defs.map((d) => [d.name, d])), envFor: envs.envFor, log })[0] ?? null;

  async function run(r: FakeRequest = {}): Promise<RunResult> {
    const before = lines.length;
    const socket = { remoteAddress: r.client ?? '127.0.0.1', bytesWritten: 0 } as unknown as Socket;
    const x = new Exchange(0, r.method ?? 'GET', socket, r.path ?? '/');
    if (chain === null) throw new Error('no plugin configured');
    const ctx = new PluginCtx(chain, x, toRaw(r.headers ?? {}), r.path ?? '/', r.query ?? '');
    x.ctx = ctx;
    const exit = chain.request === null ? null : await runRequestPhases(ctx, chain.request, 0);
    let status: number;
    let body = '';
    if (exit !== null) {
      status = exit.status;
      const list = ctx.startResponse(status, toRaw(exit.headers ?? {}));
      if (typeof exit.body === 'object' && !(exit.body instanceof Uint8Array) && !list.has('content-type')) list.set('content-type', 'application/json');
      runHeaderFilter(ctx);
      body = exit.body === undefined ? '' : typeof exit.body === 'string' ? exit.body : JSON.stringify(exit.body);
    } else {
      const up = r.upstream ?? {};
      status = up.status ?? 200;
      ctx.startResponse(status, toRaw(up.headers ?? {}));
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
      upstream: exit !== null ? null : { path: ctx.req.path, target: ctx.req.target(), headers: ctx.req.headers.list, bodyLimit: ctx.req.bodyLimit },
      status,
      headers,
      header: (name) => headers[name.toLowerCase()]?.[0],
      body,
      requestId: ctx.requestId,
      errors: lines.slice(before).filter((l) => l['level'] === 50),
    };
  }
  return { run, lines };
}

/** Header value from a flat list, case-insensitive (first one). */
export function headerOf(list: readonly string[], name: string): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() === name.toLowerCase()) return list[i + 1];
  return undefined;
}
