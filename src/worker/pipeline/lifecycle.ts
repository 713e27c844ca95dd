import type { Logger } from 'pino';
import type { SluiceConf } from '../../config/types.ts';
import type { PluginDef, PluginEnv } from '../../plugins/pdk/types.ts';
import type { Instance } from './chain.ts';

/**
 * The plugins' per-worker lifecycle (APISIX's init/destroy, Kong's
 * init_worker): `init` once per worker for every plugin the conf names, before
 * any `create`; on exit every instance's `dispose`, then every plugin's, so
 * queued data (syslog batches) is sent and shared clients (Redis) are closed
 * before the thread goes.
 */

/** The plugins the conf names, globally or on a route, once each and in a stable order. */
export function namedPlugins(conf: SluiceConf, plugins: ReadonlyMap<string, PluginDef>): PluginDef[] {
  const names = new Set(Object.keys(conf.plugins));
  for (const route of conf.routes) for (const name of Object.keys(route.plugins)) names.add(name);
  const out: PluginDef[] = [];
  // An unknown name is refused where the chain is built, with its position.
  for (const name of [...names].sort()) {
    const def = plugins.get(name);
    if (def !== undefined) out.push(def);
  }
  return out;
}

/** A failing init fails the worker's start, as a bad conf does. */
export async function initPlugins(defs: readonly PluginDef[], envFor: (def: PluginDef) => PluginEnv): Promise<void> {
  for (const def of defs) if (def.init !== undefined) await def.init(envFor(def));
}

async function settle(log: Logger, what: string, plugin: string, fn: () => unknown): Promise<void> {
  try {
    await fn();
  } catch (err) {
    log.error({ err, plugin }, `plugin ${what} failed`);
  }
}

/**
 * Instances first (they may still use what their plugin shares), then the
 * plugins. Bounded by `boundMs` (worker_shutdown_timeout): a dispose that
 * hangs on a dead server is logged and abandoned, never waited out.
 */
export interface Built {
  readonly instances: readonly Instance[];
  readonly defs: readonly PluginDef[];
  readonly envFor: (def: PluginDef) => PluginEnv;
  readonly log: Logger;
}

export async function disposePlugins({ instances, defs, envFor, log }: Built, boundMs: number): Promise<void> {
  const all = (async () => {
    await Promise.all(instances.map((i) => (i.handlers.dispose === undefined ? null : settle(log, 'instance dispose', i.def.name, i.handlers.dispose))));
    await Promise.all(defs.map((d) => (d.dispose === undefined ? null : settle(log, 'dispose', d.name, () => d.dispose!(envFor(d))))));
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(resolve, boundMs, 'late');
  });
  const outcome = await Promise.race([all.then(() => 'done' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') log.warn({ timeout_ms: boundMs }, 'plugin dispose did not finish within worker_shutdown_timeout');
}
