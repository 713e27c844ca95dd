/**
 * Schema types whose values a parser reads (durations, sizes, addresses...). The
 * parser's own reason becomes the conf issue, so a bad value gets one precise sentence
 * at its position, the same in the core conf and in plugin confs (the pdk uses these).
 */
import { Type } from 'typebox';
import type { Static, TSchema } from 'typebox';
import { parseDuration, parseSize } from './units.ts';

/** `schema`, further checked by `why`: null when the value is fine, else the reason. */
export const checked = <T extends TSchema>(schema: T, why: (v: Static<T>) => string | null) =>
  Type.Refine(schema, (v) => why(v as Static<T>) === null, (v) => why(v as Static<T>) ?? '');

/** The reason `parse` refuses `v`, or null. */
function reasonOf<V>(parse: (v: V) => unknown, v: V): string | null {
  try {
    parse(v);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

interface Opts {
  readonly description: string;
  readonly default?: string | number;
}

/** `500ms`, `10s`, `5m`, `1h`, `1m30s` (or 0); `parseDuration` makes it ms. */
export const duration = (opts: Opts) =>
  checked(
    Type.Union([Type.String(), Type.Literal(0)], {
      ...opts,
      description: `${opts.description} (duration: 500ms, 10s, 5m, 1h, 1d, 1m30s)`,
      expected: 'a duration such as 500ms, 10s, 5m or 1h',
    }),
    (v) => reasonOf(parseDuration, v),
  );

/** `512k`, `10m`, `1g` or an integer of bytes; `parseSize` makes it bytes. */
export const size = (opts: Opts) =>
  checked(
    Type.Union([Type.String(), Type.Integer({ minimum: 0 })], {
      ...opts,
      description: `${opts.description} (size: 512k, 10m, 1g, or bytes)`,
      expected: 'a size such as 512k, 10m, 1g or an integer of bytes',
    }),
    (v) => reasonOf(parseSize, v),
  );

interface Bounds { readonly what: string; readonly min?: string | undefined; readonly max?: string | undefined }

/** `schema`'s values within bounds, as `parse` reads them: `what` names the value in the message, as "shared dict is too small: at least 8k". */
function bounded<T extends TSchema>(schema: T, parse: (v: string | number) => number, { what, min, max }: Bounds) {
  return checked(schema, (v) => {
    const value = v as string | number;
    if (reasonOf(parse, value) !== null) return null; // not a value at all: said once, by the schema
    const n = parse(value);
    if (min !== undefined && n < parse(min)) return `${what} is too small: at least ${min}`;
    if (max !== undefined && n > parse(max)) return `${what} is too large: at most ${max}`;
    return null;
  });
}

export const boundedSize = ({ what, min, max, ...opts }: Opts & Bounds) => bounded(size(opts), parseSize, { what, min, max });
export const boundedDuration = ({ what, min, max, ...opts }: Opts & Bounds) => bounded(duration(opts), parseDuration, { what, min, max });
