import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { SluiceConf, UpstreamConf } from '../config/types.ts';
import { HEALTHY, UNHEALTHY, createHealthBuffer } from '../contracts/health-layout.ts';

/**
 * Active health checks, run by the master so that every worker sees one
 * verdict per target (APISIX #13888: per-worker checkers diverge). A target
 * turns unhealthy after `unhealthy` consecutive failed probes and healthy
 * again after `healthy` consecutive good ones (2xx/3xx within `timeout`); the
 * verdict is written to the upstream's shared health buffer (health-state.ts).
 *
 * Across reloads an upstream whose name and targets are unchanged keeps its
 * buffer and counters, so a reload neither resurrects a dead target nor
 * forgets a recovering one.
 */
interface Probe {
  readonly address: string;
  readonly url: string;
  successes: number;
  failures: number;
  inFlight: boolean;
}

interface Checked {
  /** Identity of the target list: a changed list gets fresh state. */
  readonly key: string;
  readonly buffer: SharedArrayBuffer;
  readonly slots: Int32Array;
  readonly probes: Probe[];
  timer: NodeJS.Timeout | null;
}

const targetsKey = (u: UpstreamConf): string => u.targets.map((t) => t.address).join(',');

export class HealthChecker {
  private upstreams = new Map<string, Checked>();
  private readonly log: Logger;
  private readonly agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });

  constructor(log: Logger) {
    this.log = log;
  }

  /** Health buffers for `conf`'s upstreams (reused where unchanged); (re)starts probing. */
  apply(conf: SluiceConf): Record<string, SharedArrayBuffer> {
    const next = new Map<string, Checked>();
    for (const [name, u] of Object.entries(conf.upstreams)) {
      const key = targetsKey(u);
      const old = this.upstreams.get(name);
      if (old?.timer != null) clearInterval(old.timer);
      let live: Checked;
      if (old !== undefined && old.key === key) live = old;
      else {
        const buffer = createHealthBuffer(u.targets.length);
        live = {
          key,
          buffer,
          slots: new Int32Array(buffer),
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
        live.slots.fill(HEALTHY); // checks switched off: nobody would ever mark these up again
      }
      next.set(name, live);
    }
    for (const [name, old] of this.upstreams) if (!next.has(name) && old.timer !== null) clearInterval(old.timer);
    this.upstreams = next;
    return Object.fromEntries([...next].map(([name, c]) => [name, c.buffer]));
  }

  /** upstream → target address → verdict, for /status. */
  snapshot(): Record<string, Record<string, 'healthy' | 'unhealthy'>> {
    const out: Record<string, Record<string, 'healthy' | 'unhealthy'>> = {};
    for (const [name, c] of this.upstreams) {
      const targets: Record<string, 'healthy' | 'unhealthy'> = {};
      c.probes.forEach((p, i) => { targets[p.address] = c.slots[i] === UNHEALTHY ? 'unhealthy' : 'healthy'; });
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
          if (++probe.successes >= healthy && c.slots[i] === UNHEALTHY) {
            c.slots[i] = HEALTHY;
            this.log.warn({ upstream: name, target: probe.address }, 'upstream target is healthy again');
          }
        } else {
          probe.successes = 0;
          if (++probe.failures >= unhealthy && c.slots[i] !== UNHEALTHY) {
            c.slots[i] = UNHEALTHY;
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
