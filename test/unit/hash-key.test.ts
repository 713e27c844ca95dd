import { describe, expect, test } from 'vitest';
import { compileHashKey, upstreamHashKey } from '../../src/worker/hash-key.ts';
import type { HashKeyFn, HashSource } from '../../src/worker/hash-key.ts';
import type { Algorithm, UpstreamConf } from '../../src/config/types.ts';

type Identity = NonNullable<HashSource['identity']>;

/** A request as the gateway describes it after the access phase; `headers` are given as received (any case, repeats allowed). */
function source(opts: { client?: string; path?: string; identity?: Partial<Identity> | null; headers?: [string, string][] } = {}): HashSource {
  const headers = opts.headers ?? [];
  return {
    client: opts.client ?? '203.0.113.7',
    path: opts.path ?? '/orders/17',
    identity: opts.identity === undefined || opts.identity === null
      ? null
      : { consumer: null, user_id: null, company_id: null, ...opts.identity },
    header(name) {
      const values = headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
      return values.length === 0 ? undefined : values.join(name === 'cookie' ? '; ' : ', ');
    },
  };
}

const compile = (hashOn: string): HashKeyFn => {
  const fn = compileHashKey(hashOn);
  if (fn === null) throw new Error(`${hashOn} compiled to null`);
  return fn;
};

describe('compileHashKey', () => {
  test('null hash_on compiles to null: nothing to run per request', () => {
    expect(compileHashKey(null)).toBeNull();
  });

  test('ip: the client address (after real_ip)', () => {
    expect(compile('ip')(source({ client: '198.51.100.4' }))).toBe('198.51.100.4');
  });

  test('uri: the normalised path, which carries no query', () => {
    expect(compile('uri')(source({ path: '/a/b' }))).toBe('/a/b');
  });

  test.each(['consumer', 'user_id', 'company_id'] as const)('%s: from the identity the auth plugin set', (field) => {
    const key = compile(field);
    const identity = { consumer: 'alice', user_id: '1001', company_id: '42' };
    expect(key(source({ identity }))).toBe(identity[field]);
    // No auth on the route, or a consumer without this attribute: no key, so round-robin.
    expect(key(source({ identity: null }))).toBeUndefined();
    expect(key(source({ identity: { [field]: null } }))).toBeUndefined();
    expect(key(source({ identity: { [field]: '' } }))).toBeUndefined();
  });

  test('header:NAME: the header, whatever the case of NAME and of the field', () => {
    const key = compile('header:X-Tenant');
    expect(key(source({ headers: [['x-TENANT', 'acme']] }))).toBe('acme');
    expect(key(source({ headers: [['X-Tenant', 'a'], ['x-tenant', 'b']] }))).toBe('a, b');
    expect(key(source({ headers: [['x-other', 'acme']] }))).toBeUndefined();
    expect(key(source({ headers: [['x-tenant', '']] }))).toBeUndefined();
  });

  describe('cookie:NAME', () => {
    const key = compile('cookie:session');
    const withCookie = (...values: string[]) => key(source({ headers: values.map((v): [string, string] => ['Cookie', v]) }));

    test('finds the cookie among others, wherever it is', () => {
      expect(withCookie('session=s1')).toBe('s1');
      expect(withCookie('a=1; session=s2; b=2')).toBe('s2');
      expect(withCookie('a=1;session=s3')).toBe('s3');
      expect(withCookie('a=1; session=s4 ')).toBe('s4');
    });

    test('in any of several Cookie fields', () => {
      expect(withCookie('a=1', 'session=s5')).toBe('s5');
    });

    test('the first of two pairs with the name wins', () => {
      expect(withCookie('session=first; session=second')).toBe('first');
    });

    test('a cookie whose name only starts with NAME, or differs in case, is another cookie', () => {
      expect(withCookie('sessionid=x; Session=y')).toBeUndefined();
      expect(withCookie('xsession=x')).toBeUndefined();
    });

    test('no Cookie header, no such cookie, or an empty value: no key', () => {
      expect(key(source())).toBeUndefined();
      expect(withCookie('a=1; b=2')).toBeUndefined();
      expect(withCookie('session=; a=1')).toBeUndefined();
      expect(withCookie('session')).toBeUndefined();
    });
  });

  test('anything the conf loader would refuse throws when compiled, not per request', () => {
    expect(() => compileHashKey('body')).toThrow(TypeError);
  });
});

describe('upstreamHashKey', () => {
  const upstream = (algorithm: Algorithm, hashOn: string): UpstreamConf => ({
    name: 'u', algorithm, hash_on: hashOn, targets: [], keepalive: 64, connect_timeout: 1, send_timeout: 1,
    read_timeout: 1, retries: 1, host_header: null, tls: null, healthcheck: { active: null, passive: null },
  });

  test('only consistent-hash upstreams read hash_on (every upstream has one: it defaults to ip)', () => {
    expect(upstreamHashKey(upstream('round-robin', 'ip'))).toBeNull();
    expect(upstreamHashKey(upstream('least-conn', 'company_id'))).toBeNull();
    expect(upstreamHashKey(upstream('consistent-hash', 'company_id'))!(source({ identity: { company_id: '7' } }))).toBe('7');
  });
});
