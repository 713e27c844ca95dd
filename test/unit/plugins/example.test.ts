import { describe, expect, test } from 'vitest';
import { example } from '../../../src/plugins/example/index.ts';
import { checkConf, harness, headerOf } from '../../helpers/plugin-harness.ts';

describe('example (the template)', () => {
  test('schema defaults and an invalid header name', () => {
    expect(checkConf(example, {}).conf).toEqual({ header_name: 'X-Example', value: 'hello', upstream_header: null });
    expect(checkConf(example, { header_name: 'not ok' }).errors[0]).toMatch(/^\/header_name/);
  });
  test('adds the response header, and the upstream one when configured', async () => {
    const r = await harness([example], { example: { value: 'hi', upstream_header: 'X-From-Gateway' } }).run();
    expect(r.header('x-example')).toBe('hi');
    expect(headerOf(r.upstream!.headers, 'x-from-gateway')).toBe('hi');
  });
});
