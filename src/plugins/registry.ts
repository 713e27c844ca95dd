import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TSchema } from 'typebox';
import { GatewayError } from './pdk/errors.ts';
import type { PluginDef } from './pdk/types.ts';

export interface PluginRegistry {
  /** Every plugin by YAML key: built-in first, then custom ones. */
  readonly plugins: ReadonlyMap<string, PluginDef>;
  /** The same, name -> schema: what `loadConf` takes as `pluginSchemas`. */
  readonly schemas: ReadonlyMap<string, TSchema>;
  /** Plugins that take consumer credentials, name -> schema of one credential (`credentialSchemas`). */
  readonly credentialSchemas: ReadonlyMap<string, TSchema>;
}

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

const isPluginDef = (v: unknown): v is PluginDef =>
  typeof v === 'object' && v !== null &&
  typeof (v as PluginDef).name === 'string' && typeof (v as PluginDef).priority === 'number' &&
  typeof (v as PluginDef).create === 'function' && typeof (v as PluginDef).schema === 'object';

/**
 * Custom plugins: each subfolder of a `plugin_paths` entry whose `index.ts`
 * exports one definition, named as its folder. Loaded with import(): a new
 * worker thread imports afresh, the master's copy is cached (ESM has no unload).
 */
async function loadCustom(dir: string): Promise<PluginDef[]> {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (err) {
    throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin_paths: cannot read ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const defs: PluginDef[] = [];
  for (const folder of entries) {
    const path = join(dir, folder);
    if (!statSync(path).isDirectory()) continue;
    const file = join(path, 'index.ts');
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin ${file}: ${(err as Error).message}`, { cause: err });
    }
    const found = Object.values(mod).filter(isPluginDef);
    if (found.length !== 1) throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin ${file}: must export exactly one definePlugin(...) value, found ${found.length}`);
    const def = found[0]!;
    if (def.name !== folder) throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin ${file}: name "${def.name}" must equal its folder name "${folder}"`);
    defs.push(def);
  }
  return defs;
}

/**
 * The plugins a conf may name: the built-in ones plus those under each
 * `plugin_paths` directory. A custom plugin may not reuse a built-in name.
 */
export async function buildRegistry(builtins: readonly PluginDef[], pluginPaths: readonly string[]): Promise<PluginRegistry> {
  const plugins = new Map<string, PluginDef>();
  for (const def of builtins) plugins.set(def.name, def);
  for (const dir of pluginPaths) {
    for (const def of await loadCustom(resolve(dir))) {
      if (!NAME.test(def.name)) throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin "${def.name}" in ${dir}: names are kebab-case`);
      if (plugins.has(def.name)) throw new GatewayError('GW_ERR_PLUGIN_LOAD', `plugin "${def.name}" in ${dir}: a plugin with this name is already registered`);
      plugins.set(def.name, def);
    }
  }
  return { plugins, ...schemasOf(plugins.values()) };
}

/** What the master checks plugin confs and consumer credentials with (config/plugin-confs.ts), by plugin name. */
export function schemasOf(defs: Iterable<PluginDef>): Pick<PluginRegistry, 'schemas' | 'credentialSchemas'> {
  const schemas = new Map<string, TSchema>();
  const credentialSchemas = new Map<string, TSchema>();
  for (const def of defs) {
    schemas.set(def.name, def.schema);
    if (def.credentialSchema !== undefined) credentialSchemas.set(def.name, def.credentialSchema);
  }
  return { schemas, credentialSchemas };
}
