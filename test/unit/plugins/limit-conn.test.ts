import { describe, expect, test } from 'vitest';
import { limitConn } from '../../../src/plugins/limit-conn/index.ts';
import { SharedDict } from '../../../src/shdict/index.ts';
import { harness } from '../../helpers/plugin-harness.ts';

describe('limit-conn', () => {
  test('a finished request gives its slot back (log phase); above conn + burst is refused', async () => {
    const dict = SharedDict.create(1 << 20);
    const h = harness([limitConn], { 'limit-conn': { conn: 1, default_conn_delay: 0 } }, { zones: { sluice_limits: dict.buffer } });
    for (let i = 0; i < 3; i++) expect((await h.run()).status).toBe(200);
    expect(dict.get('lc:test:127.0.0.1')).toBe(0);
    // Hold the only slot as an in-flight request would:
    dict.set('lc:test:127.0.0.1', 1);
    const r = await h.run();
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_CONCURRENCY_LIMITED', message: 'Too many concurrent requests' });
    expect(dict.get('lc:test:127.0.0.1')).toBe(1); // a refused request releases nothing it did not take
  });

  test('burst: delayed, not refused', async () => {
    const dict = SharedDict.create(1 << 20);
    const h = harness([limitConn], { 'limit-conn': { conn: 1, burst: 1, default_conn_delay: 0.03 } }, { zones: { sluice_limits: dict.buffer } });
    dict.set('lc:test:127.0.0.1', 1);
    const t0 = performance.now();
    expect((await h.run()).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(dict.get('lc:test:127.0.0.1')).toBe(1);
  });
});
