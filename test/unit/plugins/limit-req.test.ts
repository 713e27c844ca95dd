import { describe, expect, test } from 'vitest';
import { limitReq } from '../../../src/plugins/limit-req/index.ts';
import { SharedDict } from '../../../src/shdict/index.ts';
import { harness } from '../../helpers/plugin-harness.ts';

function setup(conf: object) {
  const clock = { t: 1_700_000_000_000 };
  const dict = SharedDict.create(1 << 20);
  const h = harness([limitReq], { 'limit-req': conf }, { now: () => clock.t, zones: { sluice_limits: dict.buffer } });
  return { clock, h };
}

describe('limit-req', () => {
  test('nodelay: rate + burst pass at once, the rest is refused with 503; the bucket leaks at the rate', async () => {
    const { clock, h } = setup({ rate: 10, burst: 2, nodelay: true });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await h.run()).status);
    expect(statuses).toEqual([200, 200, 200, 503, 503]);
    expect(JSON.parse((await h.run()).body)).toEqual({ code: 'GW_ERR_RATE_LIMITED', message: 'Too many requests' });
    clock.t += 100; // one interval: room for one more
    expect((await h.run()).status).toBe(200);
    expect((await h.run()).status).toBe(503);
    expect((await h.run({ client: '10.0.0.2' })).status).toBe(200); // keys are independent
  });

  test('without nodelay the burst is delayed to the rate, not refused', async () => {
    const { h } = setup({ rate: 50, burst: 2 });
    const t0 = performance.now();
    const statuses = [(await h.run()).status, (await h.run()).status, (await h.run()).status];
    // The clock is frozen: the 2nd waits 20 ms, the 3rd 40 ms (one and two intervals of queue ahead).
    expect(statuses).toEqual([200, 200, 200]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect((await h.run()).status).toBe(503);
  });

  test('burst 0: one request per interval', async () => {
    const { clock, h } = setup({ rate: 1, nodelay: true });
    expect((await h.run()).status).toBe(200);
    clock.t += 999;
    expect((await h.run()).status).toBe(503);
    clock.t += 1;
    expect((await h.run()).status).toBe(200);
  });
});
