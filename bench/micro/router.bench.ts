/**
 * Micro-bench for the request hot path: normalizePath and Router.match.
 * Run: node_modules/.bin/node bench/micro/router.bench.ts
 *
 * It also times a linear longest-prefix scan (prefixes sorted by length,
 * first `startsWith` wins) against the router's radix tree on prefix-only confs
 * of 50 and 500 routes: the numbers behind the choice of a radix tree.
 */
import type { RouteConf } from '../../src/config/types.ts';
import { normalizePath } from '../../src/worker/normalize-path.ts';
import { compileRouter } from '../../src/worker/router.ts';

const route = (name: string, paths: string[], extra: Partial<RouteConf> = {}): RouteConf => ({
  name,
  hosts: [],
  headers: {},
  paths,
  methods: [],
  strip_path: false,
  preserve_host: false,
  websocket: false,
  upstream: 'echo',
  return: null,
  root: null,
  plugins: {},
  ...extra,
});

const services = ['users', 'orders', 'billing', 'search', 'catalog', 'carts', 'auth', 'media', 'reports', 'admin'];

/** 50 routes, mixed like a real conf: exact, plain and ^~ prefixes, regexes, methods, hosts. */
function mixedRoutes(): RouteConf[] {
  const routes: RouteConf[] = [
    route('ping', ['= /ping']),
    route('health', ['= /healthz']),
    route('robots', ['= /robots.txt']),
    route('favicon', ['= /favicon.ico']),
    route('assets', ['^~ /assets/']),
    route('static', ['^~ /static/']),
    route('images', ['~* \\.(png|jpe?g|gif|webp)$']),
    route('legacy', ['~ ^/v[0-9]+/legacy/']),
    route('graphql', ['= /graphql'], { methods: ['POST'] }),
    route('tenant', ['/'], { hosts: ['*.tenants.example.com'] }),
    route('partner', ['/api/'], { hosts: ['partner.example.com'] }),
    route('root', ['/']),
  ];
  for (const s of services) {
    routes.push(route(`${s}-read`, [`/api/v1/${s}`], { methods: ['GET'], strip_path: true }));
    routes.push(route(`${s}-write`, [`/api/v1/${s}`], { methods: ['POST', 'PUT', 'DELETE'] }));
    routes.push(route(`${s}-v2`, [`/api/v2/${s}/`]));
  }
  routes.push(route('ids', ['~ ^/api/v2/[a-z]+/[0-9]+/history$']));
  routes.push(route('export', ['~* /export\\.(csv|json)$']));
  routes.push(route('well-known', ['^~ /.well-known/']));
  routes.push(route('docs', ['/docs']));
  routes.push(route('docs-api', ['/docs/api']));
  routes.push(route('console', ['/console'], { hosts: ['admin.example.com'] }));
  routes.push(route('ws', ['= /ws']));
  routes.push(route('webhooks', ['/hooks/'], { methods: ['POST'] }));
  return routes;
}

const requests: [method: string, host: string | undefined, target: string][] = [
  ['GET', 'api.example.com', '/api/v1/users/42?fields=name'],
  ['POST', 'api.example.com', '/api/v1/orders'],
  ['GET', 'api.example.com', '/api/v2/catalog/items/9'],
  ['GET', 'api.example.com', '/api/v2/search/1234/history'],
  ['GET', 'www.example.com', '/assets/app.3f9a.js'],
  ['GET', 'www.example.com', '/img/logo.png'],
  ['GET', 'www.example.com', '/ping'],
  ['GET', 'acme.tenants.example.com:8443', '/dashboard'],
  ['GET', 'partner.example.com', '/api/v1/billing/invoices'],
  ['GET', 'api.example.com', '/api/v1/reports/export.csv'],
  ['POST', 'api.example.com', '/graphql'],
  ['GET', 'api.example.com', '/docs/api/users'],
  ['GET', 'api.example.com', '/api/v1/../v1/users//42'],
  ['GET', 'api.example.com', '/api/v1/media/%7Ealice/photo%20one.jpg'],
  ['DELETE', 'api.example.com', '/api/v1/carts/7'],
  ['GET', undefined, '/nowhere/at/all'],
];

let sink = 0;

const targets = requests.map(([, , target]) => target);
const fastTargets = targets.filter((t) => !t.includes('%') && !t.includes('/.') && !t.includes('//'));
const slowTargets = targets.filter((t) => !fastTargets.includes(t));
const normalized = requests.map(([method, host, target]) => {
  const r = normalizePath(target);
  if ('error' in r) throw new Error(`${target}: ${r.error}`);
  return [method, host, r.path] as const;
});

const mixed = compileRouter(mixedRoutes());
for (const [method, host, path] of normalized) {
  if (mixed.match(method, host, path) === null && path !== '/nowhere/at/all') throw new Error(`no route for ${path}`);
}

/** Calls per timed line, spread over its request set. */
const N = 200_000;
const each = <T>(items: readonly T[], fn: (item: T) => number) => () => {
  for (const item of items) sink += fn(item);
};
console.log(`Node ${process.version}; ns per call, averaged over each request set\n`);
timeEach(`normalizePath, fast path (${fastTargets.length} targets)`, fastTargets, (t) => {
  const r = normalizePath(t);
  return 'error' in r ? 0 : r.path.length;
});
timeEach(`normalizePath, slow path (${slowTargets.length} targets)`, slowTargets, (t) => {
  const r = normalizePath(t);
  return 'error' in r ? 0 : r.path.length;
});
timeEach(`match, 50 mixed routes (${normalized.length} requests)`, normalized, ([m, h, p]) =>
  mixed.match(m, h, p) === null ? 0 : 1,
);
timeEach(`normalize + match (${requests.length} requests)`, requests, ([m, h, t]) => {
  const r = normalizePath(t);
  return 'error' in r || mixed.match(m, h, r.path) === null ? 0 : 1;
});

// Radix tree vs linear scan, prefix-only confs.
for (const size of [50, 500]) {
  const prefixes = Array.from({ length: size }, (_, i) => `/${services[i % services.length]}/v${i % 7}/r${i}`);
  prefixes.push('/');
  const paths = Array.from(
    { length: 64 },
    (_, i) => `/${services[(i * 7) % services.length]}/v${i % 7}/r${(i * 13) % (size + 20)}/item/${i}`,
  );
  const router = compileRouter(prefixes.map((p, i) => route(`r${i}`, [p])));
  const byLength = [...prefixes].sort((a, b) => b.length - a.length);
  const exact = new Map<string, number>();
  timeEach(`radix tree longest prefix, ${size} routes`, paths, (p) => router.match('GET', undefined, p)?.index ?? 0);
  timeEach(`linear startsWith scan, ${size} routes`, paths, (p) => {
    const hit = exact.get(p);
    if (hit !== undefined) return hit;
    for (const prefix of byLength) if (p.startsWith(prefix)) return prefix.length;
    return 0;
  });
}

function timeEach<T>(label: string, items: readonly T[], fn: (item: T) => number): void {
  const iterations = Math.max(1, Math.round(N / items.length));
  const body = each(items, fn);
  for (let i = 0; i < iterations / 5; i++) body(); // warm up into optimised code
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  const ns = Number(process.hrtime.bigint() - start) / (iterations * items.length);
  console.log(`${label.padEnd(52)} ${ns.toFixed(1).padStart(8)} ns/op`);
}

if (sink === -1) console.log('unreachable: keeps the results alive');
