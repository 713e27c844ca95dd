import { loadConf } from '../config/load.ts';
import type { LoadOptions, LoadResult } from '../config/load.ts';
import { loadPluginRegistry } from './index.ts';

/**
 * loadConf with plugin confs checked: `plugin_paths` lives in the conf, so the
 * conf is read once to find them, the registry is built, and the conf is read
 * again with every plugin's schema (unknown plugins refused, defaults filled,
 * faults as `file:line:col: path: message`) and every consumer credential
 * checked against its auth plugin's credential schema. A custom plugin that cannot be
 * loaded is reported as an issue on the conf file, like any other fault.
 */
export async function loadConfWithPlugins(file: string, opts: Omit<LoadOptions, 'pluginSchemas'> = {}): Promise<LoadResult> {
  const first = loadConf(file, opts);
  if (!first.ok) return first;
  let registry;
  try {
    registry = await loadPluginRegistry(first.conf.plugin_paths);
  } catch (err) {
    return { ok: false, issues: [{ file: first.conf.file, line: 1, col: 1, path: 'plugin_paths', message: (err as Error).message }] };
  }
  return loadConf(file, { ...opts, pluginSchemas: registry.schemas, credentialSchemas: registry.credentialSchemas });
}
