/**
 * The conf as written (DESIGN.md §4), as a TypeBox schema: snake_case keys verbatim,
 * unknown keys refused everywhere, every field described, defaults where nginx/Kong
 * have one. Durations, sizes, addresses and CIDRs are plain strings here; `resolve.ts`
 * reads them, so that one bad value gives one precise message instead of a schema dump.
 *
 * `expected` is our own keyword: the phrase used when a value matches no branch of a union.
 */
import { Type } from 'typebox';

const Closed = { additionalProperties: false } as const;

const Duration = (description: string, def: string) =>
  Type.Union([Type.String(), Type.Literal(0)], {
    description: `${description} (duration: 500ms, 10s, 5m, 1h, 1d, 1m30s)`,
    default: def,
    expected: 'a duration such as 500ms, 10s, 5m or 1h',
  });

const Size = (description: string, def: string) =>
  Type.Union([Type.String(), Type.Integer({ minimum: 0 })], {
    description: `${description} (size: 512k, 10m, 1g, or bytes)`,
    default: def,
    expected: 'a size such as 512k, 10m, 1g or an integer of bytes',
  });

const Address = (description: string) => Type.String({ description: `${description} (host:port; IPv6 as [::1]:8080)` });

const RealIp = Type.Object(
  {
    header: Type.Optional(Type.String({ minLength: 1, default: 'X-Forwarded-For', description: 'Header the client address is read from' })),
    trusted: Type.Array(Type.String(), { description: 'IPs or CIDRs of peers whose header is believed' }),
    recursive: Type.Optional(Type.Boolean({ default: false, description: 'Client = rightmost untrusted address (nginx real_ip_recursive)' })),
  },
  { ...Closed, description: 'nginx realip: take the client address from a header, only from trusted peers' },
);

const Server = Type.Object(
  {
    listen: Type.Optional(Type.Array(Address('Address to accept client connections on'), { minItems: 1, default: ['0.0.0.0:8080'], description: 'Addresses the workers listen on' })),
    client_max_body_size: Type.Optional(Size('Largest request body; 413 above; 0 = unlimited', '1m')),
    client_header_timeout: Type.Optional(Duration('Time to receive the request headers; 408 after', '60s')),
    client_body_timeout: Type.Optional(Duration('Idle time between two body reads; 408 after', '60s')),
    keepalive_timeout: Type.Optional(Duration('Idle keep-alive connections are closed after', '75s')),
    real_ip: Type.Optional(Type.Union([RealIp, Type.Null()], { default: null, description: 'Client address from a forwarded header; null = the peer address' })),
  },
  { ...Closed, default: {}, description: 'The proxy listeners' },
);

const Status = Type.Object(
  {
    listen: Type.Optional(
      Type.Union([Address('Status listener address'), Type.Null()], { default: '127.0.0.1:9145', description: 'Status listener address; off or null disables it' }),
    ),
  },
  { ...Closed, default: {}, description: 'GET /status, GET /metrics and cache purge' },
);

const Target = Type.Union(
  [
    Address('Upstream server address'),
    Type.Object(
      {
        address: Address('Upstream server address'),
        weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 1, description: 'Relative share of requests' })),
      },
      { ...Closed, description: 'Upstream server with a weight' },
    ),
  ],
  { description: 'Upstream server: "host:port" or { address, weight }', expected: 'an address "host:port" or a map { address, weight }' },
);

const ActiveHealthcheck = Type.Object(
  {
    path: Type.String({ pattern: '^/', description: 'Path probed with GET; 2xx/3xx is a success' }),
    interval: Type.Optional(Duration('Time between probes', '2s')),
    timeout: Type.Optional(Duration('Probe timeout', '1s')),
    healthy: Type.Optional(Type.Integer({ minimum: 1, default: 2, description: 'Consecutive successes to mark a target healthy' })),
    unhealthy: Type.Optional(Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures to mark a target unhealthy' })),
  },
  { ...Closed, description: 'Probes run by the master' },
);

const PassiveHealthcheck = Type.Object(
  {
    max_fails: Type.Optional(Type.Integer({ minimum: 1, default: 3, description: 'Failures within fail_timeout that take a target out (nginx max_fails)' })),
    fail_timeout: Type.Optional(Duration('Window for max_fails and time a failed target stays out', '10s')),
  },
  { ...Closed, description: 'Failures seen on proxied traffic' },
);

const Upstream = Type.Object(
  {
    algorithm: Type.Optional(Type.Enum(['round-robin', 'least-conn', 'consistent-hash', 'ewma'], { default: 'round-robin', description: 'Load-balancing algorithm' })),
    hash_on: Type.Optional(Type.String({ default: 'ip', description: 'consistent-hash key: ip | consumer | user_id | company_id | uri | header:NAME | cookie:NAME' })),
    targets: Type.Array(Target, { minItems: 1, description: 'Upstream servers' }),
    keepalive: Type.Optional(Type.Integer({ minimum: 0, default: 64, description: 'Pooled upstream connections per worker' })),
    connect_timeout: Type.Optional(Duration('Time to connect to a target', '5s')),
    send_timeout: Type.Optional(Duration('Time to send the request to a target', '60s')),
    read_timeout: Type.Optional(Duration('Idle time between two reads of the response', '60s')),
    retries: Type.Optional(Type.Integer({ minimum: 0, default: 1, description: 'Next target on connect error / 502 / 504, idempotent methods only' })),
    host_header: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: "Host sent upstream; null = the target's host:port" })),
    healthcheck: Type.Optional(
      Type.Object(
        {
          active: Type.Optional(Type.Union([ActiveHealthcheck, Type.Null()], { default: null, description: 'Active probes; null = none' })),
          passive: Type.Optional(Type.Union([PassiveHealthcheck, Type.Null()], { default: null, description: 'Passive checks; null = none' })),
        },
        { ...Closed, default: {}, description: 'Target health checks' },
      ),
    ),
  },
  // `default: {}` never applies (a record entry exists), but TypeBox's Value.Default only
  // descends into record values that carry a default, and the fields inside have theirs.
  { ...Closed, default: {}, description: 'A named group of upstream servers' },
);

const Consumer = Type.Object(
  {
    username: Type.String({ minLength: 1, description: 'Unique consumer name' }),
    attributes: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()], { description: 'Attribute value', expected: 'a string or a number' }), {
        default: {},
        description: 'Identity fields (user_id, company_id, ...), sent upstream',
      }),
    ),
    credentials: Type.Optional(
      Type.Record(Type.String(), Type.Array(Type.Record(Type.String(), Type.Unknown()), { description: 'Credential objects, checked by that plugin' }), {
        default: {},
        description: 'Plugin name -> credentials',
      }),
    ),
  },
  { ...Closed, description: 'An API consumer' },
);

const Plugins = (description: string) =>
  Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown(), { description: 'Plugin conf, checked against the plugin schema' }), {
    default: {},
    description,
  });

const Return = Type.Object(
  {
    status: Type.Integer({ minimum: 100, maximum: 599, description: 'Response status' }),
    body: Type.Optional(Type.String({ default: '', description: 'Response body' })),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()], { description: 'Header value', expected: 'a string or a number' }), {
        default: {},
        description: 'Response headers',
      }),
    ),
  },
  { ...Closed, description: 'Answer directly (nginx return)' },
);

const Route = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Unique route name' }),
    hosts: Type.Optional(Type.Array(Type.String(), { default: [], description: 'Host names, exact or *.suffix; empty = any' })),
    paths: Type.Array(Type.String(), { minItems: 1, description: 'Paths: /prefix, = /exact, ^~ /prefix, ~ regex, ~* regex' }),
    methods: Type.Optional(Type.Array(Type.String(), { default: [], description: 'HTTP methods; empty = any' })),
    strip_path: Type.Optional(Type.Boolean({ default: false, description: 'Remove the matched prefix before proxying' })),
    preserve_host: Type.Optional(Type.Boolean({ default: false, description: "Send the client's Host upstream" })),
    upstream: Type.Optional(Type.String({ description: 'Name of the upstream to proxy to' })),
    return: Type.Optional(Return),
    root: Type.Optional(Type.String({ minLength: 1, description: 'Directory of static files' })),
    plugins: Type.Optional(Plugins('Plugins for this route, after the global ones')),
  },
  { ...Closed, description: 'A route: match, then proxy, return or serve files' },
);

const LogLevel = Type.Enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], { default: 'info', description: 'Least severe level written' });

/** The schema of one conf file (the main one or an included one) and of their merge. */
export const ConfSchema = Type.Object(
  {
    worker_processes: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('auto')], { default: 'auto', description: 'Worker threads; auto = one per CPU core', expected: 'an integer >= 1 or "auto"' }),
    ),
    worker_shutdown_timeout: Type.Optional(Duration('Draining workers are stopped after', '10s')),
    pid: Type.Optional(Type.String({ minLength: 1, default: 'logs/sluice.pid', description: 'PID file of the master' })),
    plugin_paths: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Directories with custom plugins' })),
    error_log: Type.Optional(
      Type.Object(
        {
          path: Type.Optional(Type.String({ minLength: 1, default: 'stderr', description: 'Log file, or stderr' })),
          level: Type.Optional(LogLevel),
        },
        { ...Closed, default: {}, description: 'Error log' },
      ),
    ),
    access_log: Type.Optional(
      Type.Object(
        {
          path: Type.Optional(Type.String({ minLength: 1, default: 'logs/access.log', description: 'Log file, stdout, or off' })),
          buffer: Type.Optional(Size('Lines gathered before one write, as nginx buffer= (at most 1m); 0 = each line as it comes', '0')),
          flush: Type.Optional(Duration('With a buffer: the longest a line waits in it, as nginx flush=', '1s')),
        },
        { ...Closed, default: {}, description: 'Access log' },
      ),
    ),
    shared_dicts: Type.Optional(Type.Record(Type.String(), Size('Zone size', '1m'), { default: {}, description: 'Shared dictionaries: name -> size' })),
    server: Type.Optional(Server),
    status: Type.Optional(Status),
    upstreams: Type.Optional(Type.Record(Type.String(), Upstream, { default: {}, description: 'Upstreams by name' })),
    consumers: Type.Optional(Type.Array(Consumer, { default: [], description: 'API consumers' })),
    plugins: Type.Optional(Plugins('Global plugins: run on every route')),
    routes: Type.Optional(Type.Array(Route, { default: [], description: 'Routes' })),
    include: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Globs of conf files merged into this one, relative to this file' })),
  },
  { ...Closed, description: 'Sluice conf' },
);
