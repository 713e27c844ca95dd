import { describe, expect, test } from 'vitest';
import { keyAuth } from '../../../src/plugins/key-auth/index.ts';
import { checkConf, harness, headerOf } from '../../helpers/plugin-harness.ts';
import type { ConsumerConf } from '../../../src/config/types.ts';
import { identityOf, identityProbe } from '../../fixtures/auth/identity-probe.ts';

const consumers: ConsumerConf[] = [
  { username: 'alice', attributes: { user_id: '1001', company_id: '42' }, credentials: { 'key-auth': [{ key: 'alice-key-1' }, { key: 'alice-key-2' }] } },
  { username: 'guest', attributes: {}, credentials: {} },
];
const run = (conf: object, req: Parameters<ReturnType<typeof harness>['run']>[0], list = consumers) =>
  harness([keyAuth, identityProbe], { 'key-auth': conf, 'identity-probe': {} }, { consumers: list }).run(req);

describe('schema', () => {
  test('defaults are Kong\'s', () => {
    expect(checkConf(keyAuth, {}).conf).toEqual({
      key_names: ['apikey'], key_in_header: true, key_in_query: true, hide_credentials: false,
      anonymous: null, run_on_preflight: true, realm: 'sluice',
    });
  });
  test('bad names and unknown options are refused', () => {
    expect(checkConf(keyAuth, { key_names: [] }).ok).toBe(false);
    expect(checkConf(keyAuth, { key_names: ['bad name'] }).ok).toBe(false);
    expect(checkConf(keyAuth, { key_in_body: true }).ok).toBe(false);
  });
  test('a bad credential fails the conf at its path, never showing the key', () => {
    const bad: ConsumerConf[] = [{ username: 'bob', attributes: {}, credentials: { 'key-auth': [{ key: '' }] } }];
    expect(() => harness([keyAuth], { 'key-auth': {} }, { consumers: bad })).toThrow(/^consumers\[0\]\.credentials\.key-auth\[0\]\.key: must not be empty$/);
    const dup: ConsumerConf[] = [
      { username: 'a', attributes: {}, credentials: { 'key-auth': [{ key: 'same-secret' }] } },
      { username: 'b', attributes: {}, credentials: { 'key-auth': [{ key: 'same-secret' }] } },
    ];
    expect(() => harness([keyAuth], { 'key-auth': {} }, { consumers: dup })).toThrow(/"a" and "b" have the same key$/);
    expect(() => harness([keyAuth], { 'key-auth': { anonymous: 'nobody' } }, { consumers })).toThrow(/no consumer "nobody"/);
  });
});

describe('access', () => {
  test('a key in the header or the query identifies the consumer', async () => {
    for (const req of [{ headers: { apikey: 'alice-key-1' } }, { query: 'apikey=alice-key-2' }]) {
      const r = await run({}, req);
      expect(r.status).toBe(200);
      expect(identityOf(r.upstream!.headers)).toEqual({ consumer: 'alice', user_id: '1001', company_id: '42', anonymous: false, attributes: { user_id: '1001', company_id: '42' } });
    }
  });

  test('no key, a wrong key, an empty key: 401 with WWW-Authenticate and a JSON body without the key', async () => {
    const none = await run({}, {});
    expect(none.status).toBe(401);
    expect(none.header('www-authenticate')).toBe('Key realm="sluice"');
    expect(JSON.parse(none.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'No API key found in request' });
    for (const key of ['wrong-key-123', '']) {
      const r = await run({}, { headers: { apikey: key } });
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'Invalid authentication credentials' });
      if (key !== '') expect(r.body).not.toContain(key);
    }
  });

  test('two different keys in one request: 401; the same key twice passes', async () => {
    expect((await run({}, { headers: { apikey: 'alice-key-1' }, query: 'apikey=alice-key-2' })).status).toBe(401);
    expect((await run({ key_names: ['apikey', 'x-api-key'] }, { headers: { apikey: 'alice-key-1', 'x-api-key': 'nope' } })).status).toBe(401);
    expect((await run({}, { headers: { apikey: ['alice-key-1', 'alice-key-2'] } })).status).toBe(401);
    expect((await run({}, { headers: { apikey: 'alice-key-1' }, query: 'apikey=alice-key-1' })).status).toBe(200);
  });

  test('key_in_header / key_in_query off ignore that place', async () => {
    expect((await run({ key_in_query: false }, { query: 'apikey=alice-key-1' })).status).toBe(401);
    expect((await run({ key_in_header: false }, { headers: { apikey: 'alice-key-1' } })).status).toBe(401);
  });

  test('hide_credentials removes the key from header and query', async () => {
    const r = await run({ hide_credentials: true }, { headers: { apikey: 'alice-key-1' }, query: 'apikey=alice-key-1&x=1' });
    expect(r.status).toBe(200);
    expect(headerOf(r.upstream!.headers, 'apikey')).toBeUndefined();
    expect(r.upstream!.target).toBe('/?x=1');
    const kept = await run({}, { headers: { apikey: 'alice-key-1' } });
    expect(headerOf(kept.upstream!.headers, 'apikey')).toBe('alice-key-1');
  });

  test('anonymous stands in for a missing key only', async () => {
    const r = await run({ anonymous: 'guest' }, {});
    expect(r.status).toBe(200);
    expect(identityOf(r.upstream!.headers)).toMatchObject({ consumer: 'guest', anonymous: true });
    expect((await run({ anonymous: 'guest' }, { headers: { apikey: 'wrong' } })).status).toBe(401);
  });

  test('run_on_preflight false lets OPTIONS through without a key', async () => {
    expect((await run({}, { method: 'OPTIONS' })).status).toBe(401);
    expect((await run({ run_on_preflight: false }, { method: 'OPTIONS' })).status).toBe(200);
  });
});
