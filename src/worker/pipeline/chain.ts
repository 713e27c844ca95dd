import type { Logger } from 'pino';
import { formatPath } from '../../config/reporter.ts';
import type { RouteConf, SluiceConf } from '../../config/types.ts';
import type { Seg } from '../../config/reporter.ts';
import { GatewayError } from '../../plugins/pdk/errors.ts';
import type { Phase } from '../../plugins/pdk/errors.ts';
import type { Exit, Handlers, LogCtx, MaybePromise, PluginDef, PluginEnv, RequestCtx, ResponseCtx, RouteInfo } from '../../plugins/pdk/types.ts';

export interface Step<F> {
  readonly plugin: string;
  readonly phase: Phase;
  readonly fn: F;
}

export type RequestStep = Step<(ctx: RequestCtx) => MaybePromise<Exit | void>>;
export type HeaderStep = Step<(ctx: ResponseCtx) => void>;
export type BodyStep = Step<(ctx: ResponseCtx, chunk: Uint8Array, eof: boolean) => Uint8Array>;
export type LogStep = Step<(ctx: LogCtx) => void>;

/**
 * A route's handlers per phase, in run order, built once per conf. A phase no
 * plugin uses is null, so the hot path tests one field and allocates nothing.
 */
export interface Chain {
  readonly route: RouteInfo;
  /** rewrite handlers, then access handlers: both may end the request. */
  readonly request: readonly RequestStep[] | null;
  readonly headerFilter: readonly HeaderStep[] | null;
  readonly bodyFilter: readonly BodyStep[] | null;
  readonly log: readonly LogStep[] | null;
  /** The worker's logger, for handler failures. */
  readonly errorLog: Logger;
}

/** One plugin built for one conf (a route's, or the global one shared by every route). */
export interface Instance {
  readonly def: PluginDef;
  readonly handlers: Handlers;
}

export interface ChainOptions {
  readonly conf: SluiceConf;
  readonly plugins: ReadonlyMap<string, PluginDef>;
  readonly envFor: (def: PluginDef) => PluginEnv;
  readonly log: Logger;
}

/**
 * `where`: the plugins map the conf came from (`plugins`, `routes[2].plugins`).
 * `conf` is the master's checked copy (config/plugin-confs.ts: defaults filled
 * in, faults refused before any worker started), so a worker only builds: it
 * never loads the schema validator (typebox/value), which costs a worker
 * thread about 25 MB.
 */
function instantiate(name: string, conf: unknown, where: readonly Seg[], opts: ChainOptions): Instance {
  const def = opts.plugins.get(name);
  if (def === undefined) throw new GatewayError('GW_ERR_UNKNOWN_PLUGIN', `${formatPath(where)}: unknown plugin "${name}"`);
  return { def, handlers: def.create(conf as never, opts.envFor(def)) };
}

/** Higher priority first; ties by name so the order never depends on YAML key order. */
const byPriority = (a: Instance, b: Instance): number => b.def.priority - a.def.priority || (a.def.name < b.def.name ? -1 : 1);

function steps<K extends Phase>(list: readonly Instance[], phase: K): Step<NonNullable<Handlers[K]>>[] {
  const out: Step<NonNullable<Handlers[K]>>[] = [];
  for (const { def, handlers } of list) {
    const fn = handlers[phase];
    // Bound once here so a handler may use `this` and the runner calls a plain function.
    if (fn !== undefined) out.push({ plugin: def.name, phase, fn: fn.bind(handlers) as NonNullable<Handlers[K]> });
  }
  return out;
}

const orNull = <T>(a: readonly T[]): readonly T[] | null => (a.length === 0 ? null : a);

/** A route's chain, or the unrouted one; every phase null when no plugin has it. */
function chainOf(route: RouteInfo, request: readonly RequestStep[], all: readonly Instance[], log: Logger): Chain {
  return {
    route,
    request: orNull(request),
    headerFilter: orNull(steps(all, 'headerFilter')),
    bodyFilter: orNull(steps(all, 'bodyFilter')),
    log: orNull(steps(all, 'log')),
    errorLog: log,
  };
}

export interface Chains {
  /** Per route, in route order. */
  readonly routes: readonly Chain[];
  /**
   * The global plugins for a request answered before or without a route (a
   * 400 for a bad request line, the no-route 404): their rewrite phase (Kong
   * runs global rewrite before the router), header and body filters and log.
   */
  readonly unrouted: Chain;
  /** Every instance built, globals first, for the worker's dispose. */
  readonly instances: readonly Instance[];
}

/** The route name plugins see on a request no route matched. */
export const NO_ROUTE: RouteInfo = Object.freeze({ name: '' });

/**
 * Builds every route's chain: global plugins (top-level `plugins:`) run before
 * route plugins, each group by priority. A plugin configured both globally and
 * on a route runs once, with the route's conf, in the route group (Kong: the
 * most specific conf wins). Global instances are created once and shared.
 */
export function compileChains(opts: ChainOptions): Chains {
  const globals = Object.entries(opts.conf.plugins).map(([name, c]) => instantiate(name, c, ['plugins'], opts)).sort(byPriority);
  const instances: Instance[] = [...globals];
  const routes = opts.conf.routes.map((route: RouteConf, i) => {
    const own = Object.entries(route.plugins).map(([name, c]) => instantiate(name, c, ['routes', i, 'plugins'], opts)).sort(byPriority);
    instances.push(...own);
    const all = [...globals.filter((g) => !(g.def.name in route.plugins)), ...own];
    return chainOf(Object.freeze({ name: route.name }), [...steps(all, 'rewrite'), ...steps(all, 'access')], all, opts.log);
  });
  return { routes, unrouted: chainOf(NO_ROUTE, steps(globals, 'rewrite'), globals, opts.log), instances };
}
