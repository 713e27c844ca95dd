import { arr, isObj, obj } from '../config/loose.ts';
import type { Obj } from '../config/loose.ts';
import type { PluginDef } from './pdk/types.ts';
import { buildRegistry } from './registry.ts';
import type { PluginRegistry } from './registry.ts';

export type { PluginRegistry } from './registry.ts';

/**
 * The built-in plugins, listed by hand (no directory scanning): what ships is
 * what is written here. Folder name = `name` = YAML key (a unit test checks).
 * Each is imported only when a conf names it, so a conf without jwt never
 * loads jose, one without rate-limiting's redis policy never loads ioredis,
 * and the master's `-t` and every worker pay only for what the conf uses.
 */
export const BUILTIN_PLUGINS: ReadonlyMap<string, () => Promise<PluginDef>> = new Map<string, () => Promise<PluginDef>>([
  ['basic-auth', async () => (await import('./basic-auth/index.ts')).basicAuth],
  ['correlation-id', async () => (await import('./correlation-id/index.ts')).correlationId],
  ['cors', async () => (await import('./cors/index.ts')).cors],
  ['forward-auth', async () => (await import('./forward-auth/index.ts')).forwardAuth],
  ['ip-restriction', async () => (await import('./ip-restriction/index.ts')).ipRestriction],
  ['jwt', async () => (await import('./jwt/index.ts')).jwt],
  ['key-auth', async () => (await import('./key-auth/index.ts')).keyAuth],
  ['limit-conn', async () => (await import('./limit-conn/index.ts')).limitConn],
  ['limit-req', async () => (await import('./limit-req/index.ts')).limitReq],
  ['proxy-cache', async () => (await import('./proxy-cache/index.ts')).proxyCache],
  ['rate-limiting', async () => (await import('./rate-limiting/index.ts')).rateLimiting],
  ['request-size-limiting', async () => (await import('./request-size-limiting/index.ts')).requestSizeLimiting],
  ['request-termination', async () => (await import('./request-termination/index.ts')).requestTermination],
  ['request-transformer', async () => (await import('./request-transformer/index.ts')).requestTransformer],
  ['request-validation', async () => (await import('./request-validation/index.ts')).requestValidation],
  ['response-transformer', async () => (await import('./response-transformer/index.ts')).responseTransformer],
  ['syslog', async () => (await import('./syslog/index.ts')).syslog],
  ['traffic-split', async () => (await import('./traffic-split/index.ts')).trafficSplit],
] as [string, () => Promise<PluginDef>][]);

/** Every built-in plugin, loaded (tests and benches that need them all). */
export const loadAllBuiltins = (): Promise<PluginDef[]> => Promise.all([...BUILTIN_PLUGINS.values()].map((load) => load()));

/**
 * The plugin names a conf uses, read loosely (the master reads the conf
 * before it is checked): the global and route `plugins` keys, and the
 * consumers' `credentials` keys, whose auth plugin checks them.
 */
export function pluginNamesIn(c: Obj): Set<string> {
  const names = new Set(Object.keys(obj(c['plugins'])));
  for (const r of arr(c['routes'])) if (isObj(r)) for (const n of Object.keys(obj(r['plugins']))) names.add(n);
  for (const u of arr(c['consumers'])) if (isObj(u)) for (const n of Object.keys(obj(u['credentials']))) names.add(n);
  return names;
}

/**
 * The plugins a conf may use: the built-in ones it names (`names`, from
 * pluginNamesIn) plus the custom ones under `plugin_paths` (already absolute
 * in a resolved conf). A name neither built in nor custom stays unknown, and
 * the conf check refuses it. The master passes `.schemas` to loadConf;
 * workers pass `.plugins` to their pipeline.
 */
export async function loadPluginRegistry(pluginPaths: readonly string[], names: ReadonlySet<string>): Promise<PluginRegistry> {
  const builtins = await Promise.all([...names].flatMap((n) => {
    const load = BUILTIN_PLUGINS.get(n);
    return load === undefined ? [] : [load()];
  }));
  return buildRegistry(builtins, pluginPaths);
}
