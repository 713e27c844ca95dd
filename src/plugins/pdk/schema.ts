import { Type } from 'typebox';
import type { TLiteral, TProperties } from 'typebox';
import { checkCidr } from '../../config/addresses.ts';
// Durations and sizes are checked, and their faults worded, as the core conf's own:
// turn them into ms and bytes with toMs / toBytes in `create`.
import { duration, size } from '../../config/checked.ts';
import { SHARED_DICT_KEYWORD } from '../../config/shared-dict-refs.ts';
import type { SharedDictUse } from '../../config/shared-dict-refs.ts';
import { parseDuration, parseSize } from '../../config/units.ts';
import { UPSTREAM_KEYWORD, upstreamNameFault } from '../../config/upstream-refs.ts';
import { isHeaderName } from './headers.ts';

/**
 * Schema pieces plugins reuse. Plain TypeBox underneath (`Type` is re-exported
 * for everything else), so a plugin schema is JSON Schema with static types.
 * Conventions: every field has a `description`; a field with a `default` is
 * left required, because defaults are filled in before the check and `create`
 * then gets a conf whose fields are all present (no `?` in its type).
 */

type Opts = { readonly description: string; readonly default?: unknown };

/** A closed object (unknown keys are errors, as everywhere in the conf) that defaults to `{}`. */
const object = <P extends TProperties>(properties: P, opts: { readonly description?: string } = {}) =>
  Type.Object(properties, { additionalProperties: false, default: {}, ...opts });

/** One of a few fixed strings. */
const oneOf = <const V extends readonly [string, ...string[]]>(values: V, opts: Opts) =>
  Type.Union(values.map((v) => Type.Literal(v)) as [TLiteral<V[number]>, ...TLiteral<V[number]>[]], {
    ...opts,
    expected: `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
  });

/** An IPv4 or IPv6 address, or a CIDR such as `10.0.0.0/8` or `2001:db8::/32`. */
const ipOrCidr = (opts: Opts) =>
  Type.Refine(Type.String(opts), (v) => checkCidr(v) === null, (v) => `invalid IP or CIDR ${JSON.stringify(v)}`);

/** An HTTP field name (RFC 9110 token). */
const headerName = (opts: Opts) =>
  Type.Refine(Type.String({ minLength: 1, ...opts }), isHeaderName, (v) => `invalid header name ${JSON.stringify(v)}`);

/** `name:value`, Kong's notation for transformer entries; the value may contain further colons. */
export function splitPair(pair: string): readonly [string, string] {
  const colon = pair.indexOf(':');
  return colon === -1 ? [pair, ''] : [pair.slice(0, colon).trim(), pair.slice(colon + 1).trim()];
}

/** A header as `Name:value` (transformers). */
const headerPair = (opts: Opts) =>
  Type.Refine(Type.String(opts), (v) => v.includes(':') && isHeaderName(splitPair(v)[0]),
    (v) => `invalid header entry ${JSON.stringify(v)}: expected Name:value`);

/** A query argument as `name:value` (transformers). */
const queryPair = (opts: Opts) =>
  Type.Refine(Type.String(opts), (v) => v.includes(':') && splitPair(v)[0] !== '',
    (v) => `invalid query entry ${JSON.stringify(v)}: expected name:value`);

/**
 * The name of a zone in `shared_dicts`. Marked so the master checks it at
 * `-t`, start and reload: a plugin naming an undeclared zone is a conf error
 * at its position, not a worker that fails to start. `usedWhen`: the plugin
 * opens the dict only when this holds of the object the option is in (its
 * defaults filled in), e.g. a cache that is on; omitted, it always opens it.
 */
const dict = (opts: Opts & { readonly usedWhen?: (siblings: Readonly<Record<string, unknown>>) => boolean }) => {
  const { usedWhen, ...rest } = opts;
  const use: SharedDictUse = usedWhen ?? true;
  return Type.String({ minLength: 1, ...rest, [SHARED_DICT_KEYWORD]: use });
};

/**
 * The name of an upstream, or a template whose braces name identity fields
 * (`tenant-{company_id}`). The master checks, at `-t`, that a literal name is
 * defined in `upstreams`, that a template names only consumer, user_id or
 * company_id, and that the plugin sits on a route with `upstream:`. Choose it
 * per request with `ctx.useUpstream`.
 */
const upstream = (opts: Opts) =>
  Type.Refine(Type.String({ minLength: 1, ...opts, [UPSTREAM_KEYWORD]: true }), (v) => upstreamNameFault(v) === null, (v) => upstreamNameFault(v) ?? '');

export const s = { object, oneOf, ipOrCidr, duration, size, headerName, headerPair, queryPair, dict, upstream };
export { Type };
export type { Static, TSchema } from 'typebox';

/** ms from a value checked by `s.duration`. */
export const toMs = (v: string | number): number => parseDuration(v);
/** bytes from a value checked by `s.size`. */
export const toBytes = (v: string | number): number => parseSize(v);
