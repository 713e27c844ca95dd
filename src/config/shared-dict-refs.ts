import type { TSchema } from 'typebox';
import type { Seg } from './reporter.ts';

/**
 * Plugin options that name a shared dict carry the schema keyword
 * `sharedDict: true` (the pdk's `s.dict()`), so the master can refuse, at
 * `-t` time and with a position, a conf whose plugin names a zone that
 * `shared_dicts` does not declare — instead of a worker failing to start.
 */
export const SHARED_DICT_KEYWORD = 'sharedDict';

export interface SharedDictRef {
  readonly path: Seg[];
  readonly name: string;
}

type SchemaNode = TSchema & {
  readonly [SHARED_DICT_KEYWORD]?: boolean;
  readonly properties?: Record<string, SchemaNode>;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
};

/** Every value in `value` that `schema` marks as a shared dict name, with its path. */
export function sharedDictRefs(schema: TSchema, value: unknown, path: Seg[]): SharedDictRef[] {
  const out: SharedDictRef[] = [];
  walk(schema as SchemaNode, value, path, out);
  return out;
}

function walk(schema: SchemaNode, value: unknown, path: Seg[], out: SharedDictRef[]): void {
  if (schema[SHARED_DICT_KEYWORD] === true && typeof value === 'string') {
    out.push({ path, name: value });
    return;
  }
  if (schema.properties !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [key, sub] of Object.entries(schema.properties)) walk(sub, (value as Record<string, unknown>)[key], [...path, key], out);
  }
  if (schema.items !== undefined && Array.isArray(value)) value.forEach((v, i) => walk(schema.items!, v, [...path, i], out));
  if (schema.anyOf !== undefined) for (const sub of schema.anyOf) walk(sub, value, path, out);
}
