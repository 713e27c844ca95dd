import { SHARED_DICT_KEYWORD } from '../../config/shared-dict-refs.ts';
import { isIP } from 'node:net';
import { Type } from 'typebox';
import type { TLiteral, TProperties } from 'typebox';
import { parseDuration, parseSize } from '../../config/units.ts';
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

function isIpOrCidr(v: string): boolean {
  const slash = v.indexOf('/');
  if (slash === -1) return isIP(v) !== 0;
  const family = isIP(v.slice(0, slash));
  const bits = v.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/** An IPv4 or IPv6 address, or a CIDR such as `10.0.0.0/8` or `2001:db8::/32`. */
const ipOrCidr = (opts: Opts) =>
  Type.Refine(Type.String(opts), isIpOrCidr, (v) => `invalid IP or CIDR ${JSON.stringify(v)}`);

const validDuration = (v: string): boolean => {
  try {
    parseDuration(v);
    return true;
  } catch {
    return false;
  }
};

/** A duration as the conf writes them (`500ms`, `10s`, `1m30s`); turn it into ms with {@link toMs} in `create`. */
const duration = (opts: Opts) =>
  Type.Refine(Type.String(opts), validDuration, (v) => `invalid duration ${JSON.stringify(v)}: expected e.g. 500ms, 10s, 5m, 1h`);

const validSize = (v: string | number): boolean => {
  try {
    parseSize(v);
    return true;
  } catch {
    return false;
  }
};

/** A size (`512k`, `10m`, `1g`, or an integer of bytes); turn it into bytes with {@link toBytes} in `create`. */
const size = (opts: Opts) =>
  Type.Refine(Type.Union([Type.String(), Type.Integer({ minimum: 0 })], opts), validSize,
    (v) => `invalid size ${JSON.stringify(v)}: expected e.g. 512k, 10m, 1g or bytes`);

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
 * at its position, not a worker that fails to start.
 */
const dict = (opts: Opts) => Type.String({ minLength: 1, ...opts, [SHARED_DICT_KEYWORD]: true });

export const s = { object, oneOf, ipOrCidr, duration, size, headerName, headerPair, queryPair, dict };
export { Type };
export type { Static, TSchema } from 'typebox';

/** ms from a value checked by `s.duration`. */
export const toMs = (v: string): number => parseDuration(v);
/** bytes from a value checked by `s.size`. */
export const toBytes = (v: string | number): number => parseSize(v);
