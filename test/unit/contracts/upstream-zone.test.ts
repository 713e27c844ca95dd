import { Worker } from 'node:worker_threads';
import { expect, test } from 'vitest';
import {
  TARGET_SLOT, TARGET_STRIDE, createInFlightShare, createUpstreamZone, releaseInFlightShare, zoneClock, zoneTargets,
} from '../../../src/contracts/upstream-zone.ts';

/** The layout is a contract between the master and workers of different generations: changing it is a decision, not an accident. */
test('slots and sizes are pinned', () => {
  expect(TARGET_SLOT).toEqual({ HEALTH: 0, IN_FLIGHT: 1, FAILS: 2, FAIL_WINDOW: 3, DOWN_UNTIL: 4, CURRENT: 5 });
  expect(TARGET_STRIDE).toBe(8);
  expect(createUpstreamZone(3).byteLength).toBe(3 * 32);
  expect(zoneTargets(createUpstreamZone(3))).toBe(3);
  expect(createInFlightShare(3).byteLength).toBe(12);
});

test('a dead worker\'s share comes off the zone\'s counts, and only its own', () => {
  const zone = createUpstreamZone(2);
  const slots = new Int32Array(zone);
  const dead = createInFlightShare(2);
  const inFlight = (t: number): number => slots[t * TARGET_STRIDE + TARGET_SLOT.IN_FLIGHT]!;
  slots[0 * TARGET_STRIDE + TARGET_SLOT.IN_FLIGHT] = 5; // 3 of the dead worker's, 2 of a live one's
  slots[1 * TARGET_STRIDE + TARGET_SLOT.IN_FLIGHT] = 1;
  new Int32Array(dead).set([3, 0]);
  releaseInFlightShare(zone, dead);
  expect([inFlight(0), inFlight(1)]).toEqual([2, 1]);
  expect([...new Int32Array(dead)]).toEqual([0, 0]);
});

test('zoneClock reads one clock in every thread (performance.timeOrigin is the process\'s, not the thread\'s)', async () => {
  const url = new URL('../../../src/contracts/upstream-zone.ts', import.meta.url).href;
  const before = zoneClock();
  const worker = new Worker(`import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.zoneClock()))`, { eval: true });
  const theirs = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const after = zoneClock();
  await worker.terminate();
  expect(theirs).toBeGreaterThanOrEqual(before - 1);
  expect(theirs).toBeLessThanOrEqual(after + 1);
});
