import type { Logger } from 'pino';
import type { SluiceConf } from '../config/types.ts';
import { connectedEvent, targetConnector } from '../contracts/upstream-connect.ts';
import { HEALTHY, TARGET_SLOT, UNHEALTHY, downLeft, targetSlot, zoneClock } from '../contracts/upstream-zone.ts';
import type { UpstreamZone } from './upstream-zones.ts';
import { UpstreamError } from '../worker/upstream-client/connection.ts';
import type { Connection, UpstreamHandler } from '../worker/upstream-client/connection.ts';
import { UpstreamPool } from '../worker/upstream-client/pool.ts';

/**
 * Active health checks, run by the master so that every worker sees one
 * verdict per target (APISIX #13888: per-worker checkers diverge). A target
 * turns unhealthy after `unhealthy` consecutive failed probes and healthy
 * again after `healthy` consecutive good ones (2xx/3xx within `timeout`); the
 * verdict is written to the HEALTH slots of the upstream's zone (upstream-zone.ts).
 *
 * Probes reach a target as the proxy does, on the same client
 * (upstream-client/) and connector (upstream-connect.ts): https with the
 * upstream's TLS settings, so a target whose certificate fails verification
 * is unhealthy, and the log line says why.
 *
 * Across reloads an upstream that keeps its zone (upstream-zones.ts: same
 * targets) keeps its counters too, so a reload neither resurrects a dead
 * target nor forgets a recovering one; its connections are made anew, as its
 * TLS settings may have changed.
 */
interface Probe {
  readonly address: string;
  successes: number;
  failures: number;
  inFlight: boolean;
}

interface Checked {
  readonly zone: SharedArrayBuffer;
  readonly slots: Int32Array;
  readonly probes: Probe[];
  /** Per target: one connection, kept alive between probes (they never overlap). */
  pools: UpstreamPool[];
  /** Per target: the Host its probes carry. */
  hosts: string[];
  /** The upstream's passive fail_timeout (0 without passive checks), for reading DOWN_UNTIL marks. */
  failTimeout: number;
  timer: NodeJS.Timeout | null;
}

const healthSlot = (target: number): number => targetSlot(target, TARGET_SLOT.HEALTH);

export class HealthChecker {
  private upstreams = new Map<string, Checked>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /** (Re)starts probing `conf`'s upstreams into `zones` (a kept zone keeps its probe counters). */
  apply(conf: SluiceConf, zones: ReadonlyMap<string, UpstreamZone>): void {
    const next = new Map<string, Checked>();
    for (const [name, u] of Object.entries(conf.upstreams)) {
      const zone = zones.get(name)!.buffer;
      const old = this.upstreams.get(name);
      if (old?.timer != null) clearInterval(old.timer);
      if (old !== undefined) closePools(old.pools);
      const active = u.healthcheck.active;
      const connected = connectedEvent(u.tls);
      const pools = active === null ? [] : u.targets.map((t) => new UpstreamPool(targetConnector(t, u.tls), connected, {
        keepalive: 1,
        connect: active.timeout,
        read: active.timeout,
      }));
      const hosts = u.targets.map((t) => t.address);
      const failTimeout = u.healthcheck.passive?.fail_timeout ?? 0;
      let live: Checked;
      if (old !== undefined && old.zone === zone) {
        live = old;
        live.pools = pools;
        live.hosts = hosts;
        live.failTimeout = failTimeout;
        live.timer = null;
      } else {
        live = {
          zone,
          slots: new Int32Array(zone),
          probes: u.targets.map((t) => ({ address: t.address, successes: 0, failures: 0, inFlight: false })),
          pools,
          hosts,
          failTimeout,
          timer: null,
        };
      }
      if (active !== null) {
        live.timer = setInterval(() => this.round(name, live, active.path, active.timeout, active.healthy, active.unhealthy), active.interval);
        live.timer.unref();
      } else {
        // Checks switched off: nobody would ever mark these up again.
        for (let i = 0; i < u.targets.length; i++) live.slots[healthSlot(i)] = HEALTHY;
      }
      next.set(name, live);
    }
    for (const [name, old] of this.upstreams) {
      if (next.has(name)) continue;
      if (old.timer !== null) clearInterval(old.timer);
      closePools(old.pools);
    }
    this.upstreams = next;
  }

  /**
   * upstream → target address → verdict, for /status and the metrics: what
   * the balancer goes by, so a target that active checks failed and one that
   * passive checks took out (max_fails in any mix of workers) are both
   * `unhealthy`.
   */
  snapshot(): Record<string, Record<string, 'healthy' | 'unhealthy'>> {
    const out: Record<string, Record<string, 'healthy' | 'unhealthy'>> = {};
    const now = zoneClock();
    for (const [name, c] of this.upstreams) {
      const targets: Record<string, 'healthy' | 'unhealthy'> = {};
      c.probes.forEach((p, i) => {
        const down = c.slots[healthSlot(i)] === UNHEALTHY || downLeft(c.slots[targetSlot(i, TARGET_SLOT.DOWN_UNTIL)]!, now, c.failTimeout) > 0;
        targets[p.address] = down ? 'unhealthy' : 'healthy';
      });
      out[name] = targets;
    }
    return out;
  }

  /** Stops probing; a probe in flight ends within its timeout, on its own (its timer does not hold the process). */
  stop(): void {
    for (const c of this.upstreams.values()) {
      if (c.timer !== null) clearInterval(c.timer);
      closePools(c.pools);
    }
  }

  private round(name: string, c: Checked, path: string, timeout: number, healthy: number, unhealthy: number): void {
    c.probes.forEach((probe, i) => {
      if (probe.inFlight) return; // a probe slower than the interval is not stacked
      probe.inFlight = true;
      void probeOnce(c.pools[i]!, c.hosts[i]!, path, timeout).then((failure) => {
        probe.inFlight = false;
        if (failure === null) {
          probe.failures = 0;
          if (++probe.successes >= healthy && c.slots[healthSlot(i)] === UNHEALTHY) {
            c.slots[healthSlot(i)] = HEALTHY;
            this.log.warn({ upstream: name, target: probe.address }, 'upstream target is healthy again');
          }
        } else {
          probe.successes = 0;
          if (++probe.failures >= unhealthy && c.slots[healthSlot(i)] !== UNHEALTHY) {
            c.slots[healthSlot(i)] = UNHEALTHY;
            this.log.warn({ upstream: name, target: probe.address, failures: probe.failures, last_failure: failure }, 'upstream target marked unhealthy');
          }
        }
      });
    });
  }
}

/** Pools of a replaced conf: their probe in flight (if any) ends on its own; nothing is queued behind it. */
function closePools(pools: readonly UpstreamPool[]): void {
  for (const p of pools) p.close();
}

/** null when the target answered 2xx/3xx within `timeout`; else what went wrong (a status, or the error's code: a TLS one names the certificate fault). */
function probeOnce(pool: UpstreamPool, host: string, path: string, timeout: number): Promise<string | null> {
  return new Promise((resolve) => {
    let status = 0;
    let conn: Connection | null = null;
    // The whole probe, connect to the body's end, within `timeout` (connect_timeout and read_timeout are each the same bound).
    // Armed before the request, so a handler the pool calls at once finds it.
    const deadline = setTimeout(() => conn?.abort(new UpstreamError('GW_ERR_UPSTREAM_HEADERS_TIMEOUT', 'health probe timed out')), timeout);
    deadline.unref();
    const handler: UpstreamHandler = {
      onHead: (s) => { status = s; },
      onData: () => true,
      onEnd: () => {
        clearTimeout(deadline);
        resolve(status >= 200 && status < 400 ? null : `status ${status}`);
      },
      onError: (err) => {
        clearTimeout(deadline);
        resolve(err.code ?? err.message);
      },
      onUpgrade: (_headers, socket) => socket.destroy(), // never asked for: the parser refuses a 101 first
      onBodySent: () => {},
      onRequestSent: () => {},
    };
    conn = pool.request({ method: 'GET', target: path, headers: ['host', host, 'user-agent', 'sluice-healthcheck'], body: null, upgrade: false }, handler);
  });
}
