/**
 * From the checked conf as written (defaults filled in) to the SluiceConf every
 * process uses: durations in ms, sizes in bytes, addresses parsed, paths absolute,
 * `auto` and `off` resolved. It runs only on a conf that passed every check, so it
 * reads its input by its schema type and has nothing to report; the types below say
 * only what resolving changes, the rest is the written conf's own type.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { parseHostPort } from './addresses.ts';
import type { HostPort } from './addresses.ts';
import { DEFAULT_WEIGHT } from './schema.ts';
import type { LoadedCertificate, UpstreamTlsFiles } from './tls-certificates.ts';
import type { ConfFile } from './types.ts';
import { parseDuration, parseSize } from './units.ts';

type WrittenUpstream = ConfFile['upstreams'][string];
type WrittenHealthcheck = WrittenUpstream['healthcheck'];
type WrittenConsumer = ConfFile['consumers'][number];
type WrittenRoute = ConfFile['routes'][number];

/** The resolved conf is shared by every part of a process and never changed: readonly all the way down. */
type Frozen<T> = T extends readonly (infer U)[] ? readonly Frozen<U>[] : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;

export type LogLevel = ConfFile['error_log']['level'];
export type Algorithm = WrittenUpstream['algorithm'];

/** A `host:port` from the conf. IPv6 is written `[::1]:8080`; host is kept without brackets. */
export type ListenAddr = HostPort;

/** A proxy listener: its address and protocols. */
export interface ListenConf extends ListenAddr {
  readonly tls: boolean;
  readonly http2: boolean;
}

type TlsProtocol = ConfFile['server']['tls']['protocols'][number];

export interface TlsConf {
  /** Checked and read by tls-certificates.ts; the first is the default. */
  readonly certificates: readonly LoadedCertificate[];
  readonly minVersion: TlsProtocol;
  readonly maxVersion: TlsProtocol;
  readonly ciphers: string | null;
  readonly session_cache: number; // bytes, 0 = none
  readonly session_tickets: boolean;
  readonly session_ticket_rotation: number; // ms, 0 = never
}

export type RealIpConf = Frozen<NonNullable<ConfFile['server']['real_ip']>>;

export interface ServerConf
  extends Frozen<Omit<ConfFile['server'], 'listen' | 'tls' | 'client_max_body_size' | 'client_header_timeout' | 'client_body_timeout' | 'keepalive_timeout'>> {
  readonly listen: readonly ListenConf[];
  readonly tls: TlsConf;
  readonly client_max_body_size: number; // bytes, 0 = unlimited
  readonly client_header_timeout: number; // ms
  readonly client_body_timeout: number; // ms
  readonly keepalive_timeout: number; // ms
}

export interface TargetConf extends HostPort {
  /** As written: `127.0.0.1:9001`, `[::1]:9001`, `localhost:9001`. */
  readonly address: string;
  readonly weight: number;
  /** Used only when every non-backup target is down. */
  readonly backup: boolean;
}

export interface ActiveHealthcheckConf extends Frozen<Omit<NonNullable<WrittenHealthcheck['active']>, 'interval' | 'timeout'>> {
  readonly interval: number; // ms
  readonly timeout: number; // ms
}

export interface PassiveHealthcheckConf extends Frozen<Omit<NonNullable<WrittenHealthcheck['passive']>, 'fail_timeout'>> {
  readonly fail_timeout: number; // ms
}

/** An upstream's `tls` with its files read: the PEM text the master checked, never a path a worker would read. */
export interface UpstreamTlsConf extends UpstreamTlsFiles {
  readonly verify: boolean;
  /** SNI and the name verified; null = the target's host (no SNI for an IP). */
  readonly server_name: string | null;
}

export interface UpstreamConf extends Frozen<Omit<WrittenUpstream, 'targets' | 'connect_timeout' | 'send_timeout' | 'read_timeout' | 'healthcheck' | 'tls'>> {
  readonly name: string;
  /** null: cleartext HTTP to the targets. */
  readonly tls: UpstreamTlsConf | null;
  readonly targets: readonly TargetConf[];
  readonly connect_timeout: number; // ms
  readonly send_timeout: number; // ms
  readonly read_timeout: number; // ms
  readonly healthcheck: { readonly active: ActiveHealthcheckConf | null; readonly passive: PassiveHealthcheckConf | null };
}

export interface ConsumerConf extends Frozen<Omit<WrittenConsumer, 'attributes'>> {
  /** Numbers written as attributes become strings: identity values are sent as headers. */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface ReturnConf extends Frozen<Omit<NonNullable<WrittenRoute['return']>, 'headers'>> {
  readonly headers: Readonly<Record<string, string>>;
}

export interface RouteConf extends Frozen<Omit<WrittenRoute, 'upstream' | 'return' | 'root'>> {
  /** Exactly one of upstream / return / root is set. */
  readonly upstream: string | null;
  readonly return: ReturnConf | null;
  /** Absolute directory for static files. */
  readonly root: string | null;
}

export interface AccessLogConf extends Frozen<Omit<ConfFile['access_log'], 'buffer' | 'flush'>> {
  readonly path: string; // 'off' | 'stdout' | absolute path
  readonly buffer: number; // bytes gathered before a write; 0 = none
  readonly flush: number; // ms a buffered line may wait
}

export interface SluiceConf
  extends Frozen<Omit<
    ConfFile,
    'worker_processes' | 'worker_shutdown_timeout' | 'access_log' | 'shared_dicts' | 'server' | 'status' | 'upstreams' | 'consumers' | 'routes' | 'include'
  >> {
  /** Absolute path of the main conf file. */
  readonly file: string;
  /** Absolute prefix relative paths were resolved against. */
  readonly prefix: string;
  readonly worker_processes: number; // `auto` resolved to os.availableParallelism()
  readonly worker_shutdown_timeout: number; // ms
  readonly access_log: AccessLogConf;
  readonly shared_dicts: Readonly<Record<string, number>>; // name -> bytes
  readonly server: ServerConf;
  readonly status: { readonly listen: ListenAddr | null };
  readonly upstreams: Readonly<Record<string, UpstreamConf>>;
  readonly consumers: readonly ConsumerConf[];
  readonly routes: readonly RouteConf[];
}

export function resolveConf(
  c: ConfFile, file: string, prefix: string, certificates: readonly LoadedCertificate[], upstreamTls: Readonly<Record<string, UpstreamTlsFiles>>,
): SluiceConf {
  const at = (p: string) => (isAbsolute(p) ? p : resolvePath(prefix, p));
  const keep = (special: readonly string[], p: string) => (special.includes(p) ? p : at(p));
  return {
    file,
    prefix,
    worker_processes: c.worker_processes === 'auto' ? availableParallelism() : c.worker_processes,
    worker_shutdown_timeout: parseDuration(c.worker_shutdown_timeout),
    pid: at(c.pid),
    plugin_paths: c.plugin_paths.map(at),
    error_log: { ...c.error_log, path: keep(['stderr'], c.error_log.path) },
    access_log: { path: keep(['off', 'stdout'], c.access_log.path), buffer: parseSize(c.access_log.buffer), flush: parseDuration(c.access_log.flush) },
    shared_dicts: Object.fromEntries(Object.entries(c.shared_dicts).map(([name, v]) => [name, parseSize(v)])),
    server: {
      ...c.server,
      listen: c.server.listen.map((l) => {
        const { address, tls, http2 } = typeof l === 'string' ? { address: l, tls: false, http2: false } : l;
        return { ...hostPort(address, 0), tls, http2 };
      }),
      tls: resolveTls(c.server.tls, certificates),
      client_max_body_size: parseSize(c.server.client_max_body_size),
      client_header_timeout: parseDuration(c.server.client_header_timeout),
      client_body_timeout: parseDuration(c.server.client_body_timeout),
      keepalive_timeout: parseDuration(c.server.keepalive_timeout),
    },
    status: { listen: c.status.listen === null || c.status.listen === 'off' ? null : hostPort(c.status.listen, 0) },
    upstreams: Object.fromEntries(Object.entries(c.upstreams).map(([name, u]) => [name, resolveUpstream(name, u, upstreamTls[name])])),
    consumers: c.consumers.map((u) => ({ ...u, attributes: stringMap(u.attributes) })),
    plugins: c.plugins,
    routes: c.routes.map((r) => ({
      ...r,
      hosts: r.hosts.map((h) => h.toLowerCase()),
      // Lower case, as node hands request headers to the router.
      headers: Object.fromEntries(Object.entries(r.headers).map(([name, values]) => [name.toLowerCase(), values])),
      methods: r.methods.map((m) => m.toUpperCase()),
      upstream: r.upstream ?? null,
      return: r.return === undefined ? null : { ...r.return, headers: stringMap(r.return.headers) },
      root: r.root === undefined ? null : at(r.root),
    })),
  };
}

/** Versions are ordered by name (TLSv1.2 < TLSv1.3), as OpenSSL's min/max take them. */
function resolveTls(t: ConfFile['server']['tls'], certificates: readonly LoadedCertificate[]): TlsConf {
  const versions = [...t.protocols].sort();
  return {
    certificates,
    minVersion: versions[0]!,
    maxVersion: versions[versions.length - 1]!,
    ciphers: t.ciphers,
    session_cache: parseSize(t.session_cache),
    session_tickets: t.session_tickets,
    session_ticket_rotation: parseDuration(t.session_ticket_rotation),
  };
}

function resolveUpstream(name: string, u: WrittenUpstream, files: UpstreamTlsFiles | undefined): UpstreamConf {
  const { active, passive } = u.healthcheck;
  return {
    ...u,
    name,
    tls: u.tls === null || files === undefined ? null : { verify: u.tls.verify, server_name: u.tls.server_name, ...files },
    targets: u.targets.map((t) => {
      const { address, weight, backup } = typeof t === 'string' ? { address: t, weight: DEFAULT_WEIGHT, backup: false } : t;
      return { address, ...hostPort(address, 1), weight, backup };
    }),
    connect_timeout: parseDuration(u.connect_timeout),
    send_timeout: parseDuration(u.send_timeout),
    read_timeout: parseDuration(u.read_timeout),
    healthcheck: {
      active: active === null ? null : { ...active, interval: parseDuration(active.interval), timeout: parseDuration(active.timeout) },
      passive: passive === null ? null : { ...passive, fail_timeout: parseDuration(passive.fail_timeout) },
    },
  };
}

/** The schema has checked every address: a failure here is a bug, not a conf fault. */
function hostPort(s: string, minPort: 0 | 1): HostPort {
  const hp = parseHostPort(s, minPort);
  if (typeof hp === 'string') throw new Error(`unchecked address "${s}": ${hp}`);
  return hp;
}

function stringMap(o: Readonly<Record<string, string | number>>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
}
