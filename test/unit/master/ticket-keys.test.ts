import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { TicketKeys } from '../../../src/master/ticket-keys.ts';
import { TICKET_KEY_BYTES } from '../../../src/contracts/tls.ts';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

/** The keys and how many rotations were announced. */
function keys(): { k: TicketKeys; rotations: () => number } {
  let n = 0;
  const k = new TicketKeys(() => n++);
  return { k, rotations: () => n };
}

test('the keys live in a SharedArrayBuffer the workers share, random from the start', () => {
  const { k } = keys();
  expect(k.shared.buffer).toBeInstanceOf(SharedArrayBuffer);
  expect(k.shared.byteLength).toBe(TICKET_KEY_BYTES);
  expect(Buffer.from(k.shared).equals(Buffer.from(keys().k.shared))).toBe(false);
});

test('a rotation rewrites the shared bytes in place, then announces it', () => {
  const { k, rotations } = keys();
  const view = k.shared; // what a worker holds
  const before = Buffer.from(view);
  k.rotate();
  expect(rotations()).toBe(1);
  expect(k.shared).toBe(view);
  expect(Buffer.from(view).equals(before)).toBe(false);
});

test('rotates every period; the same period again keeps its schedule; 0 stops it', () => {
  const { k, rotations } = keys();
  k.schedule(60_000);
  vi.advanceTimersByTime(59_999);
  expect(rotations()).toBe(0);
  vi.advanceTimersByTime(1);
  expect(rotations()).toBe(1);
  vi.advanceTimersByTime(30_000);
  k.schedule(60_000); // a reload that left the period alone: not pushed back
  vi.advanceTimersByTime(30_000);
  expect(rotations()).toBe(2);
  k.schedule(10_000); // a reload with a new period
  vi.advanceTimersByTime(10_000);
  expect(rotations()).toBe(3);
  k.schedule(0);
  vi.advanceTimersByTime(24 * 3_600_000);
  expect(rotations()).toBe(3);
});
