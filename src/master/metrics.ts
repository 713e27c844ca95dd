import {
  LATENCY_BOUNDS, ROUTE_SLOTS, STATUS_CLASSES, TOTAL_BUCKETS, TOTAL_SUM, UPSTREAM_BUCKETS, UPSTREAM_COUNT, UPSTREAM_SUM, routeBase,
} from '../contracts/stats-layout.ts';

/**
 * Per-route request metrics summed over every worker, live and retired, keyed
 * by route name (a route's index changes between confs; its name is what an
 * operator graphs), and rendered as Prometheus text for GET /metrics.
 */
export const NO_ROUTE = '(none)';

export class RouteTotals {
  private readonly totals = new Map<string, Float64Array>();

  /** Adds one worker's route blocks; `routes` are its conf's route names in index order. */
  add(stats: Float64Array, routes: readonly string[]): void {
    for (let i = 0; i <= routes.length; i++) {
      const name = i === routes.length ? NO_ROUTE : routes[i]!;
      let acc = this.totals.get(name);
      if (acc === undefined) this.totals.set(name, (acc = new Float64Array(ROUTE_SLOTS)));
      const base = routeBase(i);
      for (let s = 0; s < ROUTE_SLOTS; s++) acc[s]! += stats[base + s]!;
    }
  }

  /** A copy, so live workers can be added on top for one scrape. */
  clone(): RouteTotals {
    const c = new RouteTotals();
    for (const [name, acc] of this.totals) c.totals.set(name, acc.slice());
    return c;
  }

  entries(): IterableIterator<[string, Float64Array]> {
    return this.totals.entries();
  }
}

const label = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export interface GaugeSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly samples: readonly GaugeSample[];
}

function renderFamily(out: string[], f: MetricFamily): void {
  out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
  for (const s of f.samples) {
    const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
    out.push(`${f.name}${labels === '' ? '' : `{${labels}}`} ${s.value}`);
  }
}

function renderHistogram(out: string[], name: string, help: string, routes: RouteTotals, buckets: number, sum: number, count: number | null): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const [route, acc] of routes.entries()) {
    const r = label(route);
    let cumulative = 0;
    for (let b = 0; b <= LATENCY_BOUNDS.length; b++) {
      cumulative += acc[buckets + b]!;
      const le = b === LATENCY_BOUNDS.length ? '+Inf' : String(LATENCY_BOUNDS[b]! / 1000);
      out.push(`${name}_bucket{route="${r}",le="${le}"} ${cumulative}`);
    }
    out.push(`${name}_sum{route="${r}"} ${acc[sum]! / 1000}`);
    out.push(`${name}_count{route="${r}"} ${count === null ? cumulative : acc[count]!}`);
  }
}

export function renderMetrics(routes: RouteTotals, families: readonly MetricFamily[]): string {
  const out: string[] = [];
  out.push('# HELP sluice_http_requests_total Requests answered, by route and status class.', '# TYPE sluice_http_requests_total counter');
  for (const [route, acc] of routes.entries()) {
    for (let c = 0; c < 5; c++) {
      const n = acc[STATUS_CLASSES + c]!;
      if (n > 0) out.push(`sluice_http_requests_total{route="${label(route)}",status="${c + 1}xx"} ${n}`);
    }
  }
  renderHistogram(out, 'sluice_request_duration_seconds', 'Time from request arrival to the end of the response.', routes, TOTAL_BUCKETS, TOTAL_SUM, null);
  renderHistogram(out, 'sluice_upstream_duration_seconds', 'Time spent waiting on upstreams, summed over attempts.', routes, UPSTREAM_BUCKETS, UPSTREAM_SUM, UPSTREAM_COUNT);
  for (const f of families) renderFamily(out, f);
  return `${out.join('\n')}\n`;
}
