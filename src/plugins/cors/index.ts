import { definePlugin, s, Type } from '../pdk/index.ts';
import type { Exit, MutableHeaders, ResponseCtx } from '../pdk/index.ts';

const ALL_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];

const validRegex = (v: string): boolean => {
  if (!v.startsWith('~')) return true;
  try {
    new RegExp(v.slice(1).trim());
    return true;
  } catch {
    return false;
  }
};

const Origin = Type.Refine(
  Type.String({ minLength: 1, description: 'An origin (https://app.example.com), * for any, or ~ regex (anchored at both ends)' }),
  validRegex,
  (v) => `invalid origin regex ${JSON.stringify(v)}`,
);

const Schema = s.object({
  origins: Type.Array(Origin, { default: [], description: 'Allowed origins; empty = any (*)' }),
  methods: Type.Array(Type.String({ minLength: 1 }), { default: ALL_METHODS, description: 'Access-Control-Allow-Methods' }),
  headers: Type.Union([Type.Array(s.headerName({ description: 'A header name' })), Type.Null()], {
    default: null, description: 'Access-Control-Allow-Headers; null = echo Access-Control-Request-Headers',
  }),
  exposed_headers: Type.Array(s.headerName({ description: 'A header name' }), { default: [], description: 'Access-Control-Expose-Headers' }),
  credentials: Type.Boolean({ default: false, description: 'Access-Control-Allow-Credentials: true (the origin is then echoed, never *)' }),
  max_age: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { default: null, description: 'Seconds a preflight may be cached' }),
  preflight_continue: Type.Boolean({ default: false, description: 'Send preflight requests upstream instead of answering them' }),
}, { description: 'Cross-origin resource sharing' });

/** Adds Origin to Vary without dropping what the upstream varies on. */
function varyOnOrigin(h: MutableHeaders): void {
  const vary = h.get('vary');
  if (vary === undefined) h.set('Vary', 'Origin');
  else if (!/(^|,)\s*(origin|\*)\s*(,|$)/i.test(vary)) h.set('Vary', `${vary}, Origin`);
}

/**
 * Kong's cors. Origins are compared whole: an exact entry equals the Origin
 * (scheme, host and port; case-insensitive), a `~` entry is a regex anchored
 * at both ends, so `https://example.com.evil.net` never passes for
 * `https://example.com` (Kong#3832). With credentials the origin is echoed,
 * never `*` (the Fetch spec forbids the pair).
 */
export const cors = definePlugin({
  name: 'cors',
  version: '1.0.0',
  priority: 2000, // Kong's: before auth, so a preflight is answered without credentials
  schema: Schema,
  create(conf) {
    const any = conf.origins.length === 0 || conf.origins.includes('*');
    const exact = new Set(conf.origins.filter((o) => !o.startsWith('~') && o !== '*').map((o) => o.toLowerCase()));
    const patterns = conf.origins.filter((o) => o.startsWith('~')).map((o) => new RegExp(`^(?:${o.slice(1).trim()})$`, 'i'));
    const methods = conf.methods.join(', ');
    const allowHeaders = conf.headers === null ? null : conf.headers.join(', ');
    const exposed = conf.exposed_headers.length === 0 ? null : conf.exposed_headers.join(', ');
    const maxAge = conf.max_age === null ? null : String(conf.max_age);

    /** The Access-Control-Allow-Origin value for this Origin, or null for none. */
    const allowedOrigin = (origin: string | undefined): string | null => {
      if (any) return conf.credentials ? (origin ?? null) : '*';
      if (origin === undefined) return null;
      const lower = origin.toLowerCase();
      if (exact.has(lower)) return origin;
      for (const re of patterns) if (re.test(origin)) return origin;
      return null;
    };
    // With a fixed `*` the answer does not depend on Origin; otherwise caches must key on it.
    const varies = !any || conf.credentials;

    const applyOrigin = (origin: string | undefined, h: MutableHeaders): boolean => {
      if (varies) varyOnOrigin(h);
      const allowed = allowedOrigin(origin);
      if (allowed === null) return false;
      h.set('Access-Control-Allow-Origin', allowed);
      if (conf.credentials) h.set('Access-Control-Allow-Credentials', 'true');
      return true;
    };

    return {
      access: conf.preflight_continue ? undefined : (ctx): Exit | undefined => {
        if (ctx.req.method !== 'OPTIONS' || !ctx.req.headers.has('access-control-request-method')) return undefined;
        const headers: Record<string, string> = { 'Access-Control-Allow-Methods': methods };
        const requested = allowHeaders ?? ctx.req.headers.get('access-control-request-headers');
        if (requested !== undefined && requested !== '') headers['Access-Control-Allow-Headers'] = requested;
        if (maxAge !== null) headers['Access-Control-Max-Age'] = maxAge;
        // Origin, credentials and Vary are added by headerFilter below, as on every response.
        return { status: 200, headers };
      },
      headerFilter(ctx: ResponseCtx) {
        const h = ctx.res.headers;
        if (applyOrigin(ctx.req.headers.get('origin'), h) && exposed !== null && ctx.req.method !== 'OPTIONS') {
          h.set('Access-Control-Expose-Headers', exposed);
        }
      },
    };
  },
});
