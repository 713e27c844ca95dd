import { describe, expect, test } from 'vitest';
import { requestTermination } from '../../../src/plugins/request-termination/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';
import { prepareExit } from '../../../src/plugins/pdk/index.ts';

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(requestTermination, {}).conf).toEqual({ status_code: 503, message: null, body: null, content_type: null });
  });
  test('invalid: status out of range, message with body', () => {
    expect(checkConf(requestTermination, { status_code: 99 }).errors[0]).toMatch(/^\/status_code/);
    expect(checkConf(requestTermination, { message: 'a', body: 'b' }).errors.join()).toMatch(/mutually exclusive/);
  });
});

describe('access', () => {
  test('default: the status text as a JSON message, upstream never reached', async () => {
    const r = await harness([requestTermination], { 'request-termination': {} }).run();
    expect(r.upstream).toBeNull();
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_TERMINATED', message: 'Service Unavailable' });
  });
  test('message, or body with content_type', async () => {
    expect(JSON.parse((await harness([requestTermination], { 'request-termination': { status_code: 410, message: 'gone' } }).run()).body)).toEqual({ code: 'GW_ERR_TERMINATED', message: 'gone' });
    const r = await harness([requestTermination], { 'request-termination': { status_code: 200, body: '<b>hi</b>', content_type: 'text/html' } }).run();
    expect(r.body).toBe('<b>hi</b>');
    expect(r.header('content-type')).toBe('text/html');
  });
  test('a 204 or a 304 goes without a body, Content-Length or Content-Type (RFC 9110): the writer sends what prepareExit lays out', async () => {
    for (const status_code of [204, 304]) {
      const r = await harness([requestTermination], { 'request-termination': { status_code } }).run();
      const ready = prepareExit(r.exit!);
      expect([ready.status, ready.body.length, ready.list]).toEqual([status_code, 0, []]);
    }
    expect(prepareExit({ status: 200, body: '' }).list).toEqual(['content-length', '0']);
  });
});
