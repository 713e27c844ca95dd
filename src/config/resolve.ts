/**
 * From the merged conf as written (defaults already filled in by the schema) to the
 * SluiceConf every process uses: durations in ms, sizes in bytes, addresses parsed,
 * paths absolute, `auto` and `off` resolved, plus the checks a schema cannot express
 * (references, duplicates, regexes, CIDRs). It reads the data defensively: a value of
 * the wrong type was already reported by the schema, so here it is only skipped.
 */
import { METHODS } from 'node:http';
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { checkCidr, checkRouteHost, parseHostPort } from './addresses.ts';
import { where } from './reporter.ts';
import type { Reporter, Seg } from './reporter.ts';
import { checkSchema } from './schema-issues.ts';
import { sharedDictRefs } from './shared-dict-refs.ts';
import type {
  ActiveHealthcheckConf,
  Algorithm,
  ConsumerConf,
  ListenAddr,
  LogLevel,
  PassiveHealthcheckConf,
  RealIpConf,
  ReturnConf,
  RouteConf,
  ServerConf,
  SluiceConf,
  TargetConf,
  UpstreamConf,
} from './types.ts';
import { parseDuration, parseSize } from './units.ts';

export interface ResolveOptions {
  readonly file: string;
  readonly prefix: string;
  readonly pluginSchemas?: ReadonlyMap<string, TSchema> | undefined;
  readonly credentialSchemas?: ReadonlyMap<string, TSchema> | undefined;
}

/** What plugin confs are checked against besides their schema: the zones the conf declares. */
interface PluginCheck extends ResolveOptions {
  readonly dicts: Readonly<Record<string, number>>;
}

type Obj = Record<string, unknown>;

// nginx refuses shared zones smaller than 8 pages; shdict needs room for its header and slots too.
const MIN_ZONE = 8 * 1024;
const HASH_ON = /^(ip|consumer|user_id|company_id|uri|(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

export function resolveConf(data: Obj, opts: ResolveOptions, r: Reporter): SluiceConf {
  const at = (p: string) => (isAbsolute(p) ? p : resolvePath(opts.prefix, p));
  const errorLog = obj(data['error_log']);
  const errorPath = str(errorLog['path']) ?? 'stderr';
  const accessLog = obj(data['access_log']);
  const accessPath = str(accessLog['path']) ?? 'off';
  const upstreams = resolveUpstreams(obj(data['upstreams']), r);
  const sharedDicts = resolveSharedDicts(obj(data['shared_dicts']), r);
  const check: PluginCheck = { ...opts, dicts: sharedDicts };
  return {
    file: opts.file,
    prefix: opts.prefix,
    worker_processes: data['worker_processes'] === 'auto' ? availableParallelism() : num(data['worker_processes'], 1),
    worker_shutdown_timeout: duration(data['worker_shutdown_timeout'], ['worker_shutdown_timeout'], r),
    pid: at(str(data['pid']) ?? 'logs/sluice.pid'),
    plugin_paths: arr(data['plugin_paths']).flatMap((p) => (typeof p === 'string' ? [at(p)] : [])),
    error_log: { path: errorPath === 'stderr' ? errorPath : at(errorPath), level: (str(errorLog['level']) ?? 'info') as LogLevel },
    access_log: {
      path: accessPath === 'off' || accessPath === 'stdout' ? accessPath : at(accessPath),
      buffer: logBuffer(accessLog['buffer'], r),
      flush: duration(accessLog['flush'], ['access_log', 'flush'], r),
    },
    shared_dicts: sharedDicts,
    server: resolveServer(obj(data['server']), r),
    status: { listen: resolveStatusListen(obj(data['status'])['listen'], r) },
    upstreams,
    consumers: resolveConsumers(arr(data['consumers']), opts, r),
    plugins: resolvePlugins(data['plugins'], ['plugins'], check, r),
    routes: resolveRoutes(arr(data['routes']), upstreams, at, check, r),
  };
}

// Past a megabyte a buffer only delays lines (a write is one syscall either way), and a crash loses more.
const MAX_LOG_BUFFER = 1024 * 1024;

function logBuffer(v: unknown, r: Reporter): number {
  const bytes = size(v, ['access_log', 'buffer'], r) ?? 0;
  if (bytes > MAX_LOG_BUFFER) r.report(['access_log', 'buffer'], 'access log buffer is too large: at most 1m');
  return bytes;
}

function resolveSharedDicts(dicts: Obj, r: Reporter): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(dicts)) {
    const bytes = size(v, ['shared_dicts', name], r);
    if (bytes !== null && bytes < MIN_ZONE) r.report(['shared_dicts', name], `shared dict is too small: at least ${MIN_ZONE / 1024}k`);
    out[name] = bytes ?? 0;
  }
  return out;
}

function resolveServer(s: Obj, r: Reporter): ServerConf {
  const listen: ListenAddr[] = [];
  const seen = new Set<string>();
  arr(s['listen']).forEach((v, i) => {
    const addr = hostPort(v, ['server', 'listen', i], 0, r);
    if (addr === null) return;
    const id = `${addr.host}|${addr.port}`;
    if (seen.has(id)) r.report(['server', 'listen', i], `duplicate listen address "${String(v)}"`);
    seen.add(id);
    listen.push(addr);
  });
  return {
    listen,
    client_max_body_size: size(s['client_max_body_size'], ['server', 'client_max_body_size'], r) ?? 0,
    client_header_timeout: duration(s['client_header_timeout'], ['server', 'client_header_timeout'], r),
    client_body_timeout: duration(s['client_body_timeout'], ['server', 'client_body_timeout'], r),
    keepalive_timeout: duration(s['keepalive_timeout'], ['server', 'keepalive_timeout'], r),
    real_ip: resolveRealIp(s['real_ip'], r),
  };
}

function resolveRealIp(v: unknown, r: Reporter): RealIpConf | null {
  if (!isObj(v)) return null;
  const trusted: string[] = [];
  arr(v['trusted']).forEach((t, i) => {
    if (typeof t !== 'string') return;
    const why = checkCidr(t);
    if (why !== null) r.report(['server', 'real_ip', 'trusted', i], why);
    trusted.push(t);
  });
  return { header: str(v['header']) ?? 'X-Forwarded-For', trusted, recursive: v['recursive'] === true };
}

function resolveStatusListen(v: unknown, r: Reporter): ListenAddr | null {
  if (v === null || v === 'off') return null;
  return hostPort(v, ['status', 'listen'], 0, r);
}

function resolveUpstreams(ups: Obj, r: Reporter): Record<string, UpstreamConf> {
  const out: Record<string, UpstreamConf> = {};
  for (const [name, raw] of Object.entries(ups)) {
    const u = obj(raw);
    const base: Seg[] = ['upstreams', name];
    const targets: TargetConf[] = [];
    arr(u['targets']).forEach((t, i) => {
      const address = typeof t === 'string' ? t : str(obj(t)['address']);
      const addrSegs: Seg[] = typeof t === 'string' ? [...base, 'targets', i] : [...base, 'targets', i, 'address'];
      const hp = hostPort(address, addrSegs, 1, r);
      if (hp === null || address === undefined) return;
      targets.push({ address, host: hp.host, port: hp.port, weight: typeof t === 'string' ? 1 : num(obj(t)['weight'], 1) });
    });
    const hashOn = str(u['hash_on']) ?? 'ip';
    if (!HASH_ON.test(hashOn)) {
      r.report([...base, 'hash_on'], `must be ip, consumer, user_id, company_id, uri, header:NAME or cookie:NAME`);
    }
    const hc = obj(u['healthcheck']);
    out[name] = {
      name,
      algorithm: (str(u['algorithm']) ?? 'round-robin') as Algorithm,
      hash_on: hashOn,
      targets,
      keepalive: num(u['keepalive'], 64),
      connect_timeout: duration(u['connect_timeout'], [...base, 'connect_timeout'], r),
      send_timeout: duration(u['send_timeout'], [...base, 'send_timeout'], r),
      read_timeout: duration(u['read_timeout'], [...base, 'read_timeout'], r),
      retries: num(u['retries'], 1),
      host_header: str(u['host_header']) ?? null,
      healthcheck: {
        active: resolveActive(hc['active'], [...base, 'healthcheck', 'active'], r),
        passive: resolvePassive(hc['passive'], [...base, 'healthcheck', 'passive'], r),
      },
    };
  }
  return out;
}

function resolveActive(v: unknown, base: Seg[], r: Reporter): ActiveHealthcheckConf | null {
  if (!isObj(v)) return null;
  return {
    path: str(v['path']) ?? '/',
    interval: duration(v['interval'], [...base, 'interval'], r),
    timeout: duration(v['timeout'], [...base, 'timeout'], r),
    healthy: num(v['healthy'], 2),
    unhealthy: num(v['unhealthy'], 3),
  };
}

function resolvePassive(v: unknown, base: Seg[], r: Reporter): PassiveHealthcheckConf | null {
  if (!isObj(v)) return null;
  return { max_fails: num(v['max_fails'], 3), fail_timeout: duration(v['fail_timeout'], [...base, 'fail_timeout'], r) };
}

function resolveConsumers(list: unknown[], opts: ResolveOptions, r: Reporter): ConsumerConf[] {
  const firstAt = new Map<string, number>();
  return list.filter(isObj).map((c, i) => {
    const username = str(c['username']) ?? '';
    const first = firstAt.get(username);
    if (first !== undefined) duplicate(r, ['consumers', first, 'username'], ['consumers', i, 'username'], `consumer "${username}"`);
    else if (username !== '') firstAt.set(username, i);
    return {
      username,
      attributes: stringMap(obj(c['attributes'])),
      credentials: resolveCredentials(obj(c['credentials']), ['consumers', i, 'credentials'], opts, r),
    };
  });
}

/** Each auth plugin's credentials, checked against its credential schema with defaults filled in. */
function resolveCredentials(creds: Obj, base: Seg[], opts: ResolveOptions, r: Reporter): ConsumerConf['credentials'] {
  if (opts.credentialSchemas === undefined) return structuredClone(creds) as ConsumerConf['credentials'];
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const [plugin, list] of Object.entries(creds)) {
    const schema = opts.credentialSchemas.get(plugin);
    if (schema === undefined) {
      r.report([...base, plugin], `no plugin "${plugin}" takes consumer credentials`, 'key');
      continue;
    }
    if (!Array.isArray(list)) continue; // the conf schema reported it
    out[plugin] = list.map((entry, j) => {
      const filled = Value.Default(schema, structuredClone(entry)) as Record<string, unknown>;
      checkSchema(schema, filled, [...base, plugin, j], r);
      return filled;
    });
  }
  return out;
}

function resolvePlugins(v: unknown, base: Seg[], opts: PluginCheck, r: Reporter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, conf] of Object.entries(obj(v))) {
    if (opts.pluginSchemas === undefined) {
      out[name] = structuredClone(conf);
      continue;
    }
    const schema = opts.pluginSchemas.get(name);
    if (schema === undefined) {
      r.report([...base, name], `unknown plugin "${name}"`, 'key');
      continue;
    }
    if (!isObj(conf)) continue; // the conf schema reported it
    // Defaults first: the plugin gets (and is checked with) the conf it will run with.
    const filled = Value.Default(schema, structuredClone(conf));
    checkSchema(schema, filled, [...base, name], r);
    for (const ref of sharedDictRefs(schema, filled, [...base, name])) {
      if (!Object.hasOwn(opts.dicts, ref.name)) r.report(ref.path, `shared dict "${ref.name}" is not declared in shared_dicts`);
    }
    out[name] = filled;
  }
  return out;
}

function resolveRoutes(
  list: unknown[],
  upstreams: Record<string, UpstreamConf>,
  at: (p: string) => string,
  opts: PluginCheck,
  r: Reporter,
): RouteConf[] {
  const firstAt = new Map<string, number>();
  const out: RouteConf[] = [];
  list.forEach((raw, i) => {
    if (!isObj(raw)) return;
    const base: Seg[] = ['routes', i];
    const name = str(raw['name']) ?? '';
    const first = firstAt.get(name);
    if (first !== undefined) duplicate(r, ['routes', first, 'name'], [...base, 'name'], `route name "${name}"`);
    else if (name !== '') firstAt.set(name, i);

    const hosts = arr(raw['hosts']).flatMap((h, j) => {
      if (typeof h !== 'string') return [];
      const why = checkRouteHost(h);
      if (why !== null) r.report([...base, 'hosts', j], why);
      return [h.toLowerCase()];
    });
    const paths = arr(raw['paths']).flatMap((p, j) => {
      if (typeof p !== 'string') return [];
      const why = checkRoutePath(p);
      if (why !== null) r.report([...base, 'paths', j], why);
      return [p];
    });
    const methods = arr(raw['methods']).flatMap((m, j) => {
      if (typeof m !== 'string') return [];
      const up = m.toUpperCase();
      if (!METHODS.includes(up)) r.report([...base, 'methods', j], `unknown HTTP method "${m}"`);
      return [up];
    });

    const targets = (['upstream', 'return', 'root'] as const).filter((k) => raw[k] !== undefined);
    if (targets.length === 0) r.report(base, 'a route needs one of upstream, return or root');
    if (targets.length > 1) r.report(base, `a route takes only one of upstream, return or root, not ${targets.join(' and ')}`);
    const upstream = str(raw['upstream']) ?? null;
    if (upstream !== null && !Object.hasOwn(upstreams, upstream)) r.report([...base, 'upstream'], `upstream "${upstream}" is not defined`);
    const root = str(raw['root']);

    out.push({
      name,
      hosts,
      paths,
      methods,
      strip_path: raw['strip_path'] === true,
      preserve_host: raw['preserve_host'] === true,
      upstream,
      return: resolveReturn(raw['return']),
      root: root === undefined ? null : at(root),
      plugins: resolvePlugins(raw['plugins'], [...base, 'plugins'], opts, r),
    });
  });
  return out;
}

function resolveReturn(v: unknown): ReturnConf | null {
  if (!isObj(v)) return null;
  return { status: num(v['status'], 200), body: str(v['body']) ?? '', headers: stringMap(obj(v['headers'])) };
}

/** nginx location forms: `/prefix`, `= /exact`, `^~ /prefix`, `~ regex`, `~* regex`. */
function checkRoutePath(p: string): string | null {
  const m = /^(=|\^~|~\*|~)\s+(.*)$/.exec(p);
  const modifier = m?.[1];
  const rest = m === null ? p : (m[2] as string);
  if (modifier === '~' || modifier === '~*') {
    if (rest === '') return 'empty regex';
    try {
      new RegExp(rest, modifier === '~*' ? 'i' : '');
    } catch (err) {
      return `bad regex: ${(err as Error).message}`;
    }
    return null;
  }
  if (!rest.startsWith('/')) {
    return m === null && /^(=|\^~|~\*|~)\S/.test(p)
      ? `a modifier is followed by a space, e.g. "${p.replace(/^(=|\^~|~\*|~)/, '$1 ')}"`
      : `path must start with "/" (or use a modifier: = /exact, ^~ /prefix, ~ regex, ~* regex)`;
  }
  return null;
}

function duplicate(r: Reporter, first: Seg[], second: Seg[], what: string): void {
  const loc = r.exactLocOf(first);
  r.report(second, `duplicate ${what}${loc ? ` (first defined at ${where(loc)})` : ''}`);
}

function hostPort(v: unknown, segs: Seg[], minPort: 0 | 1, r: Reporter): ListenAddr | null {
  if (typeof v !== 'string') return null;
  const hp = parseHostPort(v, minPort);
  if (typeof hp === 'string') {
    r.report(segs, hp);
    return null;
  }
  return hp;
}

// Numbers are left to the schema (only 0 for durations, integers for sizes): one message per fault.
function duration(v: unknown, segs: Seg[], r: Reporter): number {
  if (typeof v !== 'string') return 0;
  try {
    return parseDuration(v);
  } catch (err) {
    r.report(segs, (err as Error).message);
    return 0;
  }
}

/** Bytes, or null when the value is not a size (reported here, or by the schema for a wrong type). */
function size(v: unknown, segs: Seg[], r: Reporter): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  try {
    return parseSize(v);
  } catch (err) {
    r.report(segs, (err as Error).message);
    return null;
  }
}

function stringMap(o: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown, fallback: number): number {
  return typeof v === 'number' ? v : fallback;
}
