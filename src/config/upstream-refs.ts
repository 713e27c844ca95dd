import type { TSchema } from 'typebox';
import { schemaRefs } from './schema-refs.ts';
import type { SchemaRef } from './schema-refs.ts';
import type { Seg } from './reporter.ts';

/**
 * Plugin options that name an upstream (the pdk's `s.upstream()`, used by
 * traffic-split) carry the schema keyword `upstreamName`. A name is either
 * literal, which `upstreams` must define, or a template such as
 * `tenant-{company_id}` whose braces name identity fields: it is filled in
 * per request and may name an upstream the conf does not define (the plugin
 * then moves on), so only its fields are checked. A plugin that names
 * upstreams chooses where a request is proxied: it goes only on a route
 * with `upstream:`.
 */
export const UPSTREAM_KEYWORD = 'upstreamName';

/** The identity fields a template may name: what auth plugins verify. */
export const TEMPLATE_FIELDS: readonly string[] = ['consumer', 'user_id', 'company_id'];

export const isTemplate = (name: string): boolean => name.includes('{') || name.includes('}');

/** Why an upstream name or template cannot be used, or null. */
export function upstreamNameFault(name: string): string | null {
  if (!isTemplate(name)) return null;
  const rest = name.replace(/\{([^{}]*)\}/g, (_, field: string) => (TEMPLATE_FIELDS.includes(field) ? '' : `\0${field}\0`));
  const unknown = /\0([^\0]*)\0/.exec(rest);
  if (unknown !== null) return `template field {${unknown[1]!}} is not ${TEMPLATE_FIELDS.join(', ').replace(/, ([^,]*)$/, ' or $1')}`;
  if (rest.includes('{') || rest.includes('}')) return `unbalanced braces in upstream template ${JSON.stringify(name)}`;
  return null;
}

/** Every upstream name or template in `value` (a plugin conf checked against `schema`), with its path. */
export const upstreamRefs = (schema: TSchema, value: unknown, path: Seg[]): SchemaRef[] =>
  schemaRefs(UPSTREAM_KEYWORD, schema, value, path);
