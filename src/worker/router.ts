import type { RouteConf } from '../config/types.ts';
import { valueMatcher } from '../plugins/pdk/value-match.ts';

/**
 * Route choice, compiled once per conf. Paths use nginx location modifiers and
 * nginx's real precedence (ngx_http_core_find_location), which is not quite
 * "exact, then longest prefix, then regexes":
 *
 *   1. an exact (`= /x`) path equal to the request path wins;
 *   2. otherwise the longest matching prefix (`/x` or `^~ /x`, plain string prefix,
 *      so `/echo` matches `/echoes`) is remembered; if it is `^~`, it wins;
 *   3. otherwise the regexes (`~ re`, `~* re` case-insensitive) are tried in conf
 *      order and the first match wins, even over a longer plain prefix;
 *   4. otherwise the remembered longest prefix wins.
 *
 * The method is part of candidate selection: a route that does not allow the
 * method is invisible, so a GET-only and a POST-only `/api` can coexist. A route
 * listing GET also allows HEAD (nginx limit_except). A route without `paths`
 * behaves as the prefix `/`.
 *
 * Headers (`headers: { X-Tenant: [acme] }`) narrow a route as methods do: it is
 * invisible unless the request has each named header at one of its values (exact,
 * or `~ regex` matched against the whole value). Among routes with the same path,
 * the one with more header conditions is tried first (Kong: the route with more
 * matching criteria wins), so a tenant's route beats the shared one on its path
 * and conf order decides the rest; paths still decide first, by the rules above.
 *
 * Hosts narrow the candidates like server_name, except that an empty result falls
 * through: routes naming the exact host first, then those whose `*.suffix`
 * wildcards match (longest suffix first; `*.example.org` matches
 * `a.b.example.org`, not `example.org`), then routes without hosts.
 *
 * Prefixes live in a radix tree keyed by characters, so a lookup costs one step
 * per branching point along the request path, whatever the number of routes
 * (bench/micro/router.bench.ts compares it with a linear scan).
 */

export interface RouteMatch {
  readonly route: RouteConf;
  /** Position of the route in the conf's `routes`. */
  readonly index: number;
  /** The path to send upstream: `strip_path` removes the matched part. */
  readonly upstreamPath: string;
}

/** The request's headers as node gives them: names in lower case. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface Router {
  /** `headers` may be left out by callers that route without them (a route with `headers` then never matches). */
  match(method: string, host: string | undefined, path: string, headers?: RequestHeaders): RouteMatch | null;
}

/** One `headers` entry: the lower-case name and the test of the values it accepts. */
interface HeaderRule {
  readonly name: string;
  readonly accepts: (value: string) => boolean;
}

type Kind = 'exact' | 'prefix' | 'regex';

interface Candidate {
  readonly route: RouteConf;
  readonly index: number;
  readonly kind: Kind;
  /** null: any method. */
  readonly methods: ReadonlySet<string> | null;
  /** The exact path or prefix; '' for regexes. */
  readonly text: string;
  /** `^~`: a longest-prefix match that skips the regexes. */
  readonly stopsRegex: boolean;
  readonly regex: RegExp | null;
  /** null: any headers. */
  readonly headers: readonly HeaderRule[] | null;
}

/** Radix tree node: `label` is the edge from the parent, children keyed by their label's first char. */
interface PrefixNode {
  label: string;
  readonly children: Map<number, PrefixNode>;
  /** Routes whose prefix ends exactly here, in conf order. */
  readonly candidates: Candidate[];
}

interface Group {
  readonly exact: Map<string, Candidate[]>;
  readonly prefixes: PrefixNode;
  readonly regexes: Candidate[];
}

const NO_HEADERS: RequestHeaders = {};

const allows = (c: Candidate, method: string, headers: RequestHeaders): boolean =>
  (c.methods === null || c.methods.has(method)) && (c.headers === null || headersMatch(c.headers, headers));

function headersMatch(rules: readonly HeaderRule[], headers: RequestHeaders): boolean {
  for (const rule of rules) {
    const v = headers[rule.name];
    if (v === undefined) return false;
    if (typeof v === 'string' ? !rule.accepts(v) : !v.some(rule.accepts)) return false;
  }
  return true;
}

const ruleCount = (c: Candidate): number => (c.headers === null ? 0 : c.headers.length);

export function compileRouter(routes: readonly RouteConf[]): Router {
  return new CompiledRouter(routes);
}

class CompiledRouter implements Router {
  readonly #byHost = new Map<string, Group>();
  /** Keyed by the suffix with its leading dot: `*.example.org` -> `.example.org`. */
  readonly #byWildcard = new Map<string, Group>();
  readonly #anyHost: Group = newGroup();
  readonly #hasHosts: boolean;

  constructor(routes: readonly RouteConf[]) {
    routes.forEach((route, index) => {
      const candidates = compileCandidates(route, index);
      if (route.hosts.length === 0) {
        for (const c of candidates) addCandidate(this.#anyHost, c);
        return;
      }
      for (const raw of route.hosts) {
        const host = normalizeHost(raw);
        const wildcard = host.startsWith('*.');
        const table = wildcard ? this.#byWildcard : this.#byHost;
        const key = wildcard ? host.slice(1) : host;
        let group = table.get(key);
        if (group === undefined) table.set(key, (group = newGroup()));
        for (const c of candidates) addCandidate(group, c);
      }
    });
    this.#hasHosts = this.#byHost.size > 0 || this.#byWildcard.size > 0;
  }

  match(method: string, host: string | undefined, path: string, headers: RequestHeaders = NO_HEADERS): RouteMatch | null {
    if (this.#hasHosts && host !== undefined && host !== '') {
      const name = normalizeHost(host);
      const exact = this.#byHost.get(name);
      if (exact !== undefined) {
        const found = matchGroup(exact, method, path, headers);
        if (found !== null) return found;
      }
      if (this.#byWildcard.size > 0) {
        // Leftmost dot first = longest suffix first; a dot at 0 would leave an empty label.
        for (let dot = name.indexOf('.', 1); dot !== -1; dot = name.indexOf('.', dot + 1)) {
          const group = this.#byWildcard.get(name.slice(dot));
          if (group === undefined) continue;
          const found = matchGroup(group, method, path, headers);
          if (found !== null) return found;
        }
      }
    }
    return matchGroup(this.#anyHost, method, path, headers);
  }
}

/** Lower case, no port, no trailing dot: `API.Example.com.:8080` -> `api.example.com`. */
function normalizeHost(raw: string): string {
  let end = raw.length;
  if (raw.charCodeAt(0) === 0x5b /* [ */) {
    const close = raw.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && raw.charCodeAt(end - 1) === 0x2e /* . */) end--;
  return (end === raw.length ? raw : raw.slice(0, end)).toLowerCase();
}

function newGroup(): Group {
  return { exact: new Map(), prefixes: newNode(''), regexes: [] };
}

function newNode(label: string): PrefixNode {
  return { label, children: new Map(), candidates: [] };
}

function compileCandidates(route: RouteConf, index: number): Candidate[] {
  let methods: Set<string> | null = null;
  if (route.methods.length > 0) {
    methods = new Set(route.methods);
    if (methods.has('GET')) methods.add('HEAD');
  }
  const headers = compileHeaders(route);
  const paths = route.paths.length > 0 ? route.paths : ['/'];
  return paths.map((spec): Candidate => {
    const base = { route, index, methods, headers, stopsRegex: false, regex: null };
    if (spec.startsWith('=')) return { ...base, kind: 'exact', text: spec.slice(1).trim() };
    if (spec.startsWith('^~')) return { ...base, kind: 'prefix', text: spec.slice(2).trim(), stopsRegex: true };
    if (spec.startsWith('~')) {
      const insensitive = spec.startsWith('~*');
      const source = spec.slice(insensitive ? 2 : 1).trim();
      try {
        return { ...base, kind: 'regex', text: '', regex: new RegExp(source, insensitive ? 'i' : '') };
      } catch (err) {
        throw new Error(`route ${route.name}: bad path regex ${JSON.stringify(source)}: ${(err as Error).message}`);
      }
    }
    return { ...base, kind: 'prefix', text: spec.trim() };
  });
}

function compileHeaders(route: RouteConf): HeaderRule[] | null {
  const entries = Object.entries(route.headers);
  if (entries.length === 0) return null;
  return entries.map(([name, values]) => ({ name: name.toLowerCase(), accepts: valueMatcher(values) }));
}

function addCandidate(group: Group, c: Candidate): void {
  if (c.kind === 'exact') {
    const list = group.exact.get(c.text);
    if (list === undefined) group.exact.set(c.text, [c]);
    else insertByHeaders(list, c, () => true);
  } else if (c.kind === 'regex') insertByHeaders(group.regexes, c, (other) => other.regex!.source === c.regex!.source && other.regex!.flags === c.regex!.flags);
  else insertPrefix(group.prefixes, c.text, c);
}

/**
 * Appends `c`, in conf order, unless it has more header conditions than an
 * earlier candidate for the same path (`samePath`): then it goes just before it.
 */
function insertByHeaders(list: Candidate[], c: Candidate, samePath: (other: Candidate) => boolean): void {
  const at = list.findIndex((other) => samePath(other) && ruleCount(other) < ruleCount(c));
  if (at === -1) list.push(c);
  else list.splice(at, 0, c);
}

function insertPrefix(root: PrefixNode, prefix: string, c: Candidate): void {
  let node = root;
  let at = 0;
  while (at < prefix.length) {
    const child = node.children.get(prefix.charCodeAt(at));
    if (child === undefined) {
      const leaf = newNode(prefix.slice(at));
      node.children.set(prefix.charCodeAt(at), leaf);
      node = leaf;
      at = prefix.length;
      break;
    }
    const label = child.label;
    let common = 1;
    while (common < label.length && at + common < prefix.length && label[common] === prefix[at + common]) common++;
    if (common < label.length) {
      // Split the edge: `child` keeps the tail of its label under a new middle node.
      const middle = newNode(label.slice(0, common));
      child.label = label.slice(common);
      middle.children.set(child.label.charCodeAt(0), child);
      node.children.set(middle.label.charCodeAt(0), middle);
      node = middle;
    } else node = child;
    at += common;
  }
  insertByHeaders(node.candidates, c, () => true);
}

function matchGroup(group: Group, method: string, path: string, headers: RequestHeaders): RouteMatch | null {
  const exact = group.exact.get(path);
  if (exact !== undefined) {
    for (const c of exact) if (allows(c, method, headers)) return result(c, path, path.length);
  }
  const longest = longestPrefix(group.prefixes, method, path, headers);
  if (longest !== null && longest.stopsRegex) return result(longest, path, longest.text.length);
  for (const c of group.regexes) {
    if (!allows(c, method, headers)) continue;
    const regex = c.regex as RegExp;
    if (!c.route.strip_path) {
      if (regex.test(path)) return result(c, path, 0);
      continue;
    }
    const m = regex.exec(path);
    if (m !== null) return result(c, path, m.index === 0 ? m[0].length : 0);
  }
  return longest === null ? null : result(longest, path, longest.text.length);
}

function longestPrefix(root: PrefixNode, method: string, path: string, headers: RequestHeaders): Candidate | null {
  let best: Candidate | null = null;
  let node = root;
  let at = 0;
  for (;;) {
    for (const c of node.candidates) {
      if (allows(c, method, headers)) {
        best = c;
        break;
      }
    }
    if (at >= path.length) return best;
    const child = node.children.get(path.charCodeAt(at));
    if (child === undefined || !path.startsWith(child.label, at)) return best;
    node = child;
    at += child.label.length;
  }
}

/** `stripLength`: how many leading characters strip_path removes (0 for an unanchored regex match). */
function result(c: Candidate, path: string, stripLength: number): RouteMatch {
  if (!c.route.strip_path || stripLength === 0) return { route: c.route, index: c.index, upstreamPath: path };
  const rest = path.slice(stripLength);
  return { route: c.route, index: c.index, upstreamPath: rest.charCodeAt(0) === 0x2f ? rest : '/' + rest };
}
