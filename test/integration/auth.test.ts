import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { hashPassword } from '../../src/plugins/basic-auth/hash.ts';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { echoHandler, startUpstream } from '../helpers/upstream.ts';
import type { TestUpstream } from '../helpers/upstream.ts';

/**
 * key-auth, basic-auth and jwt through the real gateway (two workers), with
 * keys generated here. Every secret used is collected, and at the end no
 * response body or header and no line of the gateway's stderr may contain one.
 */

const KEY = 'alice-api-key-4f9a2c';
const PASSWORD = 'bob-password-77e1';
const HS_SECRET = 'hs256-secret-for-carol-0123456789abcdef';
const secrets = [KEY, PASSWORD, HS_SECRET];
const seen: string[] = [];

let echo: TestUpstream;
let gw: RunningGateway;
let rsa: { privateKey: CryptoKey; pem: string };
let ec: { privateKey: CryptoKey; pem: string };
let ed: { privateKey: CryptoKey; pem: string };

const pair = async (alg: string, opts?: object) => {
  const { privateKey, publicKey } = await generateKeyPair(alg, opts);
  return { privateKey, pem: await exportSPKI(publicKey) };
};

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([pair('RS256'), pair('ES256'), pair('EdDSA', { crv: 'Ed25519' })]);
  const hash = await hashPassword(PASSWORD, 'bcrypt');
  echo = await startUpstream(echoHandler);
  gw = await startGateway(() => ({
    upstreams: { echo: { targets: [{ address: echo.address }] } },
    consumers: [
      { username: 'alice', attributes: { user_id: '1001', company_id: '42' }, credentials: { 'key-auth': [{ key: KEY }] } },
      { username: 'bob', attributes: { user_id: '2002' }, credentials: { 'basic-auth': [{ password_hash: hash }] } },
      {
        username: 'carol', attributes: { company_id: '7' }, credentials: {
          jwt: [
            { key: 'carol-hs', algorithm: 'HS256', secret: HS_SECRET },
            { key: 'carol-rs', algorithm: 'RS256', rsa_public_key: rsa.pem },
            { key: 'carol-es', algorithm: 'ES256', public_key: ec.pem },
            { key: 'carol-ed', algorithm: 'EdDSA', public_key: ed.pem },
          ],
        },
      },
      { username: 'anon', attributes: {}, credentials: {} },
    ],
    routes: [
      { name: 'open', paths: ['/open'], upstream: 'echo' },
      { name: 'key', paths: ['/key'], upstream: 'echo', plugins: { 'key-auth': { hide_credentials: true } } },
      { name: 'key-anon', paths: ['/key-anon'], upstream: 'echo', plugins: { 'key-auth': { anonymous: 'anon' } } },
      { name: 'basic', paths: ['/basic'], upstream: 'echo', plugins: { 'basic-auth': { hide_credentials: true } } },
      { name: 'jwt', paths: ['/jwt'], upstream: 'echo', plugins: { jwt: { claims_to_verify: ['exp'], cookie_names: ['session'], claims_to_identity: { user_id: 'sub' } } } },
    ],
  }));
});

afterAll(async () => {
  await gw?.stop();
  await echo?.close();
});

interface Echoed { status: number; headers: Record<string, string>; upstream: Record<string, string | undefined>; body: string }

async function get(path: string, headers: Record<string, string> = {}): Promise<Echoed> {
  const res = await request(gw.url(path), { headers });
  const body = await res.body.text();
  const h = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)]));
  // A 200 body is the echo upstream repeating what it got (the jwt route forwards the token by design).
  seen.push(res.statusCode === 200 ? '' : body, JSON.stringify(h));
  const upstream = res.statusCode === 200 ? (JSON.parse(body) as { headers: Record<string, string> }).headers : {};
  return { status: res.statusCode, headers: h, upstream, body };
}

const identity = (e: Echoed) => ({
  consumer: e.upstream['x-consumer-username'], user: e.upstream['x-user-id'], company: e.upstream['x-company-id'], anonymous: e.upstream['x-anonymous-consumer'],
});
const exp = () => Math.floor(Date.now() / 1000) + 3600;
const sign = (claims: Record<string, unknown>, alg: string, key: CryptoKey | Uint8Array) => new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
const hs = (claims: Record<string, unknown>) => sign(claims, 'HS256', new TextEncoder().encode(HS_SECRET));
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('identity headers', () => {
  test('spoofed identity headers, alias spellings included, are removed on an open route', async () => {
    const e = await get('/open', { 'x-consumer-username': 'admin', 'x-user-id': '1', 'x-company-id': '1', 'x-anonymous-consumer': 'false', 'x_user_id': '1', 'x.user.id': '1' });
    expect(e.status).toBe(200);
    for (const name of ['x-consumer-username', 'x-user-id', 'x-company-id', 'x-anonymous-consumer', 'x_user_id', 'x.user.id']) expect(e.upstream[name]).toBeUndefined();
  });
});

describe('key-auth', () => {
  test('a valid key: trusted identity upstream, key hidden, spoofed headers replaced', async () => {
    const e = await get('/key', { apikey: KEY, 'x-consumer-username': 'admin', 'x-company-id': '1' });
    expect(e.status).toBe(200);
    expect(identity(e)).toEqual({ consumer: 'alice', user: '1001', company: '42', anonymous: undefined });
    expect(e.upstream['apikey']).toBeUndefined();
  });
  test('missing, wrong and conflicting keys: 401 JSON with WWW-Authenticate', async () => {
    for (const [path, headers] of [['/key', {}], ['/key', { apikey: 'wrong' }], [`/key?apikey=other`, { apikey: KEY }]] as const) {
      const e = await get(path, headers);
      expect(e.status).toBe(401);
      expect(e.headers['www-authenticate']).toBe('Key realm="sluice"');
      expect(e.headers['content-type']).toMatch(/application\/json/);
      expect(JSON.parse(e.body)).toMatchObject({ code: 'GW_ERR_UNAUTHORIZED' });
    }
  });
  test('anonymous consumer: X-Anonymous-Consumer, and a spoofed one is replaced', async () => {
    const e = await get('/key-anon', { 'x-anonymous-consumer': 'false', 'x-consumer-username': 'alice' });
    expect(identity(e)).toEqual({ consumer: 'anon', user: undefined, company: undefined, anonymous: 'true' });
  });
});

describe('basic-auth', () => {
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  test('a bcrypt password passes (twice: the second from the cache); a wrong one is 401', async () => {
    for (let i = 0; i < 2; i++) {
      const e = await get('/basic', basic('bob', PASSWORD));
      expect(e.status).toBe(200);
      expect(identity(e)).toMatchObject({ consumer: 'bob', user: '2002' });
      expect(e.upstream['authorization']).toBeUndefined();
    }
    const bad = await get('/basic', basic('bob', 'not-it'));
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toBe('Basic realm="sluice"');
  });
});

describe('jwt', () => {
  test('HS256, RS256, ES256 and EdDSA tokens; header, query and cookie; sub mapped to user_id', async () => {
    const tokens = [
      await hs({ iss: 'carol-hs', exp: exp(), sub: 'u-1' }),
      await sign({ iss: 'carol-rs', exp: exp(), sub: 'u-1' }, 'RS256', rsa.privateKey),
      await sign({ iss: 'carol-es', exp: exp(), sub: 'u-1' }, 'ES256', ec.privateKey),
      await sign({ iss: 'carol-ed', exp: exp(), sub: 'u-1' }, 'EdDSA', ed.privateKey),
    ];
    secrets.push(...tokens);
    for (const t of tokens) {
      const e = await get('/jwt', { authorization: `Bearer ${t}`, 'x-user-id': 'spoofed' });
      expect(e.status).toBe(200);
      expect(identity(e)).toEqual({ consumer: 'carol', user: 'u-1', company: '7', anonymous: undefined });
    }
    expect((await get(`/jwt?jwt=${tokens[0]}`)).status).toBe(200);
    expect((await get('/jwt', { cookie: `session=${tokens[1]}` })).status).toBe(200);
  });

  test('every bad token is a 401 with WWW-Authenticate', async () => {
    const past = Math.floor(Date.now() / 1000) - 3600;
    const [h, , sig] = (await hs({ iss: 'carol-hs', exp: exp() })).split('.');
    const other = await pair('RS256');
    const bad: Record<string, string> = {
      expired: await hs({ iss: 'carol-hs', exp: past }),
      'not yet valid': await hs({ iss: 'carol-hs', exp: exp() + 3600, nbf: exp() }),
      'no exp': await hs({ iss: 'carol-hs' }),
      tampered: `${h}.${b64url({ iss: 'carol-hs', exp: exp(), sub: 'admin' })}.${sig}`,
      'foreign key': await sign({ iss: 'carol-rs', exp: exp() }, 'RS256', other.privateKey),
      'HS256 with the RS256 public key': await sign({ iss: 'carol-rs', exp: exp() }, 'HS256', new TextEncoder().encode(rsa.pem)),
      'unknown iss': await hs({ iss: 'mallory', exp: exp() }),
      malformed: 'not.a.jwt',
      'alg none': `${b64url({ alg: 'none' })}.${b64url({ iss: 'carol-hs', exp: exp() })}.`,
      'alg None': `${b64url({ alg: 'None' })}.${b64url({ iss: 'carol-hs', exp: exp() })}.`,
      'alg NONE': `${b64url({ alg: 'NONE' })}.${b64url({ iss: 'carol-hs', exp: exp() })}.`,
      'alg nOnE with a signature': `${b64url({ alg: 'nOnE' })}.${b64url({ iss: 'carol-hs', exp: exp() })}.${sig}`,
    };
    secrets.push(...Object.values(bad).filter((t) => t.length > 20));
    for (const [what, token] of Object.entries(bad)) {
      const e = await get('/jwt', { authorization: `Bearer ${token}` });
      expect(e.status, what).toBe(401);
      expect(e.headers['www-authenticate'], what).toMatch(/^Bearer realm="sluice"/);
      expect(JSON.parse(e.body).code, what).toBe('GW_ERR_UNAUTHORIZED');
    }
  });

  test('a 100 KB token never passes: 401 from the plugin, or 431 from the header limit', async () => {
    const big = await hs({ iss: 'carol-hs', exp: exp(), pad: 'x'.repeat(100 * 1024) });
    secrets.push(big);
    const e = await get('/jwt', { authorization: `Bearer ${big}` });
    expect([401, 431]).toContain(e.status);
  });
});

test('no secret, key or token in any gateway response or in the gateway\'s stderr', async () => {
  const text = seen.join('\n') + gw.stderr();
  for (const s of secrets) expect(text.includes(s), s.slice(0, 12)).toBe(false);
});
