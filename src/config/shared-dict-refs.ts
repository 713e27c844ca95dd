import type { TSchema } from 'typebox';
import { schemaRefs } from './schema-refs.ts';
import type { RefUse, SchemaRef } from './schema-refs.ts';
import type { Seg } from './reporter.ts';

/**
 * Plugin options that name a shared dict carry the schema keyword `sharedDict`
 * (the pdk's `s.dict()`): `shared_dicts` must declare the zone (schema-refs.ts).
 */
export const SHARED_DICT_KEYWORD = 'sharedDict';

export type SharedDictUse = RefUse;
export type SharedDictRef = SchemaRef;

/** Every shared dict that `value` (checked against `schema`, defaults filled in) makes its plugin open, with its path. */
export const sharedDictRefs = (schema: TSchema, value: unknown, path: Seg[]): SharedDictRef[] =>
  schemaRefs(SHARED_DICT_KEYWORD, schema, value, path);
