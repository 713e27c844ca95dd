import { describe, expect, test } from 'vitest';
import { cors } from '../../../src/plugins/cors/index.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

describe('schema', () => {
  test('defaults', () => {
    const c = checkConf(cors, {}).conf as Record<string, unknown>;
    expect(c).toMatchObject({ origins: [], headers: null, exposed_headers: [], credentials: false, max_age: null, preflight_continue: false });
    expect(c['methods']).toContain('PATCH');
  });
  test('invalid regex and header names are reported at their path', () => {
    const c = checkConf(cors, { origins: ['https://a.com', '~ ([a-z'], exposed_headers: ['bad header'] });
    expect(c.errors).toEqual(expect.arrayContaining([expect.stringMatching(/^\/origins\/1: invalid origin regex/), expect.stringMatching(/^\/exposed_headers\/0: invalid header name/)]));
  });
});

const run = (conf: object, req: Parameters<ReturnType<typeof harness>['run']>[0]) => harness([cors], { cors: conf }).run(req);

describe('origins', () => {
  const conf = { origins: ['https://example.com', '~ https://[a-z]+\\.example\\.org'], exposed_headers: ['X-Total'] };

  test('an exact origin is echoed with Vary: Origin and exposed headers', async () => {
    const r = await run(conf, { headers: { origin: 'https://example.com' }, upstream: { headers: { vary: 'Accept-Encoding' } } });
    expect(r.header('access-control-allow-origin')).toBe('https://example.com');
    expect(r.header('access-control-expose-headers')).toBe('X-Total');
    expect(r.header('vary')).toBe('Accept-Encoding, Origin');
  });

  test('look-alike origins get no allow-origin (matching is anchored)', async () => {
    for (const origin of ['https://example.com.evil.net', 'https://evil.example.com', 'http://example.com', 'https://a.example.org.evil.net', 'xhttps://a.example.org']) {
      const r = await run(conf, { headers: { origin } });
      expect(r.header('access-control-allow-origin'), origin).toBeUndefined();
      expect(r.header('vary')).toBe('Origin');
    }
    expect((await run(conf, { headers: { origin: 'https://api.example.org' } })).header('access-control-allow-origin')).toBe('https://api.example.org');
  });

  test('* without credentials answers *; with credentials the origin is echoed, never *', async () => {
    expect((await run({}, { headers: { origin: 'https://x.io' } })).header('access-control-allow-origin')).toBe('*');
    const r = await run({ origins: ['*'], credentials: true }, { headers: { origin: 'https://x.io' } });
    expect(r.header('access-control-allow-origin')).toBe('https://x.io');
    expect(r.header('access-control-allow-credentials')).toBe('true');
    expect(r.header('vary')).toBe('Origin');
  });
});

describe('preflight', () => {
  const preflight = { method: 'OPTIONS', headers: { origin: 'https://example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-a, x-b' } };

  test('answered by the gateway with methods, echoed request headers and max-age', async () => {
    const r = await run({ origins: ['https://example.com'], methods: ['GET', 'PUT'], max_age: 600 }, preflight);
    expect(r.upstream).toBeNull();
    expect(r.status).toBe(200);
    expect(r.header('access-control-allow-methods')).toBe('GET, PUT');
    expect(r.header('access-control-allow-headers')).toBe('x-a, x-b');
    expect(r.header('access-control-max-age')).toBe('600');
    expect(r.header('access-control-allow-origin')).toBe('https://example.com');
  });

  test('configured headers replace the echo; preflight_continue sends it upstream', async () => {
    expect((await run({ headers: ['X-Only'] }, preflight)).header('access-control-allow-headers')).toBe('X-Only');
    expect((await run({ preflight_continue: true }, preflight)).upstream).not.toBeNull();
  });

  test('a plain OPTIONS (no Access-Control-Request-Method) goes upstream', async () => {
    expect((await run({}, { method: 'OPTIONS' })).upstream).not.toBeNull();
  });
});
