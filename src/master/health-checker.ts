import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { SluiceConf } from '../config/types.ts';
import { HEALTHY, TARGET_SLOT, TARGET_STRIDE, UNHEALTHY } from '../contracts/upstream-zone.ts';
import type { UpstreamZone } from './upstream-zones.ts';

/**
 * Active health checks, run by the master so that every worker sees one
 * verdict per target (APISIX #13888: per-worker checkers diverge). A target
 * turns unhealthy after `unhealthy` consecutive failed probes and healthy
 * again after `healthy` consecutive good ones (2xx/3xx within `timeout`); the
 * verdict is written to the HEALTH slots of the upstream's zone (upstream-zone.ts).
 *
 * Across reloads an upstream that keeps its zone (upstream-zones.ts: same
 * targets) keeps its counters too, so a reload neither resurrects a dead
 * target nor forgets a recovering one.
 */
interface Probe {
  readonly address: string;
  readonly url: string;
  successes: number;
  failures: number;
  inFlight: boolean;
}

interface Checked {
  readonly zone: SharedArrayBuffer;
  readonly slots: Int32Array;
  readonly probes: Probe[];
  timer: NodeJS.Timeout | null;
}

const healthSlot = (target: number): number => target * TARGET_STRIDE + TARGET_SLOT.HEALTH;

export class HealthChecker {
  private upstreams = new Map<string, Checked>();
  private readonly log: Logger;
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });

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
      let live: Checked;
      if (old !== undefined && old.zone === zone) live = old;
      else {
        live = {
          zone,
          slots: new Int32Array(zone),
          probes: u.targets.map((t) => ({
            address: t.address,
            url: `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`,
            successes: 0,
            failures: 0,
            inFlight: false,
          })),
          timer: null,
        };
      }
      live.timer = null;
      const active = u.healthcheck.active;
      if (active !== null) {
        live.timer = setInterval(() => this.round(name, live, active.path, active.timeout, active.healthy, active.unhealthy), active.interval);
        live.timer.unref();
      } else {
        // Checks switched off: nobody would ever mark these up again.
        for (let i = 0; i < u.targets.length; i++) live.slots[healthSlot(i)] = HEALTHY;
      }
      next.set(name, live);
    }
    for (const [name, old] of this.upstreams) if (!next.has(name) && old.timer !== null) clearInterval(old.timer);
    this.upstreams = next;
  }

  /** upstream → target address → verdict, for /status. */
  snapshot(): Record<string, Record<string, 'healthy' | 'unhealthy'>> {
    const out: Record<string, Record<string, 'healthy' | 'unhealthy'>> = {};
    for (const [name, c] of this.upstreams) {
      const targets: Record<string, 'healthy' | 'unhealthy'> = {};
      c.probes.forEach((p, i) => { targets[p.address] = c.slots[healthSlot(i)] === UNHEALTHY ? 'unhealthy' : 'healthy'; });
      out[name] = targets;
    }
    return out;
  }

  async stop(): Promise<void> {
    for (const c of this.upstreams.values()) if (c.timer !== null) clearInterval(c.timer);
    await this.agent.close();
  }

  private round(name: string, c: Checked, path: string, timeout: number, healthy: number, unhealthy: number): void {
    c.probes.forEach((probe, i) => {
      if (probe.inFlight) return; // a probe slower than the interval is not stacked
      probe.inFlight = true;
      void this.probe(probe.url + path, timeout).then((ok) => {
        probe.inFlight = false;
        if (ok) {
          probe.failures = 0;
          if (++probe.successes >= healthy && c.slots[healthSlot(i)] === UNHEALTHY) {
            c.slots[healthSlot(i)] = HEALTHY;
            this.log.warn({ upstream: name, target: probe.address }, 'upstream target is healthy again');
          }
        } else {
          probe.successes = 0;
          if (++probe.failures >= unhealthy && c.slots[healthSlot(i)] !== UNHEALTHY) {
            c.slots[healthSlot(i)] = UNHEALTHY;
            this.log.warn({ upstream: name, target: probe.address, failures: probe.failures }, 'upstream target marked unhealthy');
          }
        }
      });
    });
  }

  private async probe(url: string, timeout: number): Promise<boolean> {
    try {
      const res = await request(url, {
        dispatcher: this.agent,
        headers: { 'user-agent': 'sluice-healthcheck' },
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 400;
    } catch {
      return false;
    }
  }
}
