import { describe, expect, test } from 'vitest';
import { basicAuth } from '../../../src/plugins/basic-auth/index.ts';
import { algorithmOf, hashPassword, verifyPassword } from '../../../src/plugins/basic-auth/hash.ts';
import type { ConsumerConf } from '../../../src/config/types.ts';
import { identityOf, identityProbe } from '../../fixtures/auth/identity-probe.ts';
import { checkConf, harness, headerOf } from '../../helpers/plugin-harness.ts';

const basic = (user: string, pass: string) => ({ headers: { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } });

describe('hashes', () => {
  test.each(['bcrypt', 'scrypt', 'argon2'] as const)('%s: hash, recognise, verify', async (alg) => {
    const h = await hashPassword('correct horse', alg);
    expect(algorithmOf(h)).toBe(alg);
    expect(await verifyPassword(h, 'correct horse')).toBe(true);
    expect(await verifyPassword(h, 'wrong horse')).toBe(false);
  });
  test('unknown formats are not hashes', () => {
    expect(algorithmOf('plain-text')).toBeNull();
    expect(algorithmOf('$1$md5$crypt')).toBeNull();
  });
});

describe('schema', () => {
  test('defaults', () => {
    expect(checkConf(basicAuth, {}).conf).toEqual({ hide_credentials: false, anonymous: null, run_on_preflight: true, realm: 'sluice', cache_size: 1024 });
  });
  test('a credential needs exactly one of password and password_hash, and a real hash', () => {
    const make = (cred: Record<string, unknown>) => () => harness([basicAuth], { 'basic-auth': {} }, { consumers: [{ username: 'bob', attributes: {}, credentials: { 'basic-auth': [cred] } }] });
    expect(make({})).toThrow(/consumers\[0\]\.credentials\.basic-auth\[0\]: exactly one of password or password_hash/);
    expect(make({ password: 'a', password_hash: '$2b$' })).toThrow(/consumers\[0\]\.credentials\.basic-auth\[0\]/);
    expect(make({ password_hash: 'sekrit' })).toThrow(/not a bcrypt, scrypt or argon2 hash/);
    expect(make({ password: 'sekrit' })).not.toThrow();
  });
});

describe('access', async () => {
  const [bcryptHash, scryptHash, argonHash] = await Promise.all([hashPassword('b-pass', 'bcrypt'), hashPassword('s-pass', 'scrypt'), hashPassword('a-pass', 'argon2')]);
  const consumers: ConsumerConf[] = [
    { username: 'plain', attributes: { user_id: '7' }, credentials: { 'basic-auth': [{ password: 'p-pass' }] } },
    { username: 'b', attributes: {}, credentials: { 'basic-auth': [{ username: 'bee', password_hash: bcryptHash }] } },
    { username: 's', attributes: {}, credentials: { 'basic-auth': [{ password_hash: scryptHash }] } },
    { username: 'a', attributes: {}, credentials: { 'basic-auth': [{ password_hash: argonHash }] } },
    { username: 'guest', attributes: {}, credentials: {} },
  ];
  const make = (conf: object = {}, now?: () => number) =>
    harness([basicAuth, identityProbe], { 'basic-auth': conf, 'identity-probe': {} }, { consumers, ...(now === undefined ? {} : { now }) });

  test('plain and hashed passwords identify the consumer', async () => {
    const h = make();
    for (const [user, pass, consumer] of [['plain', 'p-pass', 'plain'], ['bee', 'b-pass', 'b'], ['s', 's-pass', 's'], ['a', 'a-pass', 'a']]) {
      const r = await h.run(basic(user!, pass!));
      expect(r.status).toBe(200);
      expect(identityOf(r.upstream!.headers)).toMatchObject({ consumer, anonymous: false });
    }
  });

  test('wrong password, unknown user, no credentials, garbage: 401 without the secret', async () => {
    const h = make();
    for (const req of [basic('plain', 'nope-pass'), basic('bee', 'nope-pass'), basic('ghost', 'p-pass'), { headers: { authorization: 'Basic !!!' } }]) {
      const r = await h.run(req);
      expect(r.status).toBe(401);
      expect(r.header('www-authenticate')).toBe('Basic realm="sluice"');
      expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'Invalid authentication credentials' });
      expect(r.body).not.toMatch(/pass/);
    }
    expect(JSON.parse((await h.run({})).body)).toEqual({ code: 'GW_ERR_UNAUTHORIZED', message: 'unauthorized' });
  });

  test('an unknown username takes as long as a wrong password (a hash is verified either way)', async () => {
    const h = make();
    const timed = async (user: string): Promise<number> => {
      const t0 = performance.now();
      expect((await h.run(basic(user, 'nope-pass'))).status).toBe(401);
      return performance.now() - t0;
    };
    await timed('bee'); // starts the offload pool
    const wrong = Math.min(await timed('bee'), await timed('bee'));
    const unknown = Math.min(await timed('ghost'), await timed('ghost'));
    // bcrypt cost 12 takes a few hundred ms; a refusal without verifying takes well under one.
    expect(wrong).toBeGreaterThan(20);
    expect(unknown).toBeGreaterThan(wrong / 2);
  });

  test('a verified hash is cached: the same credential passes again, a wrong one never does', async () => {
    const h = make({ cache_size: 1 });
    expect((await h.run(basic('bee', 'b-pass'))).status).toBe(200);
    expect((await h.run(basic('bee', 'b-pass'))).status).toBe(200);
    expect((await h.run(basic('bee', 'b-pasS'))).status).toBe(401);
    expect((await h.run(basic('a', 'a-pass'))).status).toBe(200);
    expect((await h.run(basic('bee', 'b-pass'))).status).toBe(200);
  });

  test('hide_credentials and anonymous', async () => {
    const r = await make({ hide_credentials: true }).run(basic('plain', 'p-pass'));
    expect(headerOf(r.upstream!.headers, 'authorization')).toBeUndefined();
    const anon = await make({ anonymous: 'guest' }).run({});
    expect(identityOf(anon.upstream!.headers)).toMatchObject({ consumer: 'guest', anonymous: true });
  });
});
