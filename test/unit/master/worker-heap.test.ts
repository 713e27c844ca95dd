import { expect, test } from 'vitest';
import { workerHeapLimitMb } from '../../../src/master/worker-heap.ts';

const GB = 1024 ** 3;
const V8_DEFAULT = 4288 * 1024 * 1024;

test("each worker and the master get an equal share of three quarters of the process's memory", () => {
  expect(workerHeapLimitMb(2, 2 * GB, V8_DEFAULT)).toBe(512); // 2 GB box, 2 workers: 1.5 GB over 3 isolates
  expect(workerHeapLimitMb(4, 1 * GB, V8_DEFAULT)).toBe(153);
});

test("never more than V8's default, never under 128 MB", () => {
  expect(workerHeapLimitMb(2, 64 * GB, V8_DEFAULT)).toBe(4288);
  expect(workerHeapLimitMb(16, 1 * GB, V8_DEFAULT)).toBe(128);
});
