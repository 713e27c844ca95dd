import { definePlugin, s, toMs, Type } from '../pdk/index.ts';
import type { LogCtx } from '../pdk/index.ts';
import { FACILITIES, headerHostname, rfc3164, rfc5424, SEVERITIES } from './format.ts';
import type { Facility, Severity } from './format.ts';
import { DISPOSE_STALL_MS, Shipper } from './shipper.ts';
import type { Pending } from './shipper.ts';
import { loggerFor, stopLoggers } from './logger-process.ts';
import { createTransport, LoggerTransport, parseServer, unixMessage } from './transport.ts';

const SEVERITY_NAMES = Object.keys(SEVERITIES) as [Severity, ...Severity[]];
const severity = (description: string) => s.oneOf(SEVERITY_NAMES, { default: 'info', description });

/** The log entry sent as the message, as JSON. */
function entryOf(ctx: LogCtx): object {
  const t = ctx.timing;
  return {
    started_at: t.start,
    client: ctx.client,
    route: ctx.route.name,
    request: { method: ctx.req.method, path: ctx.req.path, query: ctx.req.query.toString() },
    response: { status: ctx.res.status },
    upstream: ctx.upstreamAddr,
    latencies: { request: t.total, upstream: t.upstream, gateway: t.upstream === null ? t.total : t.total - t.upstream },
    request_id: ctx.requestId,
    consumer: ctx.identity?.consumer ?? null,
  };
}

/**
 * Kong's syslog options, sent to a remote or local syslog server (Kong's
 * writes only to the local syslog(3)). The `log` phase only enqueues; a
 * batcher per plugin instance formats and sends off the request path and,
 * when the server is slow or gone, drops new entries and counts them rather
 * than wait or grow. When the worker exits, `dispose` sends what is queued,
 * and the plugin's `dispose` ends the worker's `logger` processes (unix://).
 */
export const syslog = definePlugin({
  name: 'syslog',
  version: '1.0.0',
  priority: 4, // Kong's
  schema: s.object({
    server: Type.Refine(
      Type.String({ default: 'udp://127.0.0.1:514', description: 'udp://host:port, tcp://host:port (octet-counted framing) or unix:///path (the local syslog socket, e.g. /dev/log, written through one util-linux logger per worker)' }),
      (v) => parseServer(v) !== null,
      (v) => `invalid syslog server ${JSON.stringify(v)}: expected udp://host:port, tcp://host:port or unix:///path`,
    ),
    format: s.oneOf(['rfc5424', 'rfc3164'], { default: 'rfc5424', description: 'Message format to a udp or tcp server; a unix socket gets the local format syslog(3) sends, <PRI>TIMESTAMP sluice[PID]: MSG' }),
    facility: s.oneOf(Object.keys(FACILITIES) as [Facility, ...Facility[]], { default: 'user', description: 'Syslog facility' }),
    log_level: severity('Least severe entry sent: entries whose severity is below it are not sent'),
    successful_severity: severity('Severity of a response below 400'),
    client_errors_severity: severity('Severity of a 4xx response'),
    server_errors_severity: severity('Severity of a 5xx response'),
    batch_max_size: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'Entries per batch; a full batch is flushed at once' }),
    flush_interval: s.duration({ default: '1s', description: 'Longest an entry waits for its batch' }),
    queue_size: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000, description: 'Entries kept while the server is slow or gone; newer ones are dropped and counted' }),
  }, { description: 'Send a JSON log entry per request to a syslog server' }),

  create(conf, env) {
    const facility = FACILITIES[conf.facility] * 8;
    const threshold = SEVERITIES[conf.log_level];
    // PRI per status class, or -1 when that class is below log_level and not sent.
    const priOf = (sev: Severity): number => (SEVERITIES[sev] <= threshold ? facility + SEVERITIES[sev] : -1);
    const ok = priOf(conf.successful_severity);
    const clientErr = priOf(conf.client_errors_severity);
    const serverErr = priOf(conf.server_errors_severity);
    const host = headerHostname();
    const line = conf.format === 'rfc5424' ? rfc5424 : rfc3164;
    const server = parseServer(conf.server)!;
    const shipper = new Shipper({
      queueSize: conf.queue_size,
      batchSize: conf.batch_max_size,
      flushMs: toMs(conf.flush_interval),
      format: server.kind === 'unix'
        ? (p: Pending) => unixMessage(p.pri, JSON.stringify(p.entry))
        : (p: Pending) => line(p.pri, p.time, host, JSON.stringify(p.entry)),
      log: env.log,
      now: env.now,
      stallMs: DISPOSE_STALL_MS,
    });
    shipper.attach(server.kind === 'unix'
      ? new LoggerTransport(loggerFor(env, server.path), shipper.flush)
      : createTransport(server, env.log, shipper.flush));
    return {
      log(ctx) {
        const status = ctx.res.status;
        const pri = status >= 500 ? serverErr : status >= 400 ? clientErr : ok;
        if (pri !== -1) shipper.enqueue({ pri, time: ctx.timing.start, entry: entryOf(ctx) });
      },
      // On reload or quit, what waits for the next flush_interval is sent before the worker exits.
      dispose: () => shipper.dispose(),
    };
  },
  // After every instance has handed its queue to the worker's loggers: they send it, exit and are reaped.
  dispose: stopLoggers,
});
