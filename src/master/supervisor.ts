import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SluiceConf } from '../config/types.ts';
import type { FromWorker, ToWorker, UpstreamShared, WorkerData } from '../contracts/messages.ts';
import { createStatsBuffer } from '../contracts/stats-layout.ts';
import { createInFlightShare, zoneTargets } from '../contracts/upstream-zone.ts';
import { createLiveness, markAlive, markExited } from '../contracts/liveness.ts';
import { workerHeapLimitMb } from './worker-heap.ts';

/**
 * Starts, watches and retires worker threads, one generation per conf.
 *
 * A generation counts as started only once every one of its workers is
 * listening; until then the previous generation keeps serving, and a failure
 * tears the new one down without touching the old (nginx's reload rollback).
 * At most one generation drains at a time: a new one starts only once the
 * previous drain is over, which worker_shutdown_timeout bounds. A reload
 * storm then waits rather than piling up generations (threads stay within
 * twice worker_processes), and no drain is cut short of its deadline.
 * A worker of the live generation that dies is replaced: at once the first
 * time, then with exponential backoff while it keeps dying, so a conf that
 * crashes workers never becomes a hot loop.
 */
const WORKER_URL = new URL('../worker/entry.js', import.meta.url);
const START_TIMEOUT_MS = 10_000;
const CRASH_WINDOW_MS = 30_000;
const MAX_BACKOFF_MS = 30_000;

export type WorkerState = 'starting' | 'running' | 'draining';

export interface WorkerHandle {
  readonly id: number;
  readonly generation: number;
  readonly thread: Worker;
  readonly stats: Float64Array;
  /** Position in its generation: a replacement takes the dead worker's slot. */
  readonly slot: number;
  /** Its conf's route names in index order, to read the route blocks of `stats`. */
  readonly routes: readonly string[];
  /** The upstream zones it attached to and its in-flight share of each, to take off if it dies. */
  readonly upstreams: Readonly<Record<string, UpstreamShared>>;
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>;
  state: WorkerState;
}

export interface SupervisorEvents {
  /** A worker thread ended; the master releases its shdict locks and takes its requests in flight off the upstream zones. */
  onWorkerExit(handle: WorkerHandle, code: number): void;
}

/** What the master shares with a generation: shared-dict zones, upstream zones, and the TLS ticket keys (null = no tickets). */
export interface SharedBuffers {
  readonly zones: Readonly<Record<string, SharedArrayBuffer>>;
  readonly upstreams: Readonly<Record<string, SharedArrayBuffer>>;
  readonly ticketKeys: Uint8Array | null;
}

export class StartError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export class Supervisor {
  readonly workers = new Set<WorkerHandle>();
  generation = 0;
  /** Replacements started for workers that died. */
  restarts = 0;
  private nextId = 1;
  /** Which workers live, for the workers to read (contracts/liveness.ts). */
  private readonly liveness = createLiveness();
  private readonly alive = new Int32Array(this.liveness);
  private conf: SluiceConf | null = null;
  private shared: SharedBuffers = { zones: {}, upstreams: {}, ticketKeys: null };
  private readonly crashes: number[] = [];
  private readonly pendingRestarts = new Set<NodeJS.Timeout>();
  private stopping = false;
  private readonly log: Logger;
  private readonly events: SupervisorEvents;

  constructor(log: Logger, events: SupervisorEvents) {
    this.log = log;
    this.events = events;
  }

  /**
   * Starts a full generation on `conf` once no worker drains; resolves once
   * all listen, rejects (after cleaning up) otherwise.
   */
  async startGeneration(conf: SluiceConf, shared: SharedBuffers): Promise<void> {
    await this.drained();
    const generation = this.generation + 1;
    const started = Array.from({ length: conf.worker_processes }, (_, slot) => this.spawn(conf, shared, generation, slot));
    try {
      await Promise.all(started.map((w) => this.whenListening(w)));
    } catch (err) {
      for (const w of started) this.stopWorker(w, true);
      throw err;
    }
    const old = [...this.workers].filter((w) => w.generation !== generation);
    this.generation = generation;
    this.conf = conf;
    this.shared = shared;
    for (const w of old) this.drainWorker(w);
  }

  /** Resolves once no worker drains: at once, or when the previous generation has exited. */
  async drained(): Promise<void> {
    const draining = [...this.workers].filter((w) => w.state === 'draining');
    if (draining.length === 0) return;
    this.log.info({ workers: draining.map((w) => w.id) }, 'waiting for the draining workers to exit before starting a generation');
    await Promise.all(draining.map((w) => w.exited));
  }

  current(): WorkerHandle[] {
    return [...this.workers].filter((w) => w.generation === this.generation);
  }

  broadcast(msg: ToWorker): void {
    for (const w of this.workers) w.thread.postMessage(msg);
  }

  /** QUIT (graceful) or TERM (fast): resolves when every thread has exited. */
  async stopAll(graceful: boolean): Promise<void> {
    this.stopping = true;
    for (const t of this.pendingRestarts) clearTimeout(t);
    this.pendingRestarts.clear();
    const exits = [...this.workers].map((w) => w.exited);
    for (const w of this.workers) {
      if (graceful) this.drainWorker(w);
      else this.stopWorker(w, false);
    }
    await Promise.all(exits);
  }

  private spawn(conf: SluiceConf, shared: SharedBuffers, generation: number, slot: number): WorkerHandle {
    const stats = createStatsBuffer(conf.routes.length);
    const upstreams = Object.fromEntries(Object.entries(shared.upstreams).map(([name, zone]) =>
      [name, { zone, share: createInFlightShare(zoneTargets(zone)) }]));
    const data: WorkerData = { id: this.nextId++, generation, conf, zones: shared.zones, upstreams, ticketKeys: shared.ticketKeys, stats, liveness: this.liveness };
    markAlive(this.alive, data.id);
    const thread = new Worker(WORKER_URL, {
      workerData: data,
      name: `sluice-worker-${data.id}`,
      resourceLimits: { maxOldGenerationSizeMb: workerHeapLimitMb(conf.worker_processes) },
    });
    const handle: WorkerHandle = {
      id: data.id, generation, thread, stats: new Float64Array(stats), slot, routes: conf.routes.map((r) => r.name), upstreams,
      exited: new Promise((resolve) => thread.once('exit', () => resolve())), state: 'starting',
    };
    this.workers.add(handle);
    thread.on('error', (err) => this.log.error({ err, worker: handle.id }, 'worker failed'));
    thread.on('exit', (code) => this.onExit(handle, code));
    return handle;
  }

  private whenListening(w: WorkerHandle): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new StartError('GW_ERR_WORKER_START_TIMEOUT', `worker ${w.id} did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onMessage = (msg: FromWorker): void => {
        if (msg.type === 'listening') done(null);
        else if (msg.type === 'failed') done(new StartError(msg.code, `worker ${w.id} could not listen: ${msg.message}`));
      };
      const onExit = (code: number): void => done(new StartError('GW_ERR_WORKER_EXIT', `worker ${w.id} exited with code ${code} while starting`));
      const done = (err: StartError | null): void => {
        clearTimeout(timer);
        w.thread.off('message', onMessage);
        w.thread.off('exit', onExit);
        if (err !== null) reject(err);
        else {
          w.state = 'running';
          resolve();
        }
      };
      w.thread.on('message', onMessage);
      w.thread.on('exit', onExit);
    });
  }

  private drainWorker(w: WorkerHandle): void {
    if (w.state === 'draining') return;
    w.state = 'draining';
    w.thread.postMessage({ type: 'drain' } satisfies ToWorker);
    // The worker enforces worker_shutdown_timeout itself, once for the drain and once for its
    // plugins' dispose; this is the backstop for a wedged thread.
    const grace = 2 * (this.conf?.worker_shutdown_timeout ?? 10_000) + 5_000;
    setTimeout(() => void w.thread.terminate(), grace).unref();
  }

  private stopWorker(w: WorkerHandle, starting: boolean): void {
    w.state = 'draining';
    if (!starting) w.thread.postMessage({ type: 'stop' } satisfies ToWorker);
    setTimeout(() => void w.thread.terminate(), starting ? 0 : 1000).unref();
  }

  private onExit(w: WorkerHandle, code: number): void {
    this.workers.delete(w);
    markExited(this.alive, w.id);
    this.events.onWorkerExit(w, code);
    // A replacement that dies while starting counts too (its generation is already live).
    const unexpected = w.state !== 'draining' && w.generation === this.generation && !this.stopping;
    if (!unexpected || this.conf === null) return;
    const now = Date.now();
    while (this.crashes.length > 0 && now - this.crashes[0]! > CRASH_WINDOW_MS) this.crashes.shift();
    this.crashes.push(now);
    // First crash in the window: replace at once. Then 250 ms, 500 ms, 1 s, … up to 30 s.
    const delay = this.crashes.length <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 125 * 2 ** (this.crashes.length - 1));
    this.log.error({ worker: w.id, code, restartInMs: delay }, 'worker exited unexpectedly; starting a replacement');
    const conf = this.conf;
    const shared = this.shared;
    const generation = this.generation;
    const timer = setTimeout(() => {
      this.pendingRestarts.delete(timer);
      if (this.stopping || generation !== this.generation) return;
      this.restarts++;
      const replacement = this.spawn(conf, shared, generation, w.slot);
      this.whenListening(replacement).then(() => {
        this.log.info({ worker: replacement.id, replaced: w.id }, 'replacement worker listening');
      }, (err: unknown) => {
        // Its exit comes back through onExit as another crash, with a longer backoff.
        this.log.error({ err, worker: replacement.id }, 'replacement worker failed to start');
        void replacement.thread.terminate();
      });
    }, delay);
    this.pendingRestarts.add(timer);
  }
}
