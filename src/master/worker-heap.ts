import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';

const MB = 1024 * 1024;
/** Below this a worker could not hold a large conf's routes and plugin state. */
const FLOOR_MB = 128;

/**
 * The old-generation heap each worker thread may grow to (its
 * resourceLimits), so that a worker that leaks runs out of its own heap, ends
 * with ERR_WORKER_OUT_OF_MEMORY and is replaced like any crashed worker,
 * before the threads together take the host's memory and the kernel's OOM
 * killer ends the whole gateway. The workers and the master each get an equal
 * share of three quarters of what the process may use (`memory`: its
 * cgroup's limit, as systemd's MemoryMax sets it, or the host's), never more
 * than V8's own default for the process (`v8Default`), never under 128 MB.
 * Shared dicts are SharedArrayBuffers, outside every heap.
 */
export function workerHeapLimitMb(workers: number, memory = usableMemory(), v8Default = getHeapStatistics().heap_size_limit): number {
  const share = Math.floor((memory * 0.75) / (workers + 1) / MB);
  return Math.max(FLOOR_MB, Math.min(share, Math.floor(v8Default / MB)));
}

/** The cgroup's memory limit when there is one below the host's memory (Node reports 2^64 without one). */
function usableMemory(): number {
  const host = totalmem();
  const limit = process.constrainedMemory();
  return limit > 0 && limit < host ? limit : host;
}
