import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { checkedCredentials, cookieValue, definePlugin, duplicate, GatewayError, Lru, quoted, s, Type, unauthorized, whenAbsent } from '../pdk/index.ts';
import type { Consumer, Exit, Identity, RequestCtx } from '../pdk/index.ts';

const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
type Alg = (typeof ALGORITHMS)[number];

const Credential = Type.Object({
  key: Type.String({ minLength: 1, description: 'Value of the key claim (iss) that selects this credential' }),
  algorithm: s.oneOf(ALGORITHMS, { default: 'HS256', description: 'The only algorithm accepted for this credential' }),
  secret: Type.Optional(Type.String({ minLength: 1, description: 'HS* shared secret' })),
  rsa_public_key: Type.Optional(Type.String({ minLength: 1, description: 'RS*/PS* public key (PEM)' })),
  public_key: Type.Optional(Type.String({ minLength: 1, description: 'RS*/PS*/ES*/EdDSA public key (PEM)' })),
}, { additionalProperties: false });

interface JwtCredential { key: string; algorithm: Alg; secret?: string; rsa_public_key?: string; public_key?: string }

const IDENTITY_FIELD = Type.String({ minLength: 1, description: 'Claim name' });

const Schema = s.object({
  uri_param_names: Type.Array(Type.String({ minLength: 1 }), { default: ['jwt'], description: 'Query arguments that may carry the token' }),
  cookie_names: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Cookies that may carry the token' }),
  header_names: Type.Array(s.headerName({ description: 'Header name' }), { default: ['authorization'], description: 'Headers that may carry `Bearer <token>` (Authorization: only that; a header of its own: the bare token too)' }),
  key_claim_name: Type.String({ minLength: 1, default: 'iss', description: 'Claim whose value selects the credential: in the payload, else in the header (`kid`)' }),
  secret_is_base64: Type.Boolean({ default: false, description: 'HS* secrets are base64-encoded' }),
  claims_to_verify: Type.Array(s.oneOf(['exp', 'nbf'], { description: 'A time claim' }), { default: [], description: 'Time claims that must be present (present ones are always checked)' }),
  maximum_expiration: Type.Integer({ minimum: 0, default: 0, description: 'Seconds: refuse tokens whose exp is further away than this (0: no limit; non-zero requires exp)' }),
  clock_skew: Type.Integer({ minimum: 0, maximum: 3600, default: 0, description: 'Seconds of tolerance on exp and nbf' }),
  claims_to_identity: Type.Record(Type.String({ minLength: 1 }), IDENTITY_FIELD, {
    default: {},
    description: 'Identity field -> claim, e.g. { user_id: sub, company_id: cid }; other fields become identity attributes',
  }),
  anonymous: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'Consumer username to use when the request has no token (null: answer 401)' }),
  run_on_preflight: Type.Boolean({ default: true, description: 'Also require a token on CORS preflight (OPTIONS) requests' }),
  realm: Type.String({ default: 'sluice', description: 'Realm in WWW-Authenticate' }),
  cache_size: Type.Integer({ minimum: 0, default: 4096, description: 'Verified tokens remembered per worker (LRU) until their exp; 0 disables' }),
}, { description: 'JWT authentication against the consumers\' jwt credentials' });

/**
 * A token that verified: the identity it gave and the time window (ms, clock
 * skew applied) in which that verdict holds. Clients send the same token for
 * many requests; the signature check (WebCrypto, asynchronous) is by far the
 * costliest step, and the cache key is the whole token, signature included,
 * so a hit is the very bytes that were verified.
 */
interface Verified {
  readonly identity: Identity;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Longer tokens are refused before any parsing: no legitimate token is near this, and nothing big gets base64-decoded. */
const MAX_TOKEN_LENGTH = 8192;
const BEARER = /^\s*bearer\s+/i;

/** The key type each algorithm family needs, so a credential can never pair an algorithm with a key of another kind. */
function keyFor(cred: JwtCredential, base64: boolean, consumer: string): Uint8Array | KeyObject {
  const fail = (why: string) => new GatewayError('GW_ERR_PLUGIN_CONF', `consumer "${consumer}": credentials.jwt key "${cred.key}": ${why}`);
  const alg = cred.algorithm;
  if (alg.startsWith('HS')) {
    if (cred.secret === undefined || cred.rsa_public_key !== undefined || cred.public_key !== undefined) throw fail(`${alg} needs a secret and no public key`);
    return base64 ? new Uint8Array(Buffer.from(cred.secret, 'base64')) : new TextEncoder().encode(cred.secret);
  }
  const pem = cred.public_key ?? cred.rsa_public_key;
  if (pem === undefined || cred.secret !== undefined) throw fail(`${alg} needs a public key and no secret`);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw fail('the public key is not a valid PEM public key');
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const ok = alg.startsWith('RS') ? type === 'rsa'
    : alg.startsWith('PS') ? type === 'rsa' || type === 'rsa-pss'
    : alg === 'ES256' ? type === 'ec' && curve === 'prime256v1'
    : alg === 'ES384' ? type === 'ec' && curve === 'secp384r1'
    : alg === 'ES512' ? type === 'ec' && curve === 'secp521r1'
    : type === 'ed25519' || type === 'ed448';
  if (!ok) throw fail(`a ${type ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`} key cannot verify ${alg}`);
  return key;
}

interface Entry {
  readonly consumer: Consumer;
  readonly key: Uint8Array | KeyObject;
  readonly algorithms: Alg[];
}

/** The token seen so far after seeing `v`: null once two different ones were seen; empty values do not count. */
const merge = (found: string | null | undefined, v: string | undefined): string | null | undefined =>
  v === undefined || v === '' || found === v ? found : found === undefined ? v : null;

/**
 * Kong's jwt plugin, verified with jose. The credential is chosen by the
 * key claim (iss) from a Map built once per conf, and its algorithm is pinned:
 * the token's `alg` header never chooses anything, so `alg: none` in any
 * spelling and HS256-signed-with-the-RSA-public-key are refused by jose
 * (algorithms: [pinned]; a secret never verifies an asymmetric algorithm).
 * Every failure is a 401 whose body names the reason, never the token.
 */
export const jwt = definePlugin({
  name: 'jwt',
  version: '1.0.0',
  priority: 1450, // Kong's
  schema: Schema,
  credentialSchema: Credential,
  create(conf, env) {
    const byKey = new Map<string, Entry>();
    for (const { consumer, credential } of checkedCredentials<JwtCredential>('jwt', env.consumers)) {
      const other = byKey.get(credential.key);
      if (other !== undefined) throw duplicate('jwt', `key "${credential.key}"`, other.consumer, consumer);
      byKey.set(credential.key, { consumer, key: keyFor(credential, conf.secret_is_base64, consumer.username), algorithms: [credential.algorithm] });
    }
    const challenge = `Bearer realm=${quoted(conf.realm)}`;
    const absent = whenAbsent('jwt', conf.anonymous, env.consumers, unauthorized(challenge));
    const bad = (message: string) => unauthorized(`${challenge}, error="invalid_token"`, message);
    const conflicting = bad('Several different tokens in one request');
    const malformed = bad('Bad token');
    const noCredential = bad('No credentials found for the token\'s key claim');
    const badSignature = bad('Invalid signature');
    const badAlgorithm = bad('Invalid algorithm');
    const expired = bad('Token expired');
    const badClaims = bad('Token claims invalid');
    const tooLong = bad('The exp claim exceeds maximum_expiration');
    const mapping = Object.entries(conf.claims_to_identity);
    const verified = new Lru<string, Verified>(conf.cache_size);
    const requiredClaims = conf.maximum_expiration > 0 && !conf.claims_to_verify.includes('exp') ? [...conf.claims_to_verify, 'exp'] : conf.claims_to_verify;
    const headerNames = conf.header_names;
    const uriNames = conf.uri_param_names;
    const cookieNames = conf.cookie_names;

    /** The one token of the request: undefined for none, null for several different ones. */
    function findToken(ctx: RequestCtx): string | null | undefined {
      let found: string | null | undefined;
      for (const name of uriNames) for (const v of ctx.req.query.getAll(name)) if ((found = merge(found, v)) === null) return null;
      if (cookieNames.length > 0) {
        for (const h of ctx.req.headers.getAll('cookie')) {
          for (const name of cookieNames) if ((found = merge(found, cookieValue(h, name))) === null) return null;
        }
      }
      // Authorization carries a token only as `Bearer <token>`, as Kong reads it: another scheme (Basic, for
      // basic-auth on the same route) is no token, so an `anonymous` fallback lets the next auth plugin decide.
      // A header of its own (X-Token) may carry the bare token too.
      for (const name of headerNames) {
        const schemed = name.toLowerCase() === 'authorization';
        for (const v of ctx.req.headers.getAll(name)) {
          const m = BEARER.exec(v);
          if (m === null && schemed) continue;
          if ((found = merge(found, m === null ? v : v.slice(m[0].length))) === null) return null;
        }
      }
      return found;
    }

    function identityFrom(consumer: Consumer, claims: JWTPayload): Identity {
      if (mapping.length === 0) return consumer.identity;
      const attributes: Record<string, string> = { ...consumer.attributes };
      for (const [field, claim] of mapping) {
        const v = claims[claim];
        if (typeof v === 'string' || typeof v === 'number') attributes[field] = String(v);
      }
      return {
        consumer: consumer.username,
        user_id: attributes['user_id'] ?? null,
        company_id: attributes['company_id'] ?? null,
        anonymous: false,
        attributes,
      };
    }

    async function verify(ctx: RequestCtx, token: string, entry: Entry): Promise<Exit | undefined> {
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(token, entry.key, {
          algorithms: entry.algorithms,
          clockTolerance: conf.clock_skew,
          currentDate: new Date(env.now()),
          requiredClaims,
        }));
      } catch (err) {
        switch ((err as { code?: string }).code) {
          case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return badSignature;
          case 'ERR_JOSE_ALG_NOT_ALLOWED': return badAlgorithm;
          case 'ERR_JWT_EXPIRED': return expired;
          case 'ERR_JWT_CLAIM_VALIDATION_FAILED': return badClaims;
          default: return malformed;
        }
      }
      if (conf.maximum_expiration > 0 && (claims.exp as number) - env.now() / 1000 > conf.maximum_expiration) return tooLong;
      const identity = identityFrom(entry.consumer, claims);
      const skew = conf.clock_skew * 1000;
      verified.set(token, {
        identity,
        notBefore: typeof claims.nbf === 'number' ? claims.nbf * 1000 - skew : -Infinity,
        notAfter: typeof claims.exp === 'number' ? claims.exp * 1000 + skew : Infinity,
      });
      ctx.identity = identity;
      return undefined;
    }

    return {
      access(ctx) {
        if (!conf.run_on_preflight && ctx.req.method === 'OPTIONS') return undefined;
        const token = findToken(ctx);
        if (token === null) return conflicting;
        if (token === undefined) return absent(ctx);
        if (token.length > MAX_TOKEN_LENGTH) return malformed;
        const hit = verified.get(token);
        if (hit !== undefined) {
          const now = env.now();
          if (now >= hit.notBefore && now <= hit.notAfter) {
            ctx.identity = hit.identity;
            return undefined;
          }
          verified.delete(token); // outside its window: verify again, which gives the precise refusal
        }
        let keyClaim: unknown;
        try {
          // The payload's claim, then the protected header's (a `kid` lives there), as Kong looks them up.
          keyClaim = decodeJwt(token)[conf.key_claim_name] ?? decodeProtectedHeader(token)[conf.key_claim_name];
        } catch {
          return malformed;
        }
        const entry = typeof keyClaim === 'string' ? byKey.get(keyClaim) : undefined;
        if (entry === undefined) return noCredential;
        return verify(ctx, token, entry);
      },
    };
  },
});
