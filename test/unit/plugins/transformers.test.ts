import { describe, expect, test } from 'vitest';
import { requestTransformer } from '../../../src/plugins/request-transformer/index.ts';
import { responseTransformer } from '../../../src/plugins/response-transformer/index.ts';
import { checkConf, harness, headerOf } from '../../helpers/plugin-harness.ts';

describe('request-transformer schema', () => {
  test('defaults: every list empty, no uri', () => {
    expect(checkConf(requestTransformer, {}).conf).toEqual({
      remove: { headers: [], querystring: [] }, rename: { headers: [], querystring: [] },
      replace: { headers: [], querystring: [], uri: null }, add: { headers: [], querystring: [] }, append: { headers: [], querystring: [] },
    });
  });
  test('an entry without a colon or with a bad header name is reported at its path', () => {
    expect(checkConf(requestTransformer, { add: { headers: ['X-Ok:1', 'novalue'] } }).errors).toEqual(['/add/headers/1: invalid header entry "novalue": expected Name:value']);
    expect(checkConf(requestTransformer, { append: { headers: ['bad name:1'] } }).ok).toBe(false);
  });
});

describe('request-transformer', () => {
  test('remove, rename, replace, add, append, in Kong order, for headers and query; replace.uri sets the path', async () => {
    const h = harness([requestTransformer], {
      'request-transformer': {
        remove: { headers: ['x-secret'], querystring: ['debug'] },
        rename: { headers: ['x-old:x-new'], querystring: ['q:query'] },
        replace: { headers: ['x-mode:prod', 'x-absent:no'], querystring: ['page:1'], uri: '/v2/search' },
        add: { headers: ['x-mode:ignored', 'x-added:yes'], querystring: ['lang:en'] },
        append: { headers: ['x-multi:b'], querystring: ['tag:b'] },
      },
    });
    const r = await h.run({ path: '/search', query: 'q=cats&debug=1&page=9&tag=a', headers: { 'X-Secret': 's', 'X-Old': 'o', 'X-Mode': 'dev', 'x-multi': 'a' } });
    const up = r.upstream!;
    expect(up.path).toBe('/v2/search');
    expect(new URLSearchParams(up.target.split('?')[1]).toString()).toBe('page=1&tag=a&query=cats&lang=en&tag=b');
    expect(headerOf(up.headers, 'x-secret')).toBeUndefined();
    expect(headerOf(up.headers, 'x-new')).toBe('o');
    expect(headerOf(up.headers, 'x-mode')).toBe('prod');
    expect(headerOf(up.headers, 'x-absent')).toBeUndefined();
    expect(headerOf(up.headers, 'x-added')).toBe('yes');
    expect(up.headers.filter((_, i, l) => l[i - 1]?.toLowerCase() === 'x-multi')).toEqual(['a', 'b']);
  });

  test('an empty conf adds no handler at all', () => {
    expect(requestTransformer.create(checkConf(requestTransformer, {}).conf as never, {} as never)).toEqual({});
  });
});

describe('response-transformer', () => {
  test('schema defaults and a bad entry', () => {
    expect(checkConf(responseTransformer, {}).conf).toEqual({ remove: { headers: [] }, rename: { headers: [] }, replace: { headers: [] }, add: { headers: [] }, append: { headers: [] } });
    expect(checkConf(responseTransformer, { remove: { headers: ['a b'] } }).errors[0]).toMatch(/^\/remove\/headers\/0/);
  });

  test('headers are changed before they reach the client', async () => {
    const h = harness([responseTransformer], {
      'response-transformer': {
        remove: { headers: ['server'] }, rename: { headers: ['x-up:x-down'] }, replace: { headers: ['cache-control:no-store'] },
        add: { headers: ['x-added:1', 'content-type:ignored'] }, append: { headers: ['set-cookie:b=2'] },
      },
    });
    const r = await h.run({ upstream: { headers: { server: 'up/1', 'x-up': 'v', 'cache-control': 'max-age=60', 'content-type': 'text/plain', 'set-cookie': 'a=1' } } });
    expect(r.headers).toEqual({
      'x-down': ['v'], 'cache-control': ['no-store'], 'content-type': ['text/plain'], 'x-added': ['1'], 'set-cookie': ['a=1', 'b=2'],
    });
  });
});
