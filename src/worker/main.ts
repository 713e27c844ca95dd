import { flushCompileCache } from 'node:module';
import { createServer } from 'node:http';
import type { Server, ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { createErrorLog } from '../config/logger.ts';
import type { Obj } from '../config/loose.ts';
import { loadPluginRegistry, pluginNamesIn } from '../plugins/index.ts';
import { createAccessLog } from './access-log.ts';
import { createConnectionHandlers } from './connection.ts';
import { createGateway } from './gateway.ts';
import type { Gateway } from './gateway.ts';
import type { Lifecycle } from './exchange.ts';
import type { FromWorker, ToWorker, WorkerData } from '../contracts/messages.ts';
import { CONN_ACCEPTED, CONN_ACTIVE, CONN_HANDLED } from '../contracts/stats-layout.ts';
import { TLS_SESSION_DICT } from '../contracts/tls.ts';
import { SharedDict } from '../shdict/index.ts';
import { createTlsSetup } from './tls-context.ts';
import { createHttp2Listener } from './http2-server.ts';
import type { Http2Listener } from './http2-server.ts';
import { Tunnels } from './websocket.ts';
import { isAlive } from '../contracts/liveness.ts';
import { refuseBody } from './proxy.ts';

/**
 * A worker thread: one reactor serving every `listen` address with
 * SO_REUSEPORT, so the kernel spreads connections over the workers (nginx
 * `reuseport`). It builds its pipeline once from the conf it was started with
 * and never changes it: a reload is a new generation of workers.
 */
const data = workerData as WorkerData;
const { conf } = data;
const port = parentPort!;
const post = (msg: FromWorker): void => port.postMessage(msg);

const errorLog = createErrorLog(conf.error_log.path, conf.error_log.level, { worker: data.id, generation: data.generation });
const { log } = errorLog;
const accessLog = createAccessLog(conf.access_log, data.id);
const stats = new Float64Array(data.stats);
const lifecycle: Lifecycle = { draining: false };
const tunnels = new Tunnels(stats);

/**
 * Plugins (built-in and from plugin_paths) and the pipeline are built before
 * listening: a conf whose plugins fail to build never serves, and the master
 * hears why through the same 'failed' message as a port that cannot be bound.
 */
async function build(): Promise<Gateway> {
  const registry = await loadPluginRegistry(conf.plugin_paths, pluginNamesIn(conf as unknown as Obj));
  const alive = new Int32Array(data.liveness);
  return await createGateway({
    conf, log, accessLog, stats, lifecycle, plugins: registry.plugins, zones: data.zones, upstreams: data.upstreams, workerId: data.id, tunnels,
    workerAlive: (id) => isAlive(alive, id),
  });
}

/** Reported like a port that cannot be bound: the master keeps the old generation. */
function startFailed(err: unknown): never {
  const e = err as NodeJS.ErrnoException;
  log.error({ err: { code: e.code, message: e.message } }, 'worker could not start');
  post({ type: 'failed', code: e.code ?? 'GW_ERR_START', message: e.message });
  // Nothing was served: the access log has no line to lose.
  errorLog.flushSync();
  process.exit(1);
}

const gateway = await build().catch(startFailed);
const requests = createConnectionHandlers({ serve: gateway.handle, reject: gateway.reject, upgrade: gateway.upgrade, refuseBody }, log);

function onSocketClose(): void {
  stats[CONN_ACTIVE]!--;
  stats[CONN_HANDLED]!++;
}

function onConnection(socket: Socket): void {
  stats[CONN_ACCEPTED]!++;
  stats[CONN_ACTIVE]!++;
  socket.once('close', onSocketClose);
}

const httpOptions: ServerOptions = {
  keepAliveTimeout: conf.server.keepalive_timeout,
  headersTimeout: conf.server.client_header_timeout,
  // The body timer is ours (idle between reads, gateway.ts); Node's whole-request deadline is off.
  requestTimeout: 0,
  // Node checks header deadlines on this interval (default 30 s): keep 408s close to the conf.
  connectionsCheckingInterval: Math.min(1000, conf.server.client_header_timeout),
  // A missing Host is refused by the request guard, so that its 400 is written and logged like every other.
  requireHostHeader: false,
  // Only a WebSocket handshake for a websocket route is an upgrade; any other Upgrade is a plain request (the header is dropped).
  shouldUpgradeCallback: gateway.upgrades,
};

/** Built once for every tls listener of the worker (tls-context.ts); -t made sure there are certificates. */
const tls = conf.server.listen.some((l) => l.tls)
  ? createTlsSetup(conf.server.tls, data.ticketKeys, data.zones[TLS_SESSION_DICT] === undefined ? null : SharedDict.attach(data.zones[TLS_SESSION_DICT], { owner: data.id }))
  : null;

/** A listener's server: Node's HTTP/1.1 (plain or https), or HTTP/2 with HTTP/1.1 by ALPN. */
type Listener = Server | Http2Listener;

const servers: Listener[] = conf.server.listen.map((l) => {
  if (l.http2) {
    const h2 = createHttp2Listener({ http1: httpOptions, tls: tls!, keepaliveMs: conf.server.keepalive_timeout, gateway, requests, log });
    h2.on('connection', onConnection);
    return h2;
  }
  let server: Server;
  if (l.tls) {
    const https = createHttpsServer({ ...httpOptions, ...tls!.options }, requests.onRequest);
    tls!.attach(https);
    server = https;
  } else server = createServer(httpOptions, requests.onRequest);
  server.on('clientError', requests.onClientError);
  server.on('connection', onConnection);
  server.on('connect', requests.onConnect);
  server.on('upgrade', requests.onUpgrade);
  return server;
});

function listen(server: Listener, host: string, portNumber: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: portNumber, reusePort: true, backlog: 511 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Plugins' dispose (syslog's queue, Redis clients) gets worker_shutdown_timeout
 * after a drain or a quit; a fast stop gives it what the master's stop allows.
 */
const STOP_DISPOSE_MS = 500;

async function exit(code: number, disposeMs = conf.worker_shutdown_timeout): Promise<never> {
  await gateway.close(disposeMs).catch((err: unknown) => log.error({ err }, 'worker close failed'));
  await accessLog?.close();
  errorLog.flushSync();
  process.exit(code);
}

/**
 * How long a keep-alive connection may sit idle once the worker drains. A
 * connection idle at the instant of the drain is usually between two requests
 * of a busy client: closing it then races the client's next request, which
 * the client sees as a reset (measured: ~2 per reload under load). Given a
 * moment, that next request arrives and is answered with Connection: close,
 * which the client honours cleanly; a connection still idle after it is closed.
 */
const DRAIN_IDLE_GRACE_MS = 100;

/** Closes the listening socket only; Node's close() would also cut idle connections at once. */
function stopAccepting(server: Listener, onClosed: () => void): void {
  const closeIdle = server.closeIdleConnections;
  server.closeIdleConnections = () => {};
  server.close(onClosed);
  server.closeIdleConnections = closeIdle;
}

/**
 * Graceful drain (nginx's old workers on reload): stop accepting (with
 * tcp_migrate_req=1 the kernel moves queued connections to a live listener),
 * answer in-flight and further requests with Connection: close (HTTP/2
 * sessions get a GOAWAY from the server's close(), their open streams
 * finishing), close idle keep-alive connections, and exit when the last
 * connection is gone or at worker_shutdown_timeout, when what remains is cut.
 */
function drain(): void {
  if (lifecycle.draining) return;
  lifecycle.draining = true;
  let open = servers.length;
  const deadline = setTimeout(() => {
    // Open WebSockets are what usually remains (closeAllConnections does not see them: Node handed their sockets over).
    const websockets = tunnels.goAway();
    log.warn({ websockets }, 'worker_shutdown_timeout reached: closing remaining connections, WebSockets with 1001');
    for (const s of servers) s.closeAllConnections();
    void exit(0);
  }, conf.worker_shutdown_timeout);
  for (const s of servers) {
    // Responses whose keep-alive headers went out before the drain: their connections idle out fast.
    s.keepAliveTimeout = DRAIN_IDLE_GRACE_MS;
    stopAccepting(s, () => {
      if (--open === 0) {
        clearTimeout(deadline);
        void exit(0);
      }
    });
  }
  setTimeout(() => {
    for (const s of servers) s.closeIdleConnections();
  }, DRAIN_IDLE_GRACE_MS);
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'drain':
      drain();
      break;
    case 'stop':
      for (const s of servers) s.closeAllConnections();
      void exit(0, STOP_DISPOSE_MS);
      break;
    case 'reopen':
      accessLog?.reopen();
      errorLog.reopen();
      break;
    case 'ticket-keys':
      tls?.loadTicketKeys();
      break;
  }
});

try {
  await Promise.all(servers.map((s, i) => listen(s, conf.server.listen[i]!.host, conf.server.listen[i]!.port)));
  post({ type: 'listening' });
  // Written now, not only when the thread exits (entry.js): a replacement for a worker that
  // crashed, and the next generation, find every module already stripped and never load amaro.
  flushCompileCache();
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  post({ type: 'failed', code: e.code ?? 'GW_ERR_LISTEN', message: e.message });
  await exit(1, STOP_DISPOSE_MS);
}
