import { checkedCredentials, definePlugin, digest, digestKey, duplicate, Lru, quoted, s, sameDigest, Type, unauthorized, whenAbsent } from '../pdk/index.ts';
import type { Consumer, RequestCtx } from '../pdk/index.ts';
import { algorithmOf } from './hash.ts';

const Credential = Type.Refine(Type.Object({
  username: Type.Optional(Type.String({ minLength: 1, description: 'Login name (default: the consumer\'s username)' })),
  password: Type.Optional(Type.String({ minLength: 1, description: 'Plain password, for tests and demos' })),
  password_hash: Type.Optional(Type.Refine(Type.String(), (v) => algorithmOf(v) !== null,
    () => 'not a bcrypt, scrypt or argon2 hash (make one with `sluice hash-password`)')),
}, { additionalProperties: false }), (c) => (c.password === undefined) !== (c.password_hash === undefined),
() => 'exactly one of password or password_hash is required');

interface BasicCredential { username?: string; password?: string; password_hash?: string }

const Schema = s.object({
  hide_credentials: Type.Boolean({ default: false, description: 'Remove the Authorization header from the request sent upstream' }),
  anonymous: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'Consumer username to use when the request has no credentials (null: answer 401)' }),
  run_on_preflight: Type.Boolean({ default: true, description: 'Also require credentials on CORS preflight (OPTIONS) requests' }),
  realm: Type.String({ default: 'sluice', description: 'Realm in WWW-Authenticate' }),
  cache_size: Type.Integer({ minimum: 0, default: 1024, description: 'Successful hash verifications remembered (LRU); 0 disables' }),
}, { description: 'HTTP Basic authentication against the consumers\' basic-auth credentials' });

interface Entry {
  readonly consumer: Consumer;
  /** Digest of a plain password, compared in constant time. */
  readonly plain: Buffer | null;
  readonly hash: string | null;
}

const TASK = new URL('./hash.ts', import.meta.url);
const PREFIX = /^basic +/i;

/**
 * Kong's basic-auth. Usernames are indexed once per conf. A plain password is
 * compared as a digest in constant time; a hashed one (bcrypt, scrypt,
 * argon2: deliberately slow) is verified in the offload pool so the reactor
 * never stalls, and a success is remembered in a bounded LRU keyed by the
 * digest of the whole credential, so a client repeating its request costs
 * one SHA-256 and a Map get. Failures are never cached.
 */
export const basicAuth = definePlugin({
  name: 'basic-auth',
  version: '1.0.0',
  priority: 1100, // Kong's
  schema: Schema,
  credentialSchema: Credential,
  create(conf, env) {
    const byUser = new Map<string, Entry>();
    for (const { consumer, credential } of checkedCredentials<BasicCredential>('basic-auth', env.consumers)) {
      const username = credential.username ?? consumer.username;
      const other = byUser.get(username);
      if (other !== undefined) throw duplicate('basic-auth', `username "${username}"`, other.consumer, consumer);
      byUser.set(username, {
        consumer,
        plain: credential.password === undefined ? null : digest(credential.password),
        hash: credential.password_hash ?? null,
      });
    }
    // An unknown username is checked against a stored hash too, and refused
    // whatever the outcome: "no such user" then takes as long as "wrong
    // password", so response times do not tell which usernames exist. The
    // first hash stands in for all (a conf's hashes usually share algorithm and cost).
    const decoy = [...byUser.values()].find((e) => e.hash !== null)?.hash ?? null;
    const challenge = `Basic realm=${quoted(conf.realm)}`;
    const absent = whenAbsent('basic-auth', conf.anonymous, env.consumers, unauthorized(challenge));
    const invalid = unauthorized(challenge, 'Invalid authentication credentials');
    const verified = new Lru<string, Consumer>(conf.cache_size);

    const pass = (ctx: RequestCtx, consumer: Consumer): undefined => {
      if (conf.hide_credentials) ctx.req.headers.remove('authorization');
      ctx.identity = consumer.identity;
      return undefined;
    };

    return {
      access(ctx) {
        if (!conf.run_on_preflight && ctx.req.method === 'OPTIONS') return undefined;
        const header = ctx.req.headers.get('authorization');
        if (header === undefined || !PREFIX.test(header)) return absent(ctx);
        const cacheKey = digestKey(header);
        const hit = verified.get(cacheKey);
        if (hit !== undefined) return pass(ctx, hit);
        const decoded = Buffer.from(header.replace(PREFIX, ''), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon === -1) return invalid;
        const entry = byUser.get(decoded.slice(0, colon));
        const password = decoded.slice(colon + 1);
        if (entry === undefined) {
          if (decoy === null) return invalid;
          return env.offload.run<boolean>(TASK, { hash: decoy, password }).then(() => invalid);
        }
        if (entry.plain !== null) return sameDigest(entry.plain, digest(password)) ? pass(ctx, entry.consumer) : invalid;
        return env.offload.run<boolean>(TASK, { hash: entry.hash, password }).then((ok) => {
          if (!ok) return invalid;
          verified.set(cacheKey, entry.consumer);
          return pass(ctx, entry.consumer);
        });
      },
    };
  },
});
