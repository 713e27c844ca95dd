import { describe, expect, test } from 'vitest';
import { requestSizeLimiting } from '../../../src/plugins/request-size-limiting/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(requestSizeLimiting, {}).conf).toEqual({ allowed_payload_size: 128, size_unit: 'megabytes', require_content_length: false });
  });
  test('invalid unit', () => {
    expect(checkConf(requestSizeLimiting, { size_unit: 'gigabytes' }).errors[0]).toMatch(/^\/size_unit/);
  });
});

describe('access', () => {
  const h = (conf: object) => harness([requestSizeLimiting], { 'request-size-limiting': conf });
  test('a declared Content-Length over the limit is a 413; at the limit passes', async () => {
    const r = await h({ allowed_payload_size: 1, size_unit: 'kilobytes' }).run({ method: 'POST', headers: { 'content-length': '1025' } });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_BODY_TOO_LARGE', message: 'request body too large' });
    expect((await h({ allowed_payload_size: 1, size_unit: 'kilobytes' }).run({ method: 'POST', headers: { 'content-length': '1024' } })).status).toBe(200);
  });
  test('a chunked body hands the limit to the gateway, which counts as it streams', async () => {
    const r = await h({ allowed_payload_size: 10, size_unit: 'bytes' }).run({ method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
    expect(r.upstream!.bodyLimit).toBe(10);
  });
  test('require_content_length: 411 without one', async () => {
    const r = await h({ require_content_length: true }).run({ method: 'POST' });
    expect(r.status).toBe(411);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_LENGTH_REQUIRED', message: 'a valid Content-Length header is required' });
  });
});
