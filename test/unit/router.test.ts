import { describe, expect, it } from 'vitest';
import type { RouteConf } from '../../src/config/types.ts';
import { compileRouter } from '../../src/worker/router.ts';

type RouteFields = Pick<RouteConf, 'name'> & Partial<Pick<RouteConf, 'hosts' | 'paths' | 'methods' | 'strip_path' | 'headers'>>;

const route = (fields: RouteFields): RouteConf => ({
  hosts: [],
  paths: [],
  methods: [],
  strip_path: false,
  headers: {},
  preserve_host: false,
  websocket: false,
  upstream: 'echo',
  return: null,
  root: null,
  plugins: {},
  ...fields,
});

const compiled = (routes: readonly RouteFields[]) => compileRouter(routes.map(route));

/** Compiles once; the returned function names the chosen route, or null. */
const chooser = (routes: readonly RouteFields[]) => {
  const router = compiled(routes);
  return (path: string, method = 'GET', host?: string): string | null =>
    router.match(method, host, path)?.route.name ?? null;
};

describe('router: path precedence (nginx locations)', () => {
  const pick = chooser([
    { name: 'root', paths: ['/'] },
    { name: 'api', paths: ['/api'] },
    { name: 'api-v1-users', paths: ['/api/v1/users'] },
    { name: 'exact-api', paths: ['= /api'] },
    { name: 'static', paths: ['^~ /static/'] },
    { name: 'images', paths: ['~* \\.(png|jpg)$'] },
    { name: 'versioned', paths: ['~ ^/api/v[0-9]+/'] },
    { name: 'any-v', paths: ['~ /v[0-9]+/'] },
  ]);

  it('an exact path wins over everything', () => {
    expect(pick('/api')).toBe('exact-api');
  });

  it('a ^~ longest prefix stops the regex search', () => {
    expect(pick('/static/logo.png')).toBe('static');
  });

  it('regexes beat a shorter and a longer plain prefix, first in conf order wins', () => {
    expect(pick('/api/v2/x')).toBe('versioned'); // over the shorter prefix /api
    expect(pick('/api/v1/users/1')).toBe('versioned'); // over the longer prefix /api/v1/users
    expect(pick('/api/v1/logo.PNG')).toBe('images'); // `~*` listed before `versioned`
    expect(pick('/other/v3/x')).toBe('any-v');
  });

  it('falls back to the longest prefix when no regex matches', () => {
    expect(pick('/api/users')).toBe('api');
    expect(pick('/api/')).toBe('api');
    expect(pick('/apiary')).toBe('api'); // string prefix, as nginx
    expect(pick('/nothing')).toBe('root');
  });

  it('~ is case-sensitive and ~* is not; prefixes are case-sensitive', () => {
    expect(pick('/API/v2/x')).toBe('any-v');
    expect(pick('/a/b.JpG')).toBe('images');
    expect(pick('/Api/users')).toBe('root');
  });

  it('a ^~ prefix shorter than the longest plain prefix does not stop regexes', () => {
    const p = chooser([
      { name: 'stop', paths: ['^~ /a'] },
      { name: 'long', paths: ['/a/b'] },
      { name: 're', paths: ['~ x$'] },
    ]);
    expect(p('/a/b/x')).toBe('re');
    expect(p('/a/c/x')).toBe('stop');
    expect(p('/a/b/y')).toBe('long');
  });

  it('prefix matching is a string prefix: /echo/ does not match /echo', () => {
    const p = chooser([{ name: 'slash', paths: ['/echo/'] }]);
    expect(p('/echo')).toBeNull();
    expect(p('/echo/')).toBe('slash');
    expect(p('/echoes')).toBeNull();
  });

  it('keeps the longest prefix across split radix edges', () => {
    const p = chooser([
      { name: 'abcd', paths: ['/abcd'] },
      { name: 'ab', paths: ['/ab'] },
      { name: 'abx', paths: ['/abx'] },
      { name: 'a', paths: ['/a'] },
    ]);
    expect(p('/abcde')).toBe('abcd');
    expect(p('/abc')).toBe('ab');
    expect(p('/abxy')).toBe('abx');
    expect(p('/ay')).toBe('a');
    expect(p('/b')).toBeNull();
  });

  it('a route without paths matches every path as prefix /', () => {
    expect(chooser([{ name: 'all' }])('/anything')).toBe('all');
  });

  it('reports the route index and rejects a bad regex at compile time', () => {
    const r = compiled([{ name: 'a', paths: ['/a'] }, { name: 'b', paths: ['/b', '= /c'] }]);
    expect(r.match('GET', undefined, '/c')?.index).toBe(1);
    expect(() => compiled([{ name: 'bad', paths: ['~ ('] }])).toThrow(/route bad: bad path regex/);
  });
});

describe('router: methods', () => {
  const pick = chooser([
    { name: 'get-api', paths: ['/api'], methods: ['GET'] },
    { name: 'post-api', paths: ['/api'], methods: ['POST'] },
    { name: 'put-exact', paths: ['= /api/x'], methods: ['PUT'] },
    { name: 'delete-long', paths: ['/api/long'], methods: ['DELETE'] },
    { name: 'patch-re', paths: ['~ ^/api/'], methods: ['PATCH'] },
  ]);

  it('routes with disjoint methods share a path', () => {
    expect(pick('/api', 'GET')).toBe('get-api');
    expect(pick('/api', 'POST')).toBe('post-api');
  });

  it('GET also allows HEAD', () => {
    expect(pick('/api', 'HEAD')).toBe('get-api');
  });

  it('a route that does not allow the method is invisible', () => {
    expect(pick('/api/x', 'GET')).toBe('get-api'); // exact PUT route skipped
    expect(pick('/api/x', 'PUT')).toBe('put-exact');
    expect(pick('/api/long/1', 'GET')).toBe('get-api'); // longer DELETE prefix skipped
    expect(pick('/api/long/1', 'DELETE')).toBe('delete-long');
    expect(pick('/api/y', 'PATCH')).toBe('patch-re');
    expect(pick('/api/y', 'POST')).toBe('post-api');
  });

  it('no route for the method means no match', () => {
    expect(pick('/api', 'OPTIONS')).toBeNull();
  });
});

describe('router: hosts', () => {
  const pick = chooser([
    { name: 'exact-host', hosts: ['api.example.com'], paths: ['/only'] },
    { name: 'wild-org', hosts: ['*.example.org'], paths: ['/'] },
    { name: 'wild-b-org', hosts: ['*.b.example.org'], paths: ['/'] },
    { name: 'mixed', hosts: ['Mixed.Example.COM', '*.mixed.net'], paths: ['/m'] },
    { name: 'default', paths: ['/'] },
  ]);

  it('exact host first, falling through when its routes do not match the path', () => {
    expect(pick('/only/x', 'GET', 'api.example.com')).toBe('exact-host');
    expect(pick('/other', 'GET', 'api.example.com')).toBe('default');
  });

  it('wildcards match one or more labels, longest suffix first, never the bare domain', () => {
    expect(pick('/', 'GET', 'a.example.org')).toBe('wild-org');
    expect(pick('/', 'GET', 'x.a.example.org')).toBe('wild-org');
    expect(pick('/', 'GET', 'a.b.example.org')).toBe('wild-b-org');
    expect(pick('/', 'GET', 'example.org')).toBe('default');
    expect(pick('/', 'GET', '.example.org')).toBe('default');
  });

  it('lower-cases the host and strips its port and trailing dot', () => {
    expect(pick('/only', 'GET', 'API.Example.com:8080')).toBe('exact-host');
    expect(pick('/only', 'GET', 'api.example.com.')).toBe('exact-host');
    expect(pick('/only', 'GET', 'api.example.com.:443')).toBe('exact-host');
    expect(pick('/m', 'GET', 'mixed.example.com')).toBe('mixed');
    expect(pick('/m', 'GET', 'A.MIXED.NET:1')).toBe('mixed');
  });

  it('routes without hosts serve unknown and missing hosts; host routes never do', () => {
    expect(pick('/only', 'GET', 'unknown.test')).toBe('default');
    expect(pick('/only', 'GET', undefined)).toBe('default');
    expect(chooser([{ name: 'h', hosts: ['a.test'], paths: ['/'] }])('/', 'GET', 'b.test')).toBeNull();
  });

  it('handles IPv6 literals', () => {
    const p = chooser([{ name: 'v6', hosts: ['[::1]'], paths: ['/'] }]);
    expect(p('/', 'GET', '[::1]:8080')).toBe('v6');
    expect(p('/', 'GET', '[::1]')).toBe('v6');
  });
});

describe('router: strip_path', () => {
  const r = compiled([
    { name: 'exact', paths: ['= /ping'], strip_path: true },
    { name: 'prefix', paths: ['/echo'], strip_path: true },
    { name: 'prefix-slash', paths: ['/svc/'], strip_path: true },
    { name: 'stop', paths: ['^~ /files'], strip_path: true },
    { name: 'anchored', paths: ['~ ^/v[0-9]+'], strip_path: true },
    { name: 'unanchored', paths: ['~ /tail$'], strip_path: true },
    { name: 'kept', paths: ['/keep'], strip_path: false },
  ]);
  const upstream = (path: string): string | undefined => r.match('GET', undefined, path)?.upstreamPath;

  it('exact match forwards /', () => {
    expect(upstream('/ping')).toBe('/');
  });

  it('prefix match removes the prefix and keeps a leading slash', () => {
    expect(upstream('/echo/a/b')).toBe('/a/b');
    expect(upstream('/echo')).toBe('/');
    expect(upstream('/echoes')).toBe('/es');
    expect(upstream('/svc/x')).toBe('/x');
    expect(upstream('/svc/')).toBe('/');
    expect(upstream('/files/a.txt')).toBe('/a.txt');
  });

  it('regex match removes the part matched at the start', () => {
    expect(upstream('/v2/users')).toBe('/users');
    expect(upstream('/v2')).toBe('/');
    expect(upstream('/a/tail')).toBe('/a/tail');
  });

  it('without strip_path the path is forwarded unchanged', () => {
    expect(upstream('/keep/x')).toBe('/keep/x');
  });
});

describe('router: headers', () => {
  /** Request headers as node hands them over: lower-case names. */
  const routeFor = (routes: readonly RouteFields[]) => {
    const router = compiled(routes);
    return (path: string, headers: Record<string, string | string[]> = {}, method = 'GET', host?: string): string | null =>
      router.match(method, host, path, headers)?.route.name ?? null;
  };

  it('a route with headers is invisible unless each header has one of its values; names are case-insensitive', () => {
    const pick = routeFor([{ name: 'acme', paths: ['/orders'], headers: { 'x-tenant': ['acme', 'globex'], 'x-env': ['prod'] } }]);
    expect(pick('/orders', { 'x-tenant': 'acme', 'x-env': 'prod' })).toBe('acme');
    expect(pick('/orders', { 'x-tenant': 'globex', 'x-env': 'prod' })).toBe('acme');
    expect(pick('/orders', { 'x-tenant': 'acme' })).toBeNull(); // every named header must match
    expect(pick('/orders', { 'x-tenant': 'ACME', 'x-env': 'prod' })).toBeNull(); // values are exact
    expect(pick('/orders', { 'x-tenant': 'acme-2', 'x-env': 'prod' })).toBeNull();
    expect(pick('/orders')).toBeNull();
    // A conf written with X-Tenant (resolve lower-cases it) or compiled from another spelling.
    expect(routeFor([{ name: 'r', paths: ['/'], headers: { 'X-Tenant': ['acme'] } }])('/', { 'x-tenant': 'acme' })).toBe('r');
  });

  it('among routes with the same path, the one with matching headers wins whatever the conf order', () => {
    const pick = routeFor([
      { name: 'shared', paths: ['/orders'] },
      { name: 'acme', paths: ['/orders'], headers: { 'x-tenant': ['acme'] } },
      { name: 'acme-canary', paths: ['/orders'], headers: { 'x-tenant': ['acme'], 'x-canary': ['1'] } },
      { name: 'exact-shared', paths: ['= /ping'] },
      { name: 'exact-acme', paths: ['= /ping'], headers: { 'x-tenant': ['acme'] } },
      { name: 'regex-shared', paths: ['~ ^/v[0-9]+/'] },
      { name: 'regex-acme', paths: ['~ ^/v[0-9]+/'], headers: { 'x-tenant': ['acme'] } },
    ]);
    expect(pick('/orders/1')).toBe('shared');
    expect(pick('/orders/1', { 'x-tenant': 'globex' })).toBe('shared');
    expect(pick('/orders/1', { 'x-tenant': 'acme' })).toBe('acme');
    expect(pick('/orders/1', { 'x-tenant': 'acme', 'x-canary': '1' })).toBe('acme-canary'); // more conditions first
    expect(pick('/ping')).toBe('exact-shared');
    expect(pick('/ping', { 'x-tenant': 'acme' })).toBe('exact-acme');
    expect(pick('/v2/x')).toBe('regex-shared');
    expect(pick('/v2/x', { 'x-tenant': 'acme' })).toBe('regex-acme');
  });

  it('paths still decide first: a longer prefix without headers beats a shorter one with them', () => {
    const pick = routeFor([
      { name: 'acme', paths: ['/api'], headers: { 'x-tenant': ['acme'] } },
      { name: 'users', paths: ['/api/users'] },
    ]);
    expect(pick('/api/users/1', { 'x-tenant': 'acme' })).toBe('users');
    expect(pick('/api/orders', { 'x-tenant': 'acme' })).toBe('acme');
    expect(pick('/api/orders')).toBeNull();
  });

  it('~ values are regexes matched against the whole value', () => {
    const pick = routeFor([{ name: 'r', paths: ['/'], headers: { 'x-tenant': ['~ acme-[0-9]+', 'exact'] } }]);
    expect(pick('/', { 'x-tenant': 'acme-42' })).toBe('r');
    expect(pick('/', { 'x-tenant': 'exact' })).toBe('r');
    expect(pick('/', { 'x-tenant': 'xacme-42' })).toBeNull(); // anchored at the start
    expect(pick('/', { 'x-tenant': 'acme-42x' })).toBeNull(); // and at the end
    expect(pick('/', { 'x-tenant': 'acme-' })).toBeNull();
  });

  it('an alternation is anchored as a whole', () => {
    const pick = routeFor([{ name: 'r', paths: ['/'], headers: { 'x-tenant': ['~ acme|globex'] } }]);
    expect(pick('/', { 'x-tenant': 'globex' })).toBe('r');
    expect(pick('/', { 'x-tenant': 'acme-1' })).toBeNull();
    expect(pick('/', { 'x-tenant': '1-globex' })).toBeNull();
  });

  it('a header sent as several values matches when one of them does', () => {
    const pick = routeFor([{ name: 'r', paths: ['/'], headers: { 'set-cookie': ['a=1'] } }]);
    expect(pick('/', { 'set-cookie': ['b=2', 'a=1'] })).toBe('r');
    expect(pick('/', { 'set-cookie': ['b=2'] })).toBeNull();
  });

  it('headers combine with hosts and methods', () => {
    const pick = routeFor([
      { name: 'acme-host', hosts: ['api.example.com'], paths: ['/'], methods: ['POST'], headers: { 'x-tenant': ['acme'] } },
      { name: 'any', paths: ['/'] },
    ]);
    expect(pick('/', { 'x-tenant': 'acme' }, 'POST', 'api.example.com')).toBe('acme-host');
    expect(pick('/', { 'x-tenant': 'acme' }, 'GET', 'api.example.com')).toBe('any');
    expect(pick('/', { 'x-tenant': 'globex' }, 'POST', 'api.example.com')).toBe('any');
    expect(pick('/', { 'x-tenant': 'acme' }, 'POST', 'other.example.com')).toBe('any');
  });

  it('without request headers, routes with headers never match', () => {
    const router = compiled([{ name: 'acme', paths: ['/'], headers: { 'x-tenant': ['acme'] } }, { name: 'any', paths: ['/'] }]);
    expect(router.match('GET', undefined, '/')?.route.name).toBe('any');
  });
});
