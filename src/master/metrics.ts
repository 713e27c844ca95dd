import {
  CONN_ACCEPTED, CONN_HANDLED, LATENCY_BOUNDS, WS_AT_DRAIN, WS_TOTAL, REQUESTS, ROUTE_SLOTS, STATUS_CLASSES, TOTAL_BUCKETS, TOTAL_SUM, UPSTREAM_BUCKETS,
  UPSTREAM_COUNT, UPSTREAM_SUM, routeBase,
} from '../contracts/stats-layout.ts';

/**
 * The counters of /status and /metrics summed over every worker, live and
 * retired, so that no count goes backwards when a reload retires a
 * generation: requests, accepted and handled connections, WebSockets opened
 * and closed at a drain's deadline, and the per-route
 * blocks keyed by route name (a route's index changes between confs; its
 * name is what an operator graphs), rendered as Prometheus text for GET /metrics.
 * Gauges (connections active) are not totals: they are read from live workers only.
 */
export const NO_ROUTE = '(none)';

export class Totals {
  requests = 0;
  accepted = 0;
  handled = 0;
  websockets = 0;
  websocketsAtDrain = 0;
  private readonly routes = new Map<string, Float64Array>();

  /** Adds one worker's counters; `routes` are its conf's route names in index order. */
  add(stats: Float64Array, routes: readonly string[]): void {
    this.requests += stats[REQUESTS]!;
    this.accepted += stats[CONN_ACCEPTED]!;
    this.handled += stats[CONN_HANDLED]!;
    this.websockets += stats[WS_TOTAL]!;
    this.websocketsAtDrain += stats[WS_AT_DRAIN]!;
    for (let i = 0; i <= routes.length; i++) {
      const name = i === routes.length ? NO_ROUTE : routes[i]!;
      let acc = this.routes.get(name);
      if (acc === undefined) this.routes.set(name, (acc = new Float64Array(ROUTE_SLOTS)));
      const base = routeBase(i);
      for (let s = 0; s < ROUTE_SLOTS; s++) acc[s]! += stats[base + s]!;
    }
  }

  /** A copy, so live workers can be added on top of the retired ones for one read. */
  clone(): Totals {
    const c = new Totals();
    c.requests = this.requests;
    c.accepted = this.accepted;
    c.handled = this.handled;
    c.websockets = this.websockets;
    c.websocketsAtDrain = this.websocketsAtDrain;
    for (const [name, acc] of this.routes) c.routes.set(name, acc.slice());
    return c;
  }

  routeEntries(): IterableIterator<[string, Float64Array]> {
    return this.routes.entries();
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

function renderHistogram(out: string[], name: string, help: string, totals: Totals, buckets: number, sum: number, count: number | null): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  for (const [route, acc] of totals.routeEntries()) {
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

export function renderMetrics(totals: Totals, families: readonly MetricFamily[]): string {
  const out: string[] = [];
  out.push('# HELP sluice_http_requests_total Requests answered, by route and status class.', '# TYPE sluice_http_requests_total counter');
  for (const [route, acc] of totals.routeEntries()) {
    for (let c = 0; c < 5; c++) {
      const n = acc[STATUS_CLASSES + c]!;
      if (n > 0) out.push(`sluice_http_requests_total{route="${label(route)}",status="${c + 1}xx"} ${n}`);
    }
  }
  renderHistogram(out, 'sluice_request_duration_seconds', 'Time from request arrival to the end of the response.', totals, TOTAL_BUCKETS, TOTAL_SUM, null);
  renderHistogram(out, 'sluice_upstream_duration_seconds', 'Time spent waiting on upstreams, summed over attempts.', totals, UPSTREAM_BUCKETS, UPSTREAM_SUM, UPSTREAM_COUNT);
  for (const f of families) renderFamily(out, f);
  return `${out.join('\n')}\n`;
}
