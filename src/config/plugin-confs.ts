/**
 * Plugin confs and consumer credentials, each checked against its plugin's schema
 * with `validate` and replaced, in the conf, by its copy with defaults filled in:
 * the conf then holds what the plugins will run with (and what `sluice -T` prints).
 * The shared dicts a plugin conf makes its plugin open must be declared.
 */
import type { TSchema } from 'typebox';
import { arr, isObj, obj } from './loose.ts';
import type { Obj } from './loose.ts';
import type { Reporter, Seg } from './reporter.ts';
import { sharedDictRefs } from './shared-dict-refs.ts';
import { validate } from './validate.ts';

export interface PluginSchemas {
  /** Plugin name -> schema. Given: unknown plugins are errors and plugin confs are checked with defaults filled in. */
  readonly pluginSchemas?: ReadonlyMap<string, TSchema> | undefined;
  /** Plugin name -> schema of one consumer credential; given: every `consumers[].credentials` entry is checked. */
  readonly credentialSchemas?: ReadonlyMap<string, TSchema> | undefined;
}

export function checkPluginConfs(c: Obj, schemas: PluginSchemas, r: Reporter): void {
  const { pluginSchemas, credentialSchemas } = schemas;
  if (pluginSchemas !== undefined) {
    const dicts = obj(c['shared_dicts']);
    checkPlugins(c['plugins'], ['plugins'], pluginSchemas, dicts, r);
    arr(c['routes']).forEach((route, i) => {
      if (isObj(route)) checkPlugins(route['plugins'], ['routes', i, 'plugins'], pluginSchemas, dicts, r);
    });
  }
  if (credentialSchemas !== undefined) {
    arr(c['consumers']).forEach((consumer, i) => {
      if (isObj(consumer)) checkCredentials(consumer['credentials'], ['consumers', i, 'credentials'], credentialSchemas, r);
    });
  }
}

function checkPlugins(plugins: unknown, base: Seg[], schemas: ReadonlyMap<string, TSchema>, dicts: Obj, r: Reporter): void {
  if (!isObj(plugins)) return; // the conf schema reported it
  for (const [name, conf] of Object.entries(plugins)) {
    const schema = schemas.get(name);
    if (schema === undefined) {
      r.report([...base, name], `unknown plugin "${name}"`, 'key');
      continue;
    }
    if (!isObj(conf)) continue; // the conf schema reported it
    const checked = validate(schema, conf);
    plugins[name] = checked.value;
    if (!checked.ok) {
      r.reportFaults([...base, name], checked.faults);
      continue;
    }
    for (const ref of sharedDictRefs(schema, checked.value, [...base, name])) {
      if (!Object.hasOwn(dicts, ref.name)) r.report(ref.path, `shared dict "${ref.name}" is not declared in shared_dicts`);
    }
  }
}

function checkCredentials(creds: unknown, base: Seg[], schemas: ReadonlyMap<string, TSchema>, r: Reporter): void {
  if (!isObj(creds)) return; // the conf schema reported it
  for (const [plugin, list] of Object.entries(creds)) {
    const schema = schemas.get(plugin);
    if (schema === undefined) {
      r.report([...base, plugin], `no plugin "${plugin}" takes consumer credentials`, 'key');
      continue;
    }
    if (!Array.isArray(list)) continue; // the conf schema reported it
    list.forEach((entry, j) => {
      const checked = validate(schema, entry);
      list[j] = checked.value;
      r.reportFaults([...base, plugin, j], checked.faults);
    });
  }
}
