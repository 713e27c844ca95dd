/**
 * Plugin confs and consumer credentials, each checked against its plugin's schema
 * with `validate` and replaced, in the conf, by its copy with defaults filled in:
 * the conf then holds what the plugins will run with (and what `sluice -T` prints).
 * The shared dicts a plugin conf makes its plugin open must be declared, and
 * the upstreams it names defined (upstream-refs.ts).
 */
import type { TSchema } from 'typebox';
import { arr, isObj, obj } from './loose.ts';
import type { Obj } from './loose.ts';
import type { Reporter, Seg } from './reporter.ts';
import type { SchemaRef } from './schema-refs.ts';
import { sharedDictRefs } from './shared-dict-refs.ts';
import { isTemplate, upstreamRefs } from './upstream-refs.ts';
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
    const names = { dicts: obj(c['shared_dicts']), upstreams: obj(c['upstreams']) };
    checkPlugins(c['plugins'], ['plugins'], null, pluginSchemas, names, r);
    arr(c['routes']).forEach((route, i) => {
      if (isObj(route)) checkPlugins(route['plugins'], ['routes', i, 'plugins'], route, pluginSchemas, names, r);
    });
  }
  if (credentialSchemas !== undefined) {
    arr(c['consumers']).forEach((consumer, i) => {
      if (isObj(consumer)) checkCredentials(consumer['credentials'], ['consumers', i, 'credentials'], credentialSchemas, r);
    });
  }
}

/** What plugin confs may name: the conf's shared dicts and upstreams. */
interface Names {
  readonly dicts: Obj;
  readonly upstreams: Obj;
}

/** `route`: the route the plugins are on; null for the global ones, which every route runs. */
function checkPlugins(plugins: unknown, base: Seg[], route: Obj | null, schemas: ReadonlyMap<string, TSchema>, names: Names, r: Reporter): void {
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
    // Upstream names are read loosely, so they are checked alongside the schema's faults, all in one run.
    checkUpstreams(name, upstreamRefs(schema, checked.value, [...base, name]), [...base, name], route, names.upstreams, r);
    if (!checked.ok) {
      r.reportFaults([...base, name], checked.faults);
      continue;
    }
    for (const ref of sharedDictRefs(schema, checked.value, [...base, name])) {
      if (!Object.hasOwn(names.dicts, ref.name)) r.report(ref.path, `shared dict "${ref.name}" is not declared in shared_dicts`);
    }
  }
}

/** A plugin that names upstreams chooses where its route proxies: only a route with `upstream:` has that choice. */
function checkUpstreams(plugin: string, refs: readonly SchemaRef[], at: Seg[], route: Obj | null, upstreams: Obj, r: Reporter): void {
  if (refs.length === 0) return;
  if (route === null) r.report(at, `${plugin} chooses a route's upstream: configure it on routes with upstream:, not globally`, 'key');
  else if (route['upstream'] === undefined) r.report(at, `${plugin} chooses the upstream: only a route with upstream: can carry it`, 'key');
  for (const ref of refs) {
    if (!isTemplate(ref.name) && !Object.hasOwn(upstreams, ref.name)) r.report(ref.path, `upstream "${ref.name}" is not defined`);
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
