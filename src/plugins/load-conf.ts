import { resolve } from 'node:path';
import { checkConf, readConf } from '../config/load.ts';
import type { LoadOptions, LoadResult } from '../config/load.ts';
import { arr } from '../config/loose.ts';
import { loadPluginRegistry, pluginNamesIn } from './index.ts';

/**
 * loadConf with plugin confs checked: `plugin_paths` lives in the conf, so the
 * registry is built from the conf as read, then the whole conf is checked in
 * one pass with every plugin's schema (unknown plugins refused, defaults filled,
 * faults as `file:line:col: path: message`) and every consumer credential
 * against its auth plugin's credential schema, next to the core faults. A custom
 * plugin that cannot be loaded is a fault at `plugin_paths`, like any other.
 */
export async function loadConfWithPlugins(file: string, opts: Omit<LoadOptions, 'pluginSchemas' | 'credentialSchemas'> = {}): Promise<LoadResult> {
  const read = readConf(file);
  if (!read.complete) return checkConf(read, opts);
  const prefix = resolve(opts.prefix ?? process.cwd());
  const pluginPaths = arr(read.data['plugin_paths']).flatMap((p) => (typeof p === 'string' ? [resolve(prefix, p)] : []));
  let registry;
  try {
    registry = await loadPluginRegistry(pluginPaths, pluginNamesIn(read.data));
  } catch (err) {
    read.reporter.report(['plugin_paths'], (err as Error).message);
    return checkConf(read, opts);
  }
  return checkConf(read, { ...opts, pluginSchemas: registry.schemas, credentialSchemas: registry.credentialSchemas });
}
