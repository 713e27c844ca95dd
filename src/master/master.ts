import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as LockServer } from 'node:net';
import type { Logger } from 'pino';
import { formatIssue } from '../config/format.ts';
import { loadConfWithPlugins } from '../plugins/load-conf.ts';
import { createErrorLog } from '../config/logger.ts';
import type { ErrorLog } from '../config/logger.ts';
import type { ListenAddr } from '../config/resolve.ts';
import type { SluiceConf } from '../config/types.ts';
import { CONN_ACTIVE, REQUESTS, WS_ACTIVE } from '../contracts/stats-layout.ts';
import { CacheCounters, hitRatio, purgeCache } from './cache.ts';
import { lockPidFile, removePidFile, writePidFile } from './pid-file.ts';
import { Totals, renderMetrics } from './metrics.ts';
import type { MetricFamily } from './metrics.ts';
import { startStatusServer } from './status-server.ts';
import { HealthChecker } from './health-checker.ts';
import { releaseInFlightShare } from '../contracts/upstream-zone.ts';
import { reconcileUpstreamZones, upstreamZoneBuffers } from './upstream-zones.ts';
import type { UpstreamZone } from './upstream-zones.ts';
import { Supervisor } from './supervisor.ts';
import type { SharedBuffers } from './supervisor.ts';
import { TicketKeys } from './ticket-keys.ts';
import { workerHeapLimitMb } from './worker-heap.ts';
import { VERSION } from './version.ts';
import { reconcileZones, wantedZones, zoneBuffers } from './zones.ts';
import type { Zone } from './zones.ts';

/**
 * The master: owns the conf, the zones, the worker generations, the status
 * listener and the signals. It never serves proxied traffic.
 *
 *   HUP   reload: validate, start a new generation, drain the old (rollback on any failure)
 *   QUIT  graceful stop · TERM/INT fast stop · USR1 reopen log files
 */
export interface MasterOptions {
  readonly confFile: string;
  readonly prefix: string;
}

interface ReloadStats {
  ok: number;
  failed: number;
  last_error: string | null;
}

export class Master {
  private conf: SluiceConf;
  private zones = new Map<string, Zone>();
  private upstreamZones = new Map<string, UpstreamZone>();
  private readonly supervisor: Supervisor;
  private readonly health: HealthChecker;
  private readonly log: Logger;
  private readonly errorLog: ErrorLog;
  private readonly opts: MasterOptions;
  private readonly started = Date.now();
  private readonly reloads: ReloadStats = { ok: 0, failed: 0, last_error: null };
  /** The counters of workers that have exited, so totals never go backwards. */
  private readonly retired = new Totals();
  private readonly cacheCounters = new CacheCounters();
  /** Kept across reloads, so tickets resume on every worker of any generation until the key's rotation. */
  private readonly ticketKeys: TicketKeys;
  private status: Server | null = null;
  /** The pid file the master holds the lock of: the conf's, moved by a reload that names another. */
  private pidFile: string;
  private lock: LockServer | null = null;
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;
  private stopping = false;

  constructor(conf: SluiceConf, opts: MasterOptions) {
    this.conf = conf;
    this.opts = opts;
    this.pidFile = conf.pid;
    this.errorLog = createErrorLog(conf.error_log.path, conf.error_log.level, { role: 'master' });
    const log = this.errorLog.log;
    this.log = log;
    this.health = new HealthChecker(log);
    this.ticketKeys = new TicketKeys(() => {
      this.supervisor.broadcast({ type: 'ticket-keys' });
      this.log.info('TLS ticket keys rotated');
    });
    this.supervisor = new Supervisor(log, {
      onWorkerExit: (w, code) => {
        this.retired.add(w.stats, w.routes);
        // A thread that died mid-operation may hold a stripe lock: free it (nginx does this for crashed workers).
        for (const z of this.zones.values()) z.dict.releaseLocksOwnedBy(w.id);
        // Its requests in flight will never end: a crashed worker's would otherwise count against their targets forever.
        for (const u of Object.values(w.upstreams)) releaseInFlightShare(u.zone, u.share);
        this.log.info({ worker: w.id, generation: w.generation, code }, 'worker exited');
      },
    });
  }

  /**
   * Starts everything or nothing: any failure (the pid file locked by another
   * master, a port in use, a worker that cannot start) stops what already
   * started, releases the lock and rejects; the caller exits non-zero.
   */
  async start(): Promise<void> {
    try {
      this.lock = await lockPidFile(this.pidFile);
      warnIfNoMigrate(this.log);
      // Bound before any worker starts, so that a busy port fails the start before it costs one.
      if (this.conf.status.listen !== null) this.status = await this.startStatus(this.conf.status.listen);
      this.zones = await reconcileZones(this.zones, wantedZones(this.conf), this.log);
      this.upstreamZones = reconcileUpstreamZones(this.upstreamZones, this.conf.upstreams);
      this.health.apply(this.conf, this.upstreamZones);
      await this.supervisor.startGeneration(this.conf, this.shared(this.conf, this.zones, this.upstreamZones));
      this.ticketKeys.schedule(ticketRotation(this.conf));
      writePidFile(this.pidFile);
    } catch (err) {
      this.log.error({ err }, 'start failed; stopping');
      await this.shutdown(false);
      throw err;
    }
    process.on('SIGHUP', () => void this.reload());
    process.on('SIGQUIT', () => void this.stop(true));
    process.on('SIGTERM', () => void this.stop(false));
    process.on('SIGINT', () => void this.stop(false));
    process.on('SIGUSR1', () => this.reopen());
    this.log.info({
      version: VERSION, workers: this.conf.worker_processes, worker_heap_limit_mb: workerHeapLimitMb(this.conf.worker_processes),
      listen: this.conf.server.listen, conf: this.opts.confFile,
    }, 'sluice started');
  }

  /** Reloads arriving while one runs are coalesced into one more pass: the conf on disk last wins. */
  reload(): Promise<void> {
    if (this.reloading !== null) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        await this.reloadOnce();
      } while (this.reloadAgain && !this.stopping);
      this.reloading = null;
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    if (this.stopping) return;
    this.log.info({ conf: this.opts.confFile }, 'reload requested');
    // One draining generation at most: wait for the last one before reading the conf, so the newest on disk is started.
    await this.supervisor.drained();
    if (this.stopping) return;
    const loaded = await loadConfWithPlugins(this.opts.confFile, { prefix: this.opts.prefix });
    if (!loaded.ok) {
      this.reloadFailed(loaded.issues.map(formatIssue).join('\n'));
      return;
    }
    for (const w of loaded.warnings) this.log.warn({ conf: formatIssue(w) }, 'conf warning');
    const conf = loaded.conf;
    let zones: Map<string, Zone>;
    const upstreamZones = reconcileUpstreamZones(this.upstreamZones, conf.upstreams);
    // The master's own settings move too, as nginx's do on reload. A new pid file's lock and a new status
    // address are taken before the generation starts: another master's pid file or a busy port fails the reload.
    const movePid = conf.pid !== this.pidFile;
    const moveStatus = addressKey(conf.status.listen) !== addressKey(this.conf.status.listen);
    let lock: LockServer | null = null;
    let status: Server | null = null;
    try {
      if (movePid) lock = await lockPidFile(conf.pid);
      if (moveStatus && conf.status.listen !== null) status = await this.startStatus(conf.status.listen);
      zones = await reconcileZones(this.zones, wantedZones(conf), this.log);
      this.health.apply(conf, upstreamZones);
      await this.supervisor.startGeneration(conf, this.shared(conf, zones, upstreamZones));
    } catch (err) {
      lock?.close();
      status?.close();
      this.health.apply(this.conf, this.upstreamZones); // back to probing what the old generation uses
      this.reloadFailed((err as Error).message);
      return;
    }
    if (movePid) {
      writePidFile(conf.pid);
      removePidFile(this.pidFile);
      this.lock?.close();
      this.lock = lock;
      this.pidFile = conf.pid;
    }
    if (moveStatus) {
      this.status?.close();
      this.status?.closeAllConnections();
      this.status = status;
    }
    this.errorLog.use(conf.error_log.path, conf.error_log.level);
    this.conf = conf;
    this.zones = zones;
    this.upstreamZones = upstreamZones;
    this.ticketKeys.schedule(ticketRotation(conf));
    this.reloads.ok++;
    this.log.info({ generation: this.supervisor.generation }, 'reload complete; old workers draining');
  }

  private startStatus(addr: ListenAddr): Promise<Server> {
    return startStatusServer(addr, {
      status: () => this.statusDocument(),
      metrics: () => this.metricsDocument(),
      purge: (query) => purgeCache(this.conf, this.zones, query),
    }).catch((err: unknown) => {
      throw new Error(`status.listen: ${(err as Error).message}`);
    });
  }

  /** What a generation on `conf` attaches to. */
  private shared(conf: SluiceConf, zones: ReadonlyMap<string, Zone>, upstreamZones: ReadonlyMap<string, UpstreamZone>): SharedBuffers {
    return { zones: zoneBuffers(zones), upstreams: upstreamZoneBuffers(upstreamZones), ticketKeys: conf.server.tls.session_tickets ? this.ticketKeys.shared : null };
  }

  private reloadFailed(reason: string): void {
    this.reloads.failed++;
    this.reloads.last_error = reason;
    this.log.error({ reason }, 'reload failed; still serving the previous conf');
  }

  private reopen(): void {
    this.errorLog.reopen();
    this.supervisor.broadcast({ type: 'reopen' });
    this.log.info('log files reopened');
  }

  async stop(graceful: boolean): Promise<void> {
    if (this.stopping && graceful) return;
    this.log.info({ graceful }, graceful ? 'graceful stop' : 'fast stop');
    await this.shutdown(graceful);
    process.exit(0);
  }

  private async shutdown(graceful: boolean): Promise<void> {
    this.stopping = true;
    this.status?.close();
    this.status?.closeAllConnections();
    await this.supervisor.stopAll(graceful);
    this.health.stop();
    this.ticketKeys.stop();
    if (this.lock !== null) {
      removePidFile(this.pidFile);
      this.lock.close();
    }
    this.errorLog.flushSync();
  }

  /** Every worker's counters: the retired ones' final counts and the live ones' now. */
  private totals(): Totals {
    const t = this.retired.clone();
    for (const w of this.supervisor.workers) t.add(w.stats, w.routes);
    return t;
  }

  /** A gauge (CONN_ACTIVE, WS_ACTIVE), not a total: live workers only. */
  private gauge(slot: number): number {
    let active = 0;
    for (const w of this.supervisor.workers) active += w.stats[slot]!;
    return active;
  }

  metricsDocument(): string {
    const totals = this.totals();
    const health = this.health.snapshot();
    const families: MetricFamily[] = [
      { name: 'sluice_connections_active', help: 'Client connections open now.', type: 'gauge', samples: [{ labels: {}, value: this.gauge(CONN_ACTIVE) }] },
      { name: 'sluice_connections_accepted_total', help: 'Client connections accepted since start, over every generation of workers.', type: 'counter', samples: [{ labels: {}, value: totals.accepted }] },
      { name: 'sluice_websockets_active', help: 'WebSockets open now.', type: 'gauge', samples: [{ labels: {}, value: this.gauge(WS_ACTIVE) }] },
      { name: 'sluice_websockets_total', help: 'WebSockets opened (101 relayed), over every generation of workers.', type: 'counter', samples: [{ labels: {}, value: totals.websockets }] },
      { name: 'sluice_websockets_closed_at_drain_total', help: 'WebSockets a draining worker closed with 1001 at worker_shutdown_timeout.', type: 'counter', samples: [{ labels: {}, value: totals.websocketsAtDrain }] },
      { name: 'sluice_workers', help: 'Worker threads, by state.', type: 'gauge', samples: (['starting', 'running', 'draining'] as const).map((state) => ({
        labels: { state }, value: [...this.supervisor.workers].filter((w) => w.state === state).length,
      })) },
      { name: 'sluice_worker_restarts_total', help: 'Replacements started for workers that died.', type: 'counter', samples: [{ labels: {}, value: this.supervisor.restarts }] },
      { name: 'sluice_reloads_total', help: 'Reloads, by result.', type: 'counter', samples: [
        { labels: { result: 'ok' }, value: this.reloads.ok }, { labels: { result: 'failed' }, value: this.reloads.failed },
      ] },
      { name: 'sluice_upstream_target_healthy', help: 'Health verdict the balancer goes by, active checks and passive (max_fails) alike (1 healthy, 0 unhealthy).', type: 'gauge',
        samples: Object.entries(health).flatMap(([upstream, targets]) => Object.entries(targets).map(([target, v]) => ({
          labels: { upstream, target }, value: v === 'healthy' ? 1 : 0,
        }))) },
      ...this.dictFamilies(),
      { name: 'sluice_cache_requests_total', help: 'proxy-cache requests, by route and X-Cache-Status.', type: 'counter',
        samples: [...this.cacheCounters.read(this.conf, this.zones)].flatMap(([route, counts]) => Object.entries(counts).map(([status, value]) => ({
          labels: { route, status }, value,
        }))) },
    ];
    return renderMetrics(totals, families);
  }

  private dictFamilies(): MetricFamily[] {
    const stats = [...this.zones].map(([name, z]) => ({ name, s: z.dict.stats() }));
    const family = (metric: string, help: string, pick: (s: { capacity: number; freeSpace: number; keys: number }) => number): MetricFamily => ({
      name: metric, help, type: 'gauge', samples: stats.map(({ name, s }) => ({ labels: { dict: name }, value: pick(s) })),
    });
    return [
      family('sluice_shared_dict_capacity_bytes', 'Size of a shared dict zone.', (s) => s.capacity),
      family('sluice_shared_dict_free_bytes', 'Free space in a shared dict zone.', (s) => s.freeSpace),
      family('sluice_shared_dict_keys', 'Keys in a shared dict zone (expired ones included until reclaimed).', (s) => s.keys),
    ];
  }

  statusDocument(): unknown {
    const workers = [...this.supervisor.workers].map((w) => ({
      id: w.id,
      thread_id: w.thread.threadId,
      generation: w.generation,
      state: w.state,
      requests: w.stats[REQUESTS]!,
    }));
    const totals = this.totals();
    const shared_dicts: Record<string, unknown> = {};
    for (const [name, z] of this.zones) {
      const s = z.dict.stats();
      shared_dicts[name] = { capacity: s.capacity, free_space: s.freeSpace, keys: s.keys };
    }
    return {
      version: VERSION,
      pid: process.pid,
      uptime_s: Math.floor((Date.now() - this.started) / 1000),
      generation: this.supervisor.generation,
      workers,
      connections: { active: this.gauge(CONN_ACTIVE), accepted: totals.accepted, handled: totals.handled },
      requests_total: totals.requests,
      websockets: { active: this.gauge(WS_ACTIVE), total: totals.websockets, closed_at_drain: totals.websocketsAtDrain },
      reloads: this.reloads,
      shared_dicts,
      cache: Object.fromEntries([...this.cacheCounters.read(this.conf, this.zones)].map(([route, counts]) => [route, { requests: counts, hit_ratio: hitRatio(counts) }])),
      upstreams: this.health.snapshot(),
    };
  }
}

/**
 * Closing an SO_REUSEPORT listener resets the connections queued on it unless
 * the kernel may migrate them (Linux >= 5.14, per network namespace).
 */
function warnIfNoMigrate(log: Logger): void {
  let value: string;
  try {
    value = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return; // not Linux, or a kernel without the knob
  }
  if (value === '0') {
    log.warn('net.ipv4.tcp_migrate_req is 0: connections queued on a draining worker are reset on reload; set it to 1 (sysctl -w net.ipv4.tcp_migrate_req=1)');
  }
}

/** How often the ticket keys rotate under `conf` (ms): never when no tls listener issues tickets. */
function ticketRotation(conf: SluiceConf): number {
  const { tls } = conf.server;
  return tls.session_tickets && conf.server.listen.some((l) => l.tls) ? tls.session_ticket_rotation : 0;
}

const addressKey = (a: ListenAddr | null): string => (a === null ? 'off' : `${a.host}:${a.port}`);
