import { checkedCredentials, definePlugin, digestKey, duplicate, quoted, s, Type, unauthorized, whenAbsent } from '../pdk/index.ts';
import type { Consumer, RequestCtx } from '../pdk/index.ts';

const Credential = Type.Object({
  key: Type.String({ minLength: 1, description: 'The API key' }),
}, { additionalProperties: false });

const Schema = s.object({
  key_names: Type.Array(s.headerName({ description: 'A header or query argument name' }), { minItems: 1, default: ['apikey'], description: 'Where the key may be: header and query argument names' }),
  key_in_header: Type.Boolean({ default: true, description: 'Look for the key in the headers' }),
  key_in_query: Type.Boolean({ default: true, description: 'Look for the key in the query string' }),
  hide_credentials: Type.Boolean({ default: false, description: 'Remove the key from the request sent upstream' }),
  anonymous: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'Consumer username to use when the request has no key (null: answer 401)' }),
  run_on_preflight: Type.Boolean({ default: true, description: 'Also require a key on CORS preflight (OPTIONS) requests' }),
  realm: Type.String({ default: 'sluice', description: 'Realm in WWW-Authenticate' }),
}, { description: 'API key authentication against the consumers\' key-auth credentials' });

/**
 * Kong's key-auth. Keys are indexed once per conf by their SHA-256, so a
 * lookup is one Map get on a digest. A request carrying two different keys
 * (header and query, or two names) is refused rather than guessing which one
 * counts (Kong #9946's lesson for tokens).
 */
export const keyAuth = definePlugin({
  name: 'key-auth',
  version: '1.0.0',
  priority: 1250, // Kong's
  schema: Schema,
  credentialSchema: Credential,
  create(conf, env) {
    const byKey = new Map<string, Consumer>();
    for (const { consumer, credential } of checkedCredentials<{ key: string }>('key-auth', env.consumers)) {
      const k = digestKey(credential.key);
      const other = byKey.get(k);
      if (other !== undefined) throw duplicate('key-auth', 'key', other, consumer);
      byKey.set(k, consumer);
    }
    const challenge = `Key realm=${quoted(conf.realm)}`;
    const absent = whenAbsent('key-auth', conf.anonymous, env.consumers, unauthorized(challenge, 'No API key found in request'));
    const invalid = unauthorized(challenge, 'Invalid authentication credentials');
    const conflicting = unauthorized(challenge, 'Several different API keys in one request');
    const names = conf.key_names;

    /** The one key of the request: undefined for none, null for several different ones. */
    function findKey(ctx: RequestCtx): string | null | undefined {
      let found: string | undefined;
      for (const name of names) {
        const values = conf.key_in_header ? ctx.req.headers.getAll(name) : [];
        if (conf.key_in_query) values.push(...ctx.req.query.getAll(name));
        for (const v of values) {
          if (found === undefined) found = v;
          else if (found !== v) return null;
        }
      }
      return found;
    }

    return {
      access(ctx) {
        if (!conf.run_on_preflight && ctx.req.method === 'OPTIONS') return undefined;
        const key = findKey(ctx);
        if (key === null) return conflicting;
        if (key === undefined) return absent(ctx);
        const consumer = key === '' ? undefined : byKey.get(digestKey(key));
        if (consumer === undefined) return invalid;
        if (conf.hide_credentials) {
          for (const name of names) {
            if (conf.key_in_header) ctx.req.headers.remove(name);
            if (conf.key_in_query) ctx.req.query.remove(name);
          }
        }
        ctx.identity = consumer.identity;
        return undefined;
      },
    };
  },
});
