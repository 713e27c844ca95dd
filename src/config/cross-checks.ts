/**
 * The checks of the core conf a schema cannot express: names defined twice,
 * references to undefined names, and the one target a route takes. They run on
 * the conf with defaults filled in even when the schema found faults elsewhere,
 * so that `sluice -t` lists everything at once (hence the loose reads).
 */
import { parseHostPort } from './addresses.ts';
import { arr, isObj, obj } from './loose.ts';
import type { Obj } from './loose.ts';
import { where } from './reporter.ts';
import type { Reporter, Seg } from './reporter.ts';

export function crossCheck(c: Obj, r: Reporter): void {
  checkListen(arr(obj(c['server'])['listen']), r);
  firstOfEach(arr(c['consumers']), 'username', 'consumer', ['consumers'], r);
  checkRoutes(arr(c['routes']), obj(c['upstreams']), r);
}

function checkListen(listen: unknown[], r: Reporter): void {
  const seen = new Set<string>();
  listen.forEach((v, i) => {
    const address = typeof v === 'string' ? v : isObj(v) && typeof v['address'] === 'string' ? v['address'] : null;
    const at: Seg[] = typeof v === 'string' ? ['server', 'listen', i] : ['server', 'listen', i, 'address'];
    if (isObj(v) && v['http2'] === true && v['tls'] !== true) {
      r.report(['server', 'listen', i, 'http2'], 'http2 needs tls: HTTP/2 is offered by ALPN on a TLS listener (no cleartext h2c)');
    }
    const hp = address === null ? null : parseHostPort(address, 0);
    if (hp === null || typeof hp === 'string') return;
    const id = `${hp.host}|${hp.port}`;
    if (seen.has(id)) r.report(at, `duplicate listen address "${address!}"`);
    seen.add(id);
  });
}

function checkRoutes(routes: unknown[], upstreams: Obj, r: Reporter): void {
  firstOfEach(routes, 'name', 'route name', ['routes'], r);
  routes.forEach((raw, i) => {
    if (!isObj(raw)) return;
    const base: Seg[] = ['routes', i];
    const targets = (['upstream', 'return', 'root'] as const).filter((k) => raw[k] !== undefined);
    if (targets.length === 0) r.report(base, 'a route needs one of upstream, return or root');
    if (targets.length > 1) r.report(base, `a route takes only one of upstream, return or root, not ${targets.join(' and ')}`);
    if (raw['websocket'] === true && raw['upstream'] === undefined && targets.length > 0) {
      r.report([...base, 'websocket'], `websocket needs an upstream route: a ${targets[0]!} route has nothing to tunnel to`);
    }
    const upstream = raw['upstream'];
    if (typeof upstream === 'string' && !Object.hasOwn(upstreams, upstream)) r.report([...base, 'upstream'], `upstream "${upstream}" is not defined`);
  });
}

/** Items of a list whose `key` repeats an earlier one's: reported at the second, naming the first. */
function firstOfEach(list: unknown[], key: string, what: string, base: Seg[], r: Reporter): void {
  const firstAt = new Map<string, number>();
  list.forEach((item, i) => {
    const name = isObj(item) ? item[key] : undefined;
    if (typeof name !== 'string' || name === '') return;
    const first = firstAt.get(name);
    if (first === undefined) {
      firstAt.set(name, i);
      return;
    }
    const loc = r.exactLocOf([...base, first, key]);
    r.report([...base, i, key], `duplicate ${what} "${name}"${loc ? ` (first defined at ${where(loc)})` : ''}`);
  });
}
