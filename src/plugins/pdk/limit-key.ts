import { errorExit } from './errors.ts';
import { requestValue } from './request-value.ts';
import { Type } from './schema.ts';
import type { Exit, RequestCtx } from './types.ts';

/**
 * The `by` option of rate-limiting, limit-req and limit-conn (and any custom
 * limiter): which
 * part of the request a counter belongs to. Compiled once per conf into one
 * function; per request it only reads fields and joins them.
 */

const PART = '^(consumer|user_id|company_id|ip|route|header:[!#$%&\'*+.^_`|~0-9A-Za-z-]+|[A-Za-z_][A-Za-z0-9_.-]*)$';

const part = Type.String({
  pattern: PART,
  description: 'consumer | user_id | company_id | ip | route | header:NAME | the name of any identity attribute',
});

export const bySchema = (dflt: string | string[]) =>
  Type.Union([part, Type.Array(part, { minItems: 1, maxItems: 8 })], {
    default: dflt,
    description: 'What a counter is kept per: one key part, or a list of them combined into one key ([company_id, user_id])',
  });

/** The key for a request, or null when a part is missing (no identity, no such header). */
export type KeyFn = (ctx: RequestCtx) => string | null;

/**
 * Parts are joined with U+001F: header values cannot hold control characters,
 * so `[a, "b\x1fc"]` and `["a\x1fb", c]` can never make the same key from headers.
 */
const SEP = '\x1f';

export function compileKey(by: string | readonly string[]): KeyFn {
  const parts = (typeof by === 'string' ? [by] : by).map(requestValue);
  if (parts.length === 1) {
    const only = parts[0]!;
    return (ctx) => {
      const v = only(ctx);
      return v === undefined || v === null || v === '' ? null : v;
    };
  }
  return (ctx) => {
    let key = '';
    for (let i = 0; i < parts.length; i++) {
      const v = parts[i]!(ctx);
      if (v === undefined || v === null || v === '') return null;
      key = i === 0 ? v : key + SEP + v;
    }
    return key;
  };
}

export type OnMissingKey = 'reject' | 'ip' | 'skip';

export const onMissingKeySchema = (description: string) =>
  Type.Union([Type.Literal('reject'), Type.Literal('ip'), Type.Literal('skip')], { default: 'reject', description });

/** The answer to a request that has no key when `on_missing_key` is reject. */
export const NO_LIMIT_KEY: Exit = errorExit('GW_ERR_NO_LIMIT_KEY');

/**
 * What a limiter counts a keyless request by: the client address under a
 * marker no compiled key can produce (`ip`), nothing (null: `skip`), or the
 * refusal (`reject`).
 */
export function missingKey(on: OnMissingKey, client: string): string | null | Exit {
  if (on === 'ip') return `${SEP}ip${SEP}${client}`;
  return on === 'skip' ? null : NO_LIMIT_KEY;
}
