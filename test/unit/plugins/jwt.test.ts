import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey } from 'jose';
import { beforeAll, describe, expect, test } from 'vitest';
import { jwt } from '../../../src/plugins/jwt/index.ts';
import type { ConsumerConf } from '../../../src/config/types.ts';
import { identityOf, identityProbe } from '../../fixtures/auth/identity-probe.ts';
import { checkConf, harness } from '../../helpers/plugin-harness.ts';

const NOW = 1_800_000_000_000; // injected clock, ms
const SECRET = 'hs256-secret-that-is-long-enough-0123456789';
const b64url = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

let rsa: { privateKey: CryptoKey; pem: string };
let ec: { privateKey: CryptoKey; pem: string };
let ed: { privateKey: CryptoKey; pem: string };
let consumers: ConsumerConf[];

const pair = async (alg: string, opts?: object) => {
  const { privateKey, publicKey } = await generateKeyPair(alg, opts);
  return { privateKey, pem: await exportSPKI(publicKey) };
};

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([pair('RS256'), pair('ES256'), pair('EdDSA', { crv: 'Ed25519' })]);
  consumers = [
    { username: 'hs', attributes: { user_id: '1', company_id: '10' }, credentials: { jwt: [{ key: 'hs-iss', algorithm: 'HS256', secret: SECRET }] } },
    { username: 'rs', attributes: {}, credentials: { jwt: [{ key: 'rs-iss', algorithm: 'RS256', rsa_public_key: rsa.pem }] } },
    { username: 'es', attributes: {}, credentials: { jwt: [{ key: 'es-iss', algorithm: 'ES256', public_key: ec.pem }] } },
    { username: 'ed', attributes: {}, credentials: { jwt: [{ key: 'ed-iss', algorithm: 'EdDSA', public_key: ed.pem }] } },
    { username: 'guest', attributes: {}, credentials: {} },
  ];
});

const sign = (claims: Record<string, unknown>, alg: string, key: CryptoKey | Uint8Array) =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
const hs = (claims: Record<string, unknown>) => sign(claims, 'HS256', new TextEncoder().encode(SECRET));

const run = (conf: object, req: Parameters<ReturnType<typeof harness>['run']>[0]) =>
  harness([jwt, identityProbe], { jwt: conf, 'identity-probe': {} }, { consumers, now: () => NOW }).run(req);
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
/** 200, or the reason (the message) of the GW_ERR_UNAUTHORIZED refusal. */
const reason = async (conf: object, token: string) => {
  const r = await run(conf, bearer(token));
  if (r.status === 200) return 200;
  expect(r.status).toBe(401);
  expect(r.header('www-authenticate')).toMatch(/^Bearer realm="sluice"/);
  expect(r.body).not.toContain(token);
  const body = JSON.parse(r.body) as { code: string; message: string };
  expect(body.code).toBe('GW_ERR_UNAUTHORIZED');
  return body.message;
};

describe('schema', () => {
  test('defaults are Kong\'s', () => {
    expect(checkConf(jwt, {}).conf).toEqual({
      uri_param_names: ['jwt'], cookie_names: [], header_names: ['authorization'], key_claim_name: 'iss',
      secret_is_base64: false, claims_to_verify: [], maximum_expiration: 0, clock_skew: 0, claims_to_identity: {},
      anonymous: null, run_on_preflight: true, realm: 'sluice', cache_size: 4096,
    });
  });
  test('unknown claims to verify are refused', () => {
    expect(checkConf(jwt, { claims_to_verify: ['iat'] }).ok).toBe(false);
  });
  test('a credential must pair its algorithm with the right kind of key', () => {
    const make = (cred: Record<string, unknown>) => () => harness([jwt], { jwt: {} }, { consumers: [{ username: 'x', attributes: {}, credentials: { jwt: [cred] } }] });
    expect(make({ key: 'i', algorithm: 'RS256', secret: 'abc' })).toThrow(/consumer "x".*RS256 needs a public key/);
    expect(make({ key: 'i', algorithm: 'HS256', rsa_public_key: rsa.pem })).toThrow(/HS256 needs a secret/);
    expect(make({ key: 'i', algorithm: 'ES256', public_key: rsa.pem })).toThrow(/rsa key cannot verify ES256/);
    expect(make({ key: 'i', algorithm: 'RS256', public_key: 'not a pem' })).toThrow(/not a valid PEM/);
    expect(make({ key: 'i', algorithm: 'none', secret: 'abc' })).toThrow(/consumers\[0\]\.credentials\.jwt\[0\]\.algorithm/);
    expect(make({ key: 'i', algorithm: 'HS256', secret: 'sekrit-value' })).not.toThrow();
    try {
      make({ key: 'i', algorithm: 'RS256', secret: 'sekrit-value' })();
    } catch (err) {
      expect(String(err)).not.toContain('sekrit-value');
    }
  });
});

describe('verification', () => {
  const exp = NOW / 1000 + 3600;

  test('HS256, RS256, ES256 and EdDSA tokens identify their consumer', async () => {
    expect(await reason({}, await hs({ iss: 'hs-iss', exp }))).toBe(200);
    expect(await reason({}, await sign({ iss: 'rs-iss' }, 'RS256', rsa.privateKey))).toBe(200);
    expect(await reason({}, await sign({ iss: 'es-iss' }, 'ES256', ec.privateKey))).toBe(200);
    expect(await reason({}, await sign({ iss: 'ed-iss' }, 'EdDSA', ed.privateKey))).toBe(200);
    const r = await run({}, bearer(await hs({ iss: 'hs-iss' })));
    expect(identityOf(r.upstream!.headers)).toMatchObject({ consumer: 'hs', user_id: '1', company_id: '10', anonymous: false });
  });

  test('alg none in several spellings is refused', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = `${b64url({ alg, typ: 'JWT' })}.${b64url({ iss: 'hs-iss' })}.`;
      expect(await reason({}, token)).not.toBe(200);
      expect(await reason({}, `${token}${b64url('sig')}`)).not.toBe(200);
    }
  });

  test('algorithm confusion: HS256 signed with the RS256 public key is refused', async () => {
    const token = await sign({ iss: 'rs-iss' }, 'HS256', new TextEncoder().encode(rsa.pem));
    expect(await reason({}, token)).toBe('Invalid algorithm');
    // and an RS256 token for an HS256 credential
    expect(await reason({}, await sign({ iss: 'hs-iss' }, 'RS256', rsa.privateKey))).toBe('Invalid algorithm');
  });

  test('tampered payload and foreign key: bad signature', async () => {
    const [h, , sig] = (await hs({ iss: 'hs-iss', sub: 'u1' })).split('.');
    expect(await reason({}, `${h}.${b64url({ iss: 'hs-iss', sub: 'admin' })}.${sig}`)).toBe('Invalid signature');
    const other = await pair('RS256');
    expect(await reason({}, await sign({ iss: 'rs-iss' }, 'RS256', other.privateKey))).toBe('Invalid signature');
  });

  test('expired and not-yet-valid tokens; clock_skew tolerates a little', async () => {
    const t = NOW / 1000;
    expect(await reason({}, await hs({ iss: 'hs-iss', exp: t - 10 }))).toBe('Token expired');
    expect(await reason({}, await hs({ iss: 'hs-iss', nbf: t + 10 }))).toBe('Token claims invalid');
    expect(await reason({ clock_skew: 30 }, await hs({ iss: 'hs-iss', exp: t - 10 }))).toBe(200);
    expect(await reason({ clock_skew: 30 }, await hs({ iss: 'hs-iss', nbf: t + 10 }))).toBe(200);
    expect(await reason({ clock_skew: 30 }, await hs({ iss: 'hs-iss', exp: t - 31 }))).toBe('Token expired');
  });

  test('claims_to_verify requires the claims; maximum_expiration caps exp', async () => {
    expect(await reason({ claims_to_verify: ['exp'] }, await hs({ iss: 'hs-iss' }))).toBe('Token claims invalid');
    expect(await reason({ claims_to_verify: ['exp', 'nbf'] }, await hs({ iss: 'hs-iss', exp, nbf: NOW / 1000 }))).toBe(200);
    expect(await reason({ maximum_expiration: 600 }, await hs({ iss: 'hs-iss', exp }))).toBe('The exp claim exceeds maximum_expiration');
    expect(await reason({ maximum_expiration: 7200 }, await hs({ iss: 'hs-iss', exp }))).toBe(200);
    expect(await reason({ maximum_expiration: 7200 }, await hs({ iss: 'hs-iss' }))).toBe('Token claims invalid');
  });

  test('unknown iss, missing iss, malformed and 100 KB tokens', async () => {
    expect(await reason({}, await hs({ iss: 'who' }))).toBe("No credentials found for the token's key claim");
    expect(await reason({}, await hs({ sub: 'x' }))).toBe("No credentials found for the token's key claim");
    for (const t of ['abc', 'a.b.c', '...', `${b64url({ alg: 'HS256' })}.not-json.x`]) expect(await reason({}, t)).toBe('Bad token');
    expect(await reason({}, await hs({ iss: 'hs-iss', pad: 'x'.repeat(100 * 1024) }))).toBe('Bad token');
  });

  test('key_claim_name picks another claim', async () => {
    expect(await reason({ key_claim_name: 'kid_claim' }, await hs({ kid_claim: 'hs-iss' }))).toBe(200);
  });
});

describe('token locations', () => {
  test('query parameter, cookie, custom header; Bearer is optional in a header of its own', async () => {
    const t = await hs({ iss: 'hs-iss' });
    expect((await run({}, { query: `jwt=${t}` })).status).toBe(200);
    expect((await run({ cookie_names: ['session'] }, { headers: { cookie: `a=1; session=${t}` } })).status).toBe(200);
    expect((await run({ header_names: ['x-token'] }, { headers: { 'x-token': t } })).status).toBe(200);
    expect((await run({ uri_param_names: [] }, { query: `jwt=${t}` })).status).toBe(401);
  });
  test('key_claim_name: kid is found in the protected header when the payload has none', async () => {
    const secret = new TextEncoder().encode(SECRET);
    const inHeader = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', kid: 'hs-iss' }).sign(secret);
    expect((await run({ key_claim_name: 'kid' }, bearer(inHeader))).status).toBe(200);
    expect((await run({ key_claim_name: 'kid' }, bearer(await hs({ kid: 'hs-iss' })))).status).toBe(200);
    const unknown = await new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'nobody' }).sign(secret);
    expect((await run({ key_claim_name: 'kid' }, bearer(unknown))).status).toBe(401);
  });
  test('Authorization carries a token only as Bearer: another scheme is no token, so anonymous lets basic-auth decide', async () => {
    const t = await hs({ iss: 'hs-iss' });
    expect((await run({}, { headers: { authorization: t } })).status).toBe(401);
    const basic = await run({ anonymous: 'guest' }, { headers: { authorization: 'Basic YWxpY2U6cHcx' } });
    expect(basic.status).toBe(200);
    expect(identityOf(basic.upstream!.headers)).toMatchObject({ consumer: 'guest', anonymous: true });
    expect((await run({}, { headers: { authorization: `bearer  ${t}` } })).status).toBe(200);
  });
  test('two different tokens in one request: 401', async () => {
    const a = await hs({ iss: 'hs-iss', sub: 'a' });
    const b = await hs({ iss: 'hs-iss', sub: 'b' });
    const r = await run({}, { headers: { authorization: `Bearer ${a}` }, query: `jwt=${b}` });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'Several different tokens in one request' });
    expect((await run({}, { headers: { authorization: `Bearer ${a}` }, query: `jwt=${a}` })).status).toBe(200);
  });
  test('no token: 401, or the anonymous consumer', async () => {
    expect(JSON.parse((await run({}, {})).body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'unauthorized' });
    const r = await run({ anonymous: 'guest' }, {});
    expect(identityOf(r.upstream!.headers)).toMatchObject({ consumer: 'guest', anonymous: true });
  });
});

describe('claims_to_identity', () => {
  test('maps claims onto identity fields and attributes', async () => {
    const r = await run({ claims_to_identity: { user_id: 'sub', company_id: 'cid', plan: 'tier' } }, bearer(await hs({ iss: 'hs-iss', sub: 'u-77', cid: 99, tier: 'gold' })));
    expect(identityOf(r.upstream!.headers)).toEqual({
      consumer: 'hs', user_id: 'u-77', company_id: '99', anonymous: false,
      attributes: { user_id: 'u-77', company_id: '99', plan: 'gold' },
    });
  });
  test('a claim the token lacks keeps the consumer\'s value', async () => {
    const r = await run({ claims_to_identity: { user_id: 'sub' } }, bearer(await hs({ iss: 'hs-iss' })));
    expect(identityOf(r.upstream!.headers)).toMatchObject({ user_id: '1' });
  });
});

describe('verified-token cache', () => {
  test('a cached token stops passing at its exp (with clock_skew), and then gets the precise refusal', async () => {
    let clock = NOW;
    const h = harness([jwt, identityProbe], { jwt: { clock_skew: 5 }, 'identity-probe': {} }, { consumers, now: () => clock });
    const exp = Math.floor(NOW / 1000) + 60;
    const token = await hs({ iss: 'hs-iss', exp });
    expect((await h.run(bearer(token))).status).toBe(200);
    clock = exp * 1000 + 5_000; // the last instant the skew allows
    expect((await h.run(bearer(token))).status).toBe(200);
    clock = exp * 1000 + 6_000;
    const late = await h.run(bearer(token));
    expect(late.status).toBe(401);
    expect(JSON.parse(late.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'Token expired' });
  });

  test('a token differing from a cached one by a single signature byte is verified, not taken from the cache', async () => {
    const h = harness([jwt, identityProbe], { jwt: {}, 'identity-probe': {} }, { consumers, now: () => NOW });
    const token = await hs({ iss: 'hs-iss', exp: Math.floor(NOW / 1000) + 60 });
    expect((await h.run(bearer(token))).status).toBe(200);
    const last = token.at(-2) === 'A' ? 'B' : 'A';
    const tampered = `${token.slice(0, -2)}${last}${token.at(-1)!}`;
    const r = await h.run(bearer(tampered));
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'Invalid signature' });
  });
});
