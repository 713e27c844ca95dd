import type { SluiceConf } from '../config/types.ts';

/** What the master hands each worker thread through workerData. */
export interface WorkerData {
  /** Unique per thread for the master's lifetime; also the shdict lock owner id. */
  readonly id: number;
  readonly generation: number;
  readonly conf: SluiceConf;
  /** Shared-dict zones by name: the master's buffers, so they outlive worker swaps. */
  readonly zones: Readonly<Record<string, SharedArrayBuffer>>;
  /** Active health state per upstream (health-state.ts), written by the master's prober. */
  readonly health: Readonly<Record<string, SharedArrayBuffer>>;
  /** TLS session ticket keys, made once per master lifetime (contracts/tls.ts); null when tickets are off. */
  readonly ticketKeys: Uint8Array | null;
  /** Counters the master reads for /status (stats.ts). */
  readonly stats: SharedArrayBuffer;
}

/** master → worker */
export type ToWorker =
  | { readonly type: 'drain' } // graceful: stop accepting, finish in-flight, exit
  | { readonly type: 'stop' } // fast: cut connections, exit
  | { readonly type: 'reopen' }; // USR1: reopen log files

/** worker → master */
export type FromWorker =
  | { readonly type: 'listening' }
  | { readonly type: 'failed'; readonly code: string; readonly message: string };
