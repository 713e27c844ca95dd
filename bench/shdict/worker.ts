import { parentPort, workerData } from 'node:worker_threads';
import { SharedDict } from '../../src/shdict/index.ts';
import { makeKeys, type Op, runOp } from './ops.ts';

type Job = { buffer: SharedArrayBuffer; gate: SharedArrayBuffer; thread: number; op: Op; n: number; keys: number };
const job = workerData as Job;
const d = SharedDict.attach(job.buffer, { owner: job.thread + 1 });
const keys = makeKeys(job.thread, job.keys);
runOp(d, job.op, keys, job.n >> 3); // warm-up: let the JIT settle before the clock starts

// Start together: report ready, then spin until the main thread opens the gate.
const gate = new Int32Array(job.gate);
Atomics.add(gate, 0, 1);
while (Atomics.load(gate, 1) === 0);
const start = performance.timeOrigin + performance.now();
const sum = runOp(d, job.op, keys, job.n);
const end = performance.timeOrigin + performance.now();
parentPort!.postMessage({ start, end, sum });
