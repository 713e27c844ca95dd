/**
 * The resolved conf: what `loadConf` returns after includes are merged, defaults
 * filled in, durations turned into milliseconds and sizes into bytes, and relative
 * paths resolved against the prefix. Master and workers see only this shape; it
 * crosses threads through workerData, so it holds plain data only (no RegExp, no
 * functions, no class instances).
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** A `host:port` from the conf. IPv6 is written `[::1]:8080`; host is kept without brackets. */
export interface ListenAddr {
  readonly host: string;
  readonly port: number;
}

export interface RealIpConf {
  /** Header the client address is read from, e.g. `X-Forwarded-For`. */
  readonly header: string;
  /** CIDRs (or bare IPs) of peers whose header is believed. */
  readonly trusted: readonly string[];
  /** true: client = rightmost untrusted address in the header (nginx real_ip_recursive on). */
  readonly recursive: boolean;
}

export interface ServerConf {
  readonly listen: readonly ListenAddr[];
  readonly client_max_body_size: number; // bytes, 0 = unlimited
  readonly client_header_timeout: number; // ms
  readonly client_body_timeout: number; // ms
  readonly keepalive_timeout: number; // ms
  readonly real_ip: RealIpConf | null;
}

export type Algorithm = 'round-robin' | 'least-conn' | 'consistent-hash' | 'ewma';

export interface TargetConf {
  /** As written: `127.0.0.1:9001`, `[::1]:9001`, `localhost:9001`. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}

export interface ActiveHealthcheckConf {
  readonly path: string;
  readonly interval: number; // ms
  readonly timeout: number; // ms
  readonly healthy: number; // successes to mark healthy
  readonly unhealthy: number; // failures to mark unhealthy
}

export interface PassiveHealthcheckConf {
  readonly max_fails: number;
  readonly fail_timeout: number; // ms
}

export interface UpstreamConf {
  readonly name: string;
  readonly algorithm: Algorithm;
  /** ip | consumer | user_id | company_id | uri | header:NAME | cookie:NAME */
  readonly hash_on: string;
  readonly targets: readonly TargetConf[];
  readonly keepalive: number;
  readonly connect_timeout: number; // ms
  readonly send_timeout: number; // ms
  readonly read_timeout: number; // ms
  readonly retries: number;
  /** Host header sent upstream when the route does not preserve the client's: null = the target's `host:port`. */
  readonly host_header: string | null;
  readonly healthcheck: {
    readonly active: ActiveHealthcheckConf | null;
    readonly passive: PassiveHealthcheckConf | null;
  };
}

export interface ConsumerConf {
  readonly username: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** plugin name -> list of credential objects, validated by that plugin later. */
  readonly credentials: Readonly<Record<string, readonly Readonly<Record<string, unknown>>[]>>;
}

export interface ReturnConf {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface RouteConf {
  readonly name: string;
  readonly hosts: readonly string[];
  /** As written, with nginx modifiers: `/p` prefix, `= /p` exact, `~ re` regex, `~* re` case-insensitive regex. */
  readonly paths: readonly string[];
  /** Upper-case; empty = any method. */
  readonly methods: readonly string[];
  readonly strip_path: boolean;
  /** Send the client's Host upstream (Kong `preserve_host`); otherwise the upstream's host_header or the target's address. */
  readonly preserve_host: boolean;
  /** Exactly one of upstream / return / root is set. */
  readonly upstream: string | null;
  readonly return: ReturnConf | null;
  /** Absolute directory for static files. */
  readonly root: string | null;
  readonly plugins: Readonly<Record<string, unknown>>;
}

export interface AccessLogConf {
  readonly path: string; // 'off' | 'stdout' | absolute path
  readonly buffer: number; // bytes gathered before a write; 0 = none
  readonly flush: number; // ms a buffered line may wait
}

export interface SluiceConf {
  /** Absolute path of the main conf file. */
  readonly file: string;
  /** Absolute prefix relative paths were resolved against. */
  readonly prefix: string;
  readonly worker_processes: number; // `auto` resolved to os.availableParallelism()
  readonly worker_shutdown_timeout: number; // ms
  readonly pid: string; // absolute
  readonly plugin_paths: readonly string[]; // absolute
  readonly error_log: { readonly path: string; readonly level: LogLevel }; // 'stderr' or absolute path
  readonly access_log: AccessLogConf;
  readonly shared_dicts: Readonly<Record<string, number>>; // name -> bytes
  readonly server: ServerConf;
  readonly status: { readonly listen: ListenAddr | null };
  readonly upstreams: Readonly<Record<string, UpstreamConf>>;
  readonly consumers: readonly ConsumerConf[];
  readonly plugins: Readonly<Record<string, unknown>>;
  readonly routes: readonly RouteConf[];
}

/** One problem found in a conf, printed by `sluice -t` as `file:line:col: path: message`. */
export interface ConfIssue {
  readonly file: string;
  readonly line: number; // 1-based
  readonly col: number; // 1-based
  /** Dotted path into the document, e.g. `routes[3].plugins.cors.max_age`; '' for the whole file. */
  readonly path: string;
  readonly message: string;
}
