import type { SluiceConf } from '../config/types.ts';

/** What the master hands each worker thread through workerData. */
export interface WorkerData {
  /** Unique per thread for the master's lifetime; also the shdict lock owner id. */
  readonly id: number;
  readonly generation: number;
  readonly conf: SluiceConf;
  /** Shared-dict zones by name: the master's buffers, so they outlive worker swaps. */
  readonly zones: Readonly<Record<string, SharedArrayBuffer>>;
  /** Balancing state per upstream (upstream-zone.ts), shared with the master and the other workers. */
  readonly upstreams: Readonly<Record<string, UpstreamShared>>;
  /** TLS session ticket keys, the master's shared buffer, rotated (master/ticket-keys.ts); null when tickets are off. */
  readonly ticketKeys: Uint8Array | null;
  /** Counters the master reads for /status (stats.ts). */
  readonly stats: SharedArrayBuffer;
  /** Which workers are alive (liveness.ts), written by the master. */
  readonly liveness: SharedArrayBuffer;
}

/** One upstream as a worker attaches to it. */
export interface UpstreamShared {
  /** The master's zone for the upstream: every worker's view. */
  readonly zone: SharedArrayBuffer;
  /** This worker's requests in flight per target, which the master takes off the zone if the worker dies. */
  readonly share: SharedArrayBuffer;
}

/** master → worker */
export type ToWorker =
  | { readonly type: 'drain' } // graceful: stop accepting, finish in-flight, exit
  | { readonly type: 'stop' } // fast: cut connections, exit
  | { readonly type: 'reopen' } // USR1: reopen log files
  | { readonly type: 'ticket-keys' }; // the TLS ticket keys rotated: load them from the shared buffer

/** worker → master */
export type FromWorker =
  | { readonly type: 'listening' }
  | { readonly type: 'failed'; readonly code: string; readonly message: string };
