import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';

/**
 * JSON Schema compiling and checking, shared by the plugin (small bodies, on
 * the reactor) and its pool task (large bodies, in an offload thread), so
 * both give the same answer for the same body.
 */

/** One validation fault as the client sees it with verbose_response. */
export interface Violation {
  /** JSON Pointer into the body or query (`/items/0/id`; empty for the root). */
  readonly path: string;
  readonly message: string;
}

export type BodyOutcome =
  | { readonly ok: true; /** The validated value, re-serialised: what goes upstream. */ readonly json: Uint8Array }
  | { readonly ok: false; readonly reason: 'json' | 'number' | 'schema'; readonly errors: readonly Violation[] };

/**
 * Bodies: defaults from the schema are filled in (and so reach the upstream).
 * Query args: every value is a string, so types are coerced (`?limit=10`
 * passes `type: integer`). allErrors stays off: stopping at the first fault
 * bounds the work an invalid body can cause.
 */
export function compileSchema(schema: unknown, kind: 'body' | 'query'): ValidateFunction {
  const ajv = new Ajv({ useDefaults: true, coerceTypes: kind === 'query' ? 'array' : false, allErrors: false });
  return ajv.compile(schema as object | boolean);
}

/** Why a schema cannot be compiled, or null when it can: the conf check's message. */
export function schemaError(schema: unknown): string | null {
  try {
    compileSchema(schema, 'body');
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Stable key of a schema, to cache its compiled form where functions cannot be sent (pool threads). */
export const schemaKey = (schema: unknown): string => createHash('sha256').update(JSON.stringify(schema)).digest('base64url');

export const violations = (errors: readonly ErrorObject[] | null | undefined): Violation[] =>
  (errors ?? []).map((e) => ({ path: e.instancePath, message: e.message ?? 'invalid' }));

const encoder = new TextEncoder();

/** Digits enough that an integer may be past 2^53: only then are numbers checked one by one (a reviver costs). */
const LONG_DIGITS = /\d{16}/;

class InexactInteger extends Error {}

/** JSON.parse's reviver with the number's source text (Node 21+): an integer a double cannot hold exactly. */
function exactIntegers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value) && /^-?\d+$/.test(context?.source ?? '')) {
    throw new InexactInteger();
  }
  return value;
}

/**
 * Parses and validates a JSON body. On success the upstream gets
 * JSON.stringify of the parsed value, never the client's bytes: with
 * duplicate keys (`{"p":"bad","p":"good"}`) a parser other than ours could
 * read a value we never validated (APISIX CVE-2022-25757). An integer past
 * 2^53 would go upstream changed (9007199254740993 as ...992): it is refused
 * instead, never altered.
 */
export function validateJson(validate: ValidateFunction, body: Uint8Array): BodyOutcome {
  let value: unknown;
  try {
    const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    value = LONG_DIGITS.test(text) ? JSON.parse(text, exactIntegers as (key: string, value: unknown) => unknown) : JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: err instanceof InexactInteger ? 'number' : 'json', errors: [] };
  }
  if (!validate(value)) return { ok: false, reason: 'schema', errors: violations(validate.errors) };
  return { ok: true, json: encoder.encode(JSON.stringify(value)) };
}
