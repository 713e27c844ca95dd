import type { TSchema } from 'typebox';
import type { Seg } from './reporter.ts';

/**
 * Plugin options that name something the rest of the conf defines (a shared
 * dict, an upstream) carry a schema keyword, so the master can refuse, at
 * `-t` time and with a position, a plugin conf naming what is not there,
 * instead of a worker failing later. The keyword is `true` for a name always
 * used, or a predicate on the option's siblings for one used only when
 * another option is on (forward-auth's cache): a defaulted name that is never
 * used must not fail the conf.
 */
export type RefUse = true | ((siblings: Readonly<Record<string, unknown>>) => boolean);

export interface SchemaRef {
  readonly path: Seg[];
  readonly name: string;
}

type SchemaNode = TSchema & {
  readonly properties?: Record<string, SchemaNode>;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
} & Readonly<Record<string, unknown>>;

/**
 * Every string in `value` (checked against `schema`, defaults filled in) whose
 * schema carries `keyword`, with its path. Reads `value` loosely, so it also
 * works on a value with faults elsewhere.
 */
export function schemaRefs(keyword: string, schema: TSchema, value: unknown, path: Seg[]): SchemaRef[] {
  const out: SchemaRef[] = [];
  walk(keyword, schema as SchemaNode, value, {}, path, out);
  return out;
}

function walk(keyword: string, schema: SchemaNode, value: unknown, siblings: Readonly<Record<string, unknown>>, path: Seg[], out: SchemaRef[]): void {
  const use = schema[keyword] as RefUse | undefined;
  if (use !== undefined && typeof value === 'string') {
    if (use === true || use(siblings)) out.push({ path, name: value });
    return;
  }
  if (schema.properties !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    for (const [key, sub] of Object.entries(schema.properties)) walk(keyword, sub, o[key], o, [...path, key], out);
  }
  if (schema.items !== undefined && Array.isArray(value)) value.forEach((v, i) => walk(keyword, schema.items!, v, {}, [...path, i], out));
  if (schema.anyOf !== undefined) for (const sub of schema.anyOf) walk(keyword, sub, value, siblings, path, out);
}
