/**
 * The conf as written (DESIGN.md §4), as a TypeBox schema: the one description of its
 * keys, types and defaults. snake_case keys verbatim, unknown keys refused everywhere,
 * every field described, defaults where nginx/Kong have one. Durations, sizes,
 * addresses, CIDRs, hosts, paths and methods stay strings as written, checked by the
 * parser `resolve.ts` reads them with, so one bad value gives one precise message.
 *
 * As in plugin schemas, a field with a default is required: defaults are filled in
 * before the check, so `Static<>` of a checked conf has every such field present.
 * `expected` is our own keyword: the phrase used when a value matches no branch of a union.
 */
import { METHODS } from 'node:http';
import { Type } from 'typebox';
import { checkCidr, checkRouteHost, checkServerName, parseHostPort } from './addresses.ts';
import { boundedDuration, boundedSize, checked, duration, size } from './checked.ts';
import { parseSize } from './units.ts';
import { valuePatternFault } from '../plugins/pdk/value-match.ts';
import { isHeaderName, isHeaderValue } from '../plugins/pdk/headers.ts';

const Closed = { additionalProperties: false } as const;

/** `host:port`; port 0 (any free port) only where `minPort` is 0 (listeners). */
const Address = (description: string, minPort: 0 | 1) =>
  checked(Type.String({ description: `${description} (host:port; IPv6 as [::1]:8080)` }), (v) => {
    const hp = parseHostPort(v, minPort);
    return typeof hp === 'string' ? hp : null;
  });

const HASH_ON = /^(ip|consumer|user_id|company_id|uri|(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

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

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const RealIp = Type.Object(
  {
    header: Type.String({ minLength: 1, default: 'X-Forwarded-For', description: 'Header the client address is read from' }),
    trusted: Type.Array(checked(Type.String({ description: 'IP or CIDR' }), checkCidr), { description: 'IPs or CIDRs of peers whose header is believed' }),
    recursive: Type.Boolean({ default: false, description: 'Client = rightmost untrusted address (nginx real_ip_recursive)' }),
  },
  { ...Closed, description: 'nginx realip: take the client address from a header, only from trusted peers' },
);

const Listen = Type.Union(
  [
    Address('Address to accept client connections on', 0),
    Type.Object(
      {
        address: Address('Address to accept client connections on', 0),
        tls: Type.Boolean({ default: false, description: 'TLS on this address, with server.tls.certificates' }),
        http2: Type.Boolean({ default: false, description: 'HTTP/2 by ALPN beside HTTP/1.1 (with tls)' }),
      },
      { ...Closed, description: 'A listen address with its protocols' },
    ),
  ],
  { description: 'Listen address: "host:port" or { address, tls, http2 }', expected: 'an address "host:port" or a map { address, tls, http2 }' },
);

const Certificate = Type.Object(
  {
    cert: Type.String({ minLength: 1, description: 'PEM file: the certificate, then its chain' }),
    key: Type.String({ minLength: 1, description: 'PEM file: its private key' }),
  },
  { ...Closed, description: 'A certificate, chosen by SNI from its SAN names' },
);


const Tls = Type.Object(
  {
    certificates: Type.Array(Certificate, { default: [], description: 'Certificates for the tls listeners; the first is the default when SNI names none of them' }),
    // TLS 1.1 and older are not offered at all (RFC 8996).
    protocols: Type.Array(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { expected: 'TLSv1.2 or TLSv1.3' }), {
      minItems: 1, default: ['TLSv1.2', 'TLSv1.3'], description: 'TLS versions offered',
    }),
    ciphers: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'OpenSSL cipher list for TLS 1.2; null = Node\'s default' }),
    // A zone like any shared dict (8k at least), or none.
    session_cache: checked(size({ description: 'TLS 1.2 sessions in a shared dict, resumed on any worker; 0 = none', default: '10m' }), (v) => {
      try {
        const bytes = parseSize(v);
        return bytes === 0 || bytes >= 8192 ? null : 'session cache is too small: 0 (none) or at least 8k';
      } catch {
        return null; // not a size: said once, by size()
      }
    }),
    session_tickets: Type.Boolean({ default: true, description: 'Session tickets whose keys the master makes and every worker shares' }),
    // Timers take at most 2^31-1 ms (24.8 days); a week is already longer than anyone keeps a ticket key.
    session_ticket_rotation: boundedDuration({
      description: 'How often the master replaces the ticket keys (forward secrecy); 0 = never', default: '12h', what: 'session_ticket_rotation', max: '7d',
    }),
  },
  { ...Closed, default: {}, description: 'TLS for listeners with tls: true' },
);

const Server = Type.Object(
  {
    listen: Type.Array(Listen, { minItems: 1, default: ['0.0.0.0:8080'], description: 'Addresses the workers listen on' }),
    tls: Tls,
    client_max_body_size: size({ description: 'Largest request body; 413 above; 0 = unlimited', default: '1m' }),
    client_header_timeout: duration({ description: 'Time to receive the request headers; 408 after', default: '60s' }),
    client_body_timeout: duration({ description: 'Idle time between two body reads; 408 after', default: '60s' }),
    keepalive_timeout: duration({ description: 'Idle keep-alive connections are closed after', default: '75s' }),
    real_ip: Type.Union([RealIp, Type.Null()], { default: null, description: 'Client address from a forwarded header; null = the peer address' }),
  },
  { ...Closed, default: {}, description: 'The proxy listeners' },
);

const Status = Type.Object(
  {
    listen: Type.Union([Address('Status listener address', 0), Type.Literal('off'), Type.Null()], {
      default: '127.0.0.1:9145',
      description: 'Status listener address; off or null disables it',
    }),
  },
  { ...Closed, default: {}, description: 'GET /status, GET /metrics and cache purge' },
);

/** The weight of a target, and of one written as a plain address. */
export const DEFAULT_WEIGHT = 1;

const Target = Type.Union(
  [
    Address('Upstream server address', 1),
    Type.Object(
      {
        address: Address('Upstream server address', 1),
        weight: Type.Integer({ minimum: 1, maximum: 65535, default: DEFAULT_WEIGHT, description: 'Relative share of requests' }),
        backup: Type.Boolean({ default: false, description: 'Used only when every non-backup target is down (nginx backup)' }),
      },
      { ...Closed, description: 'Upstream server with a weight' },
    ),
  ],
  { description: 'Upstream server: "host:port" or { address, weight, backup }', expected: 'an address "host:port" or a map { address, weight, backup }' },
);

/** A backup stands in for the others (nginx refuses `backup` alone too): a group of only backups would never be used as such. */
const Targets = checked(Type.Array(Target, { minItems: 1, description: 'Upstream servers' }), (ts) =>
  ts.every((t) => typeof t !== 'string' && t.backup) ? 'every target is a backup: at least one must not be' : null,
);

const ActiveHealthcheck = Type.Object(
  {
    path: Type.String({ pattern: '^/', description: 'Path probed with GET; 2xx/3xx is a success' }),
    interval: duration({ description: 'Time between probes', default: '2s' }),
    timeout: duration({ description: 'Probe timeout', default: '1s' }),
    healthy: Type.Integer({ minimum: 1, default: 2, description: 'Consecutive successes to mark a target healthy' }),
    unhealthy: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures to mark a target unhealthy' }),
  },
  { ...Closed, description: 'Probes run by the master' },
);

const PassiveHealthcheck = Type.Object(
  {
    max_fails: Type.Integer({ minimum: 1, default: 3, description: 'Failures within fail_timeout that take a target out (nginx max_fails)' }),
    fail_timeout: duration({ description: 'Window for max_fails and time a failed target stays out', default: '10s' }),
  },
  { ...Closed, description: 'Failures seen on proxied traffic' },
);

const UpstreamTls = Type.Object(
  {
    verify: Type.Boolean({ default: true, description: "Check the target's certificate chain and name (nginx proxy_ssl_verify); false is a -t warning" }),
    ca: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: "PEM file of the CAs the target's certificate must chain to; null = Node's default roots" }),
    server_name: Type.Union([checked(Type.String({ minLength: 1, description: 'Server name' }), checkServerName), Type.Null()], { default: null, description: "SNI and the name the certificate must carry; null = the target's host (no SNI for an IP, whose certificate must name the IP)" }),
    cert: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'PEM file: client certificate for mTLS, with key' }),
    key: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'PEM file: the client certificate\'s private key' }),
  },
  { ...Closed, description: 'TLS to the targets (https)' },
);

const Upstream = Type.Object(
  {
    algorithm: Type.Enum(['round-robin', 'least-conn', 'consistent-hash', 'ewma'], { default: 'round-robin', description: 'Load-balancing algorithm' }),
    hash_on: checked(
      Type.String({ default: 'ip', description: 'consistent-hash key: ip | consumer | user_id | company_id | uri | header:NAME | cookie:NAME' }),
      (v) => (HASH_ON.test(v) ? null : 'must be ip, consumer, user_id, company_id, uri, header:NAME or cookie:NAME'),
    ),
    targets: Targets,
    keepalive: Type.Integer({ minimum: 0, default: 64, description: 'Pooled upstream connections per worker' }),
    connect_timeout: duration({ description: 'Time to connect to a target', default: '5s' }),
    send_timeout: duration({ description: 'Time to send the request to a target', default: '60s' }),
    read_timeout: duration({ description: 'Idle time between two reads of the response', default: '60s' }),
    retries: Type.Integer({ minimum: 0, default: 1, description: 'Next target on connect error / 502 / 504, idempotent methods only' }),
    tls: Type.Union([UpstreamTls, Type.Null()], { default: null, description: 'TLS to the targets (https); null = cleartext HTTP' }),
    host_header: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: "Host sent upstream; null = the target's host:port" }),
    healthcheck: Type.Object(
      {
        active: Type.Union([ActiveHealthcheck, Type.Null()], { default: null, description: 'Active probes; null = none' }),
        passive: Type.Union([PassiveHealthcheck, Type.Null()], { default: null, description: 'Passive checks; null = none' }),
      },
      { ...Closed, default: {}, description: 'Target health checks' },
    ),
  },
  // `default: {}` never applies (a record entry exists), but TypeBox's Value.Default only
  // descends into record values that carry a default, and the fields inside have theirs.
  { ...Closed, default: {}, description: 'A named group of upstream servers' },
);

const StringOrNumber = (description: string) =>
  Type.Union([Type.String(), Type.Number()], { description, expected: 'a string or a number' });

const Consumer = Type.Object(
  {
    username: Type.String({ minLength: 1, description: 'Unique consumer name' }),
    attributes: Type.Record(Type.String(), StringOrNumber('Attribute value'), {
      default: {},
      description: 'Identity fields (user_id, company_id, ...), sent upstream',
    }),
    credentials: Type.Record(Type.String(), Type.Array(Type.Record(Type.String(), Type.Unknown()), { description: 'Credential objects, checked by that plugin' }), {
      default: {},
      description: 'Plugin name -> credentials',
    }),
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
    body: Type.String({ default: '', description: 'Response body' }),
    // Checked here, with their position, rather than when a worker lays the answer out.
    headers: checked(Type.Record(Type.String(), StringOrNumber('Header value'), { default: {}, description: 'Response headers' }), (h) => {
      for (const [name, value] of Object.entries(h)) {
        if (!isHeaderName(name)) return `"${name}" is not a header name`;
        if (!isHeaderValue(String(value))) return `header ${name}: control characters are not allowed in a value`;
      }
      return null;
    }),
  },
  { ...Closed, description: 'Answer directly (nginx return)' },
);

const Route = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Unique route name' }),
    hosts: Type.Array(checked(Type.String({ description: 'Host name' }), checkRouteHost), { default: [], description: 'Host names, exact or *.suffix; empty = any' }),
    paths: Type.Array(checked(Type.String({ description: 'Path' }), checkRoutePath), { minItems: 1, description: 'Paths: /prefix, = /exact, ^~ /prefix, ~ regex, ~* regex' }),
    methods: Type.Array(
      checked(Type.String({ description: 'HTTP method' }), (m) => (METHODS.includes(m.toUpperCase()) ? null : `unknown HTTP method "${m}"`)),
      { default: [], description: 'HTTP methods; empty = any' },
    ),
    headers: checked(
      Type.Record(
        Type.String(),
        Type.Array(checked(Type.String({ description: 'Header value' }), valuePatternFault), { minItems: 1, description: 'Accepted values: exact, or "~ regex" (whole value)' }),
        { default: {}, description: 'Header name -> accepted values; the route matches only a request with each header at one of its values; empty = any' },
      ),
      (h) => {
        for (const name of Object.keys(h)) {
          if (!HEADER_NAME.test(name)) return `"${name}" is not a header name`;
          if (name.toLowerCase() === 'host') return 'match the Host header with hosts, not headers';
        }
        return null;
      },
    ),
    strip_path: Type.Boolean({ default: false, description: 'Remove the matched prefix before proxying' }),
    preserve_host: Type.Boolean({ default: false, description: "Send the client's Host upstream" }),
    websocket: Type.Boolean({ default: false, description: 'Proxy WebSocket upgrades (the handshake passes the plugins); false = Upgrade is stripped and the request served as a plain one' }),
    upstream: Type.Optional(Type.String({ description: 'Name of the upstream to proxy to' })),
    return: Type.Optional(Return),
    root: Type.Optional(Type.String({ minLength: 1, description: 'Directory of static files' })),
    plugins: Plugins('Plugins for this route, after the global ones'),
  },
  { ...Closed, description: 'A route: match, then proxy, return or serve files' },
);

const LogLevel = Type.Enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], { default: 'info', description: 'Least severe level written' });

/** The schema of one conf file (the main one or an included one) and of their merge. */
export const ConfSchema = Type.Object(
  {
    worker_processes: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('auto')], {
      default: 'auto',
      description: 'Worker threads; auto = one per CPU core',
      expected: 'an integer >= 1 or "auto"',
    }),
    worker_shutdown_timeout: duration({ description: 'Draining workers are stopped after', default: '10s' }),
    pid: Type.String({ minLength: 1, default: 'logs/sluice.pid', description: 'PID file of the master' }),
    plugin_paths: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Directories with custom plugins' }),
    error_log: Type.Object(
      {
        path: Type.String({ minLength: 1, default: 'stderr', description: 'Log file, or stderr' }),
        level: LogLevel,
      },
      { ...Closed, default: {}, description: 'Error log' },
    ),
    access_log: Type.Object(
      {
        path: Type.String({ minLength: 1, default: 'logs/access.log', description: 'Log file, stdout, or off' }),
        // Past a megabyte a buffer only delays lines (a write is one syscall either way), and a crash loses more.
        buffer: boundedSize({ description: 'Lines gathered before one write, as nginx buffer= (at most 1m); 0 = each line as it comes', default: 0, what: 'access log buffer', max: '1m' }),
        flush: duration({ description: 'With a buffer: the longest a line waits in it, as nginx flush=', default: '1s' }),
      },
      { ...Closed, default: {}, description: 'Access log' },
    ),
    // nginx refuses shared zones smaller than 8 pages; shdict needs room for its header and slots too.
    shared_dicts: Type.Record(Type.String(), boundedSize({ description: 'Zone size', what: 'shared dict', min: '8k' }), { default: {}, description: 'Shared dictionaries: name -> size' }),
    server: Server,
    status: Status,
    upstreams: Type.Record(Type.String(), Upstream, { default: {}, description: 'Upstreams by name' }),
    consumers: Type.Array(Consumer, { default: [], description: 'API consumers' }),
    plugins: Plugins('Global plugins: run on every route'),
    routes: Type.Array(Route, { default: [], description: 'Routes' }),
    include: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Globs of conf files merged into this one, relative to this file' })),
  },
  { ...Closed, description: 'Sluice conf' },
);
