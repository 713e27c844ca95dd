import { s, Type } from '../pdk/index.ts';
import type { Static } from '../pdk/index.ts';

const METHOD = Type.String({ pattern: '^[A-Z]+$', description: 'An HTTP method, upper case' });
const MEDIA_TYPE = Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+/[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', description: 'A media type such as application/json (no parameters)' });

/** The conf as issue 14 writes it; every key is user-facing. */
export const schema = s.object({
  dict: s.dict({ default: 'sluice_cache', description: 'Shared dict holding the entries (shared by all workers)' }),
  methods: Type.Array(METHOD, { default: ['GET', 'HEAD'], minItems: 1, description: 'Methods served from the cache; HEAD is served from a GET entry' }),
  statuses: Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { default: [200, 301, 404], minItems: 1, description: 'Response statuses that are stored' }),
  content_types: Type.Array(MEDIA_TYPE, { default: [], description: 'Media types that are stored; empty = any' }),
  ttl: s.duration({ default: '5m', description: 'Freshness when the response gives none (or always, with cache_control: false)' }),
  cache_control: Type.Boolean({ default: true, description: 'Honour RFC 9111: no-store, private, no-cache, max-age, s-maxage, Expires; a request\'s Cache-Control: no-cache/no-store bypasses the cache' }),
  vary_headers: Type.Array(s.headerName({ description: 'A request header' }), { default: [], description: 'Request headers that are part of the key (the response\'s own Vary is added)' }),
  vary_query: Type.Union([Type.Array(Type.String({ minLength: 1, description: 'A query argument name' })), Type.Null()], {
    default: null, description: 'null: the whole query, its arguments sorted, is part of the key; a list: only these arguments',
  }),
  consumer_isolation: Type.Boolean({ default: true, description: 'The verified consumer is part of the key' }),
  max_body_size: s.size({ default: '1m', description: 'Larger responses stream through and are not stored' }),
  stale_while_revalidate: s.duration({ default: '0s', description: 'How long past its freshness an entry is still the answer (STALE, UPDATING) while one request refreshes it in the background; needs lock_timeout > 0' }),
  stale_if_error: s.duration({ default: '0s', description: 'How long past its freshness an entry answers an upstream failure (502/503/504, connect errors, timeouts) as STALE' }),
  lock_timeout: s.duration({
    default: '5s',
    description: 'Single flight: how long a miss waits for the worker already fetching its key (then it goes upstream itself, unstored); also the lock\'s life when its holder dies; 0 = off',
  }),
  hide_cache_headers: Type.Boolean({ default: false, description: 'Drop X-Cache-Status and X-Cache-Key' }),
}, { description: 'A response cache in a shared dict, shared by every worker' });

export type CacheConf = Static<typeof schema>;
