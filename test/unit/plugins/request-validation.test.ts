import { threadId } from 'node:worker_threads';
import pino from 'pino';
import { afterAll, describe, expect, test } from 'vitest';
import { requestValidation } from '../../../src/plugins/request-validation/index.ts';
import { schemaKey } from '../../../src/plugins/request-validation/validator.ts';
import validateTask from '../../../src/plugins/request-validation/task.ts';
import { createPluginEnvs } from '../../../src/worker/pipeline/env.ts';
import { compileConsumers } from '../../../src/worker/pipeline/consumers.ts';
import type { Exit } from '../../../src/plugins/pdk/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

const ITEM_SCHEMA = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1 }, qty: { type: 'integer', minimum: 1, default: 1 }, p: { enum: ['good'] } },
  additionalProperties: false,
};

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(requestValidation, {}).conf).toEqual({
      body_schema: null, query_schema: null, allowed_content_types: ['application/json'], verbose_response: false,
      max_body_size: '8m', offload_threshold: '64k',
    });
  });
  test('a valid JSON Schema passes', () => {
    expect(checkConf(requestValidation, { body_schema: ITEM_SCHEMA, query_schema: { type: 'object' } }).ok).toBe(true);
  });
  test('an invalid JSON Schema is refused with the path and ajv\'s reason', () => {
    const { errors } = checkConf(requestValidation, { body_schema: { type: 'objekt' } });
    expect(errors[0]).toMatch(/^\/body_schema: invalid JSON Schema: .*type/);
  });
  test('a bad size is refused', () => {
    expect(checkConf(requestValidation, { max_body_size: 'lots' }).errors[0]).toMatch(/^\/max_body_size/);
  });
});

interface Outcome { exit: Exit | null; upstreamBody: string | null }

/** The shared harness with a request body: the real pipeline reads it from a stream. */
function bodyHarness(conf: object) {
  const h = harness([requestValidation], { 'request-validation': conf });
  const run = async (method: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, query = ''): Promise<Outcome> => {
    const r = await h.run({ method, body, headers, query });
    return { exit: r.exit, upstreamBody: r.upstream?.body ?? null };
  };
  return { run, close: h.close };
}

describe('access: bodies on the reactor', () => {
  const h = bodyHarness({ body_schema: ITEM_SCHEMA, verbose_response: true });
  afterAll(() => h.close());

  test('a valid body passes, re-serialised with the schema defaults filled in', async () => {
    const r = await h.run('POST', '{ "name" : "pen" }');
    expect(r.exit).toBeNull();
    expect(r.upstreamBody).toBe('{"name":"pen","qty":1}');
  });
  test('an invalid body is a 400 with the errors (verbose_response)', async () => {
    const r = await h.run('POST', '{"name":"pen","qty":0}');
    expect(r.exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: "request body doesn't conform to schema", errors: [{ path: '/qty', message: 'must be >= 1' }] } });
  });
  test('malformed JSON is a 400', async () => {
    expect((await h.run('POST', '{"name":')).exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: 'request body is not valid JSON' } });
  });
  test('a content type not allowed is a 400 before the body is read', async () => {
    const r = await h.run('POST', 'name=pen', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: 'specified Content-Type is not allowed' } });
    expect(r.upstreamBody).toBeNull();
  });
  test('a POST without a body is validated (and fails); a GET without one is not', async () => {
    expect((await h.run('POST', '')).exit?.status).toBe(400);
    const get = await h.run('GET', '', {});
    expect(get.exit).toBeNull();
    expect(get.upstreamBody).toBeNull();
  });
  test('duplicate keys (CVE-2022-25757): the upstream gets exactly the value that was validated', async () => {
    const last = await h.run('POST', '{"name":"x","p":"bad","p":"good"}');
    expect(last.exit).toBeNull();
    expect(last.upstreamBody).toBe('{"name":"x","p":"good","qty":1}');
    expect((await h.run('POST', '{"name":"x","p":"good","p":"bad"}')).exit?.status).toBe(400);
  });
  test('an integer a JSON number cannot hold exactly is refused, never sent upstream changed', async () => {
    const big = await h.run('POST', '{"name":"x","qty":9007199254740993}');
    expect(big.exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: 'request body has an integer beyond 2^53, which JSON numbers here cannot hold exactly' } });
    expect(big.upstreamBody).toBeNull();
    const exact = await h.run('POST', '{"name":"12345678901234567890","qty":9007199254740991}');
    expect(exact.exit).toBeNull();
    expect(exact.upstreamBody).toBe('{"name":"12345678901234567890","qty":9007199254740991}');
  });
});

describe('access: errors without verbose_response name no schema detail', () => {
  const h = bodyHarness({ body_schema: ITEM_SCHEMA });
  afterAll(() => h.close());
  test('400 with the message only', async () => {
    expect((await h.run('POST', '{}')).exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: "request body doesn't conform to schema" } });
  });
});

describe('access: query_schema', () => {
  const h = harness([requestValidation], {
    'request-validation': {
      verbose_response: true,
      query_schema: { type: 'object', required: ['limit'], properties: { limit: { type: 'integer', maximum: 100 }, tag: { type: 'array', items: { type: 'string' } } } },
    },
  });
  test('args are coerced to the schema types; repeated args are arrays', async () => {
    expect((await h.run({ query: 'limit=10&tag=a&tag=b' })).status).toBe(200);
    expect((await h.run({ query: 'limit=10&tag=a' })).status).toBe(200);
  });
  test('a failing query is a 400 with the errors', async () => {
    const r = await h.run({ query: 'limit=1000' });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_VALIDATION', message: "query string doesn't conform to schema", errors: [{ path: '/limit', message: 'must be <= 100' }] });
    expect((await h.run({ query: '' })).status).toBe(400);
  });
});

describe('access: large bodies go to the offload pool', () => {
  const h = bodyHarness({ body_schema: { type: 'array', items: ITEM_SCHEMA }, offload_threshold: 1024, verbose_response: true });
  afterAll(() => h.close());
  const big = (bad: boolean) => JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ name: bad && i === 150 ? '' : `item-${i}` })));

  test('valid and invalid large bodies give the same answers as small ones', async () => {
    const ok = await h.run('POST', big(false));
    expect(ok.exit).toBeNull();
    expect(JSON.parse(ok.upstreamBody!)[0]).toEqual({ name: 'item-0', qty: 1 });
    const bad = await h.run('POST', big(true));
    expect(bad.exit).toEqual({ status: 400, body: { code: 'GW_ERR_VALIDATION', message: "request body doesn't conform to schema", errors: [{ path: '/150/name', message: 'must NOT have fewer than 1 characters' }] } });
  });
});

describe('the pool task', () => {
  test('compiles a schema once per key and validates in the calling thread', () => {
    const body = new TextEncoder().encode('{"name":"a"}');
    const r = validateTask({ key: schemaKey(ITEM_SCHEMA), schema: ITEM_SCHEMA, body });
    expect(r).toMatchObject({ ok: true, threadId });
    expect(new TextDecoder().decode((r as { json: Uint8Array }).json)).toBe('{"name":"a","qty":1}');
  });
});

describe('env.offload (the per-worker piscina pool)', () => {
  const TASK = new URL('../../fixtures/validation/walk-task.ts', import.meta.url);
  const envs = createPluginEnvs({ log: pino({ level: 'silent' }), workerId: 1, zones: {}, consumers: compileConsumers([]) });
  const env = envs.envFor(requestValidation);
  afterAll(() => envs.close());

  test('runs the default export in another thread, with its input cloned across', async () => {
    const r = await env.offload.run<{ threadId: number; echo: unknown }>(TASK, { echo: { a: [1, 2] } });
    expect(r.echo).toEqual({ a: [1, 2] });
    expect(r.threadId).not.toBe(threadId);
  });
  test('runs a named export, and a throw in the task rejects the call', async () => {
    await expect(env.offload.run(TASK, {}, 'fail')).rejects.toThrow('task failed');
  });
  test('every plugin of a worker shares one pool (started once)', async () => {
    const other = envs.envFor({ ...requestValidation, name: 'other' });
    expect(other.offload).toBe(env.offload);
  });
  test('close() without any use starts nothing and resolves', async () => {
    const unused = createPluginEnvs({ log: pino({ level: 'silent' }), workerId: 2, zones: {}, consumers: compileConsumers([]) });
    await expect(unused.close()).resolves.toBeUndefined();
  });
});
