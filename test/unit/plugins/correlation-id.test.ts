import { describe, expect, test } from 'vitest';
import { correlationId } from '../../../src/plugins/correlation-id/index.ts';
import { checkConf, harness, headerOf } from '../../helpers/plugin-harness.ts';

const ids = () => {
  let n = 0;
  return { uuid: () => `uuid-${++n}` };
};

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(correlationId, {}).conf).toEqual({ header_name: 'X-Request-Id', generator: 'uuid#counter', echo_downstream: false });
  });
  test('valid', () => {
    expect(checkConf(correlationId, { header_name: 'Kong-Request-ID', generator: 'tracker', echo_downstream: true }).ok).toBe(true);
  });
  test('invalid values name their path', () => {
    const c = checkConf(correlationId, { generator: 'random', header_name: 'a b', extra: 1 });
    expect(c.ok).toBe(false);
    expect(c.errors.join('\n')).toMatch(/\/generator/);
    expect(c.errors.join('\n')).toMatch(/\/header_name: invalid header name/);
    expect(c.errors.join('\n')).toMatch(/additional|extra/i);
  });
});

describe('phases', () => {
  test('uuid#counter: one uuid per worker plus a counter, sent upstream and recorded as ctx.requestId', async () => {
    const h = harness([correlationId], { 'correlation-id': {} }, { ids: ids() });
    const a = await h.run();
    const b = await h.run();
    expect(a.requestId).toBe('uuid-1#1');
    expect(headerOf(b.upstream!.headers, 'x-request-id')).toBe('uuid-1#2');
    expect(a.header('x-request-id')).toBeUndefined();
  });

  test('uuid: a fresh id per request; echo_downstream sends it back', async () => {
    const h = harness([correlationId], { 'correlation-id': { generator: 'uuid', echo_downstream: true } }, { ids: ids() });
    const r = await h.run();
    expect(r.header('X-Request-Id')).toBe('uuid-1');
    expect((await h.run()).header('x-request-id')).toBe('uuid-2');
  });

  test('tracker: worker, client, time and counter', async () => {
    const h = harness([correlationId], { 'correlation-id': { generator: 'tracker' } }, { now: () => 1700, ids: ids() });
    expect((await h.run({ client: '10.1.2.3' })).requestId).toBe('1-10.1.2.3-1700-1');
  });

  test('a well-formed incoming id is kept, and every other copy of the header is dropped', async () => {
    const h = harness([correlationId], { 'correlation-id': { echo_downstream: true } }, { ids: ids() });
    const r = await h.run({ headers: { 'x-request-id': ['abc-123', 'second'] } });
    expect(r.requestId).toBe('abc-123');
    expect(r.upstream!.headers.filter((x) => x === 'abc-123' || x === 'second')).toEqual(['abc-123']);
  });

  test('an incoming id with spaces, controls or non-ASCII is replaced, never echoed', async () => {
    const h = harness([correlationId], { 'correlation-id': { echo_downstream: true } }, { ids: ids() });
    for (const bad of ['a b', 'x\u0007', 'é', 'x'.repeat(201)]) {
      const r = await h.run({ headers: { 'X-Request-Id': bad } });
      expect(r.requestId).toMatch(/^uuid-1#\d$/);
      expect(r.header('x-request-id')).toBe(r.requestId);
    }
  });

  test('the id is on exits too (a plugin-ended request still carries it back)', async () => {
    const h = harness([correlationId], { 'correlation-id': { echo_downstream: true, header_name: 'Kong-Request-ID' } }, { ids: ids() });
    expect((await h.run()).header('kong-request-id')).toBe('uuid-1#1');
  });
});
