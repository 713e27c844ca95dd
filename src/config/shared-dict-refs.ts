import type { TSchema } from 'typebox';
import type { Seg } from './reporter.ts';

/**
 * Plugin options that name a shared dict carry the schema keyword `sharedDict`
 * (the pdk's `s.dict()`), so the master can refuse, at `-t` time and with a
 * position, a conf whose plugin names a zone that `shared_dicts` does not
 * declare — instead of a worker failing to start. The keyword is `true` for a
 * dict the plugin always opens, or a predicate on the option's siblings for one
 * it opens only when another option is on (forward-auth's cache): a defaulted
 * name the plugin never opens must not fail the conf.
 */
export const SHARED_DICT_KEYWORD = 'sharedDict';

export type SharedDictUse = true | ((siblings: Readonly<Record<string, unknown>>) => boolean);

export interface SharedDictRef {
  readonly path: Seg[];
  readonly name: string;
}

type SchemaNode = TSchema & {
  readonly [SHARED_DICT_KEYWORD]?: SharedDictUse;
  readonly properties?: Record<string, SchemaNode>;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
};

/** Every shared dict that `value` (checked against `schema`, defaults filled in) makes its plugin open, with its path. */
export function sharedDictRefs(schema: TSchema, value: unknown, path: Seg[]): SharedDictRef[] {
  const out: SharedDictRef[] = [];
  walk(schema as SchemaNode, value, {}, path, out);
  return out;
}

function walk(schema: SchemaNode, value: unknown, siblings: Readonly<Record<string, unknown>>, path: Seg[], out: SharedDictRef[]): void {
  const use = schema[SHARED_DICT_KEYWORD];
  if (use !== undefined && typeof value === 'string') {
    if (use === true || use(siblings)) out.push({ path, name: value });
    return;
  }
  if (schema.properties !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    for (const [key, sub] of Object.entries(schema.properties)) walk(sub, o[key], o, [...path, key], out);
  }
  if (schema.items !== undefined && Array.isArray(value)) value.forEach((v, i) => walk(schema.items!, v, {}, [...path, i], out));
  if (schema.anyOf !== undefined) for (const sub of schema.anyOf) walk(sub, value, siblings, path, out);
}
