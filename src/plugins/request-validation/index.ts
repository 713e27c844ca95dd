import { definePlugin, errorExit, s, toBytes, Type } from '../pdk/index.ts';
import type { Exit, RequestCtx } from '../pdk/index.ts';
import type { ValidateResult, ValidateTask } from './task.ts';
import { compileSchema, schemaError, schemaKey, validateJson, violations } from './validator.ts';
import type { BodyOutcome, Violation } from './validator.ts';

const TASK = new URL('./task.ts', import.meta.url);

/** A JSON Schema in the conf (an object or a boolean), or null for none; checked by compiling it. */
const jsonSchema = (description: string) =>
  Type.Refine(
    Type.Union([Type.Null(), Type.Boolean(), Type.Record(Type.String(), Type.Unknown())], { default: null, description }),
    (v) => v === null || schemaError(v) === null,
    (v) => `invalid JSON Schema: ${schemaError(v) ?? ''}`,
  );

/** Methods whose body is validated even when the client sent none (an empty body is then invalid JSON). */
const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/** `type/subtype` of a Content-Type, lower-cased, without parameters. */
const mediaType = (v: string | undefined): string => (v === undefined ? '' : v.split(';', 1)[0]!.trim().toLowerCase());

function contentTypeMatcher(allowed: readonly string[]): (type: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const a of allowed.map((t) => t.toLowerCase())) {
    if (a === '*/*') return () => true;
    if (a.endsWith('/*')) prefixes.push(a.slice(0, -1));
    else exact.add(a);
  }
  return (type) => exact.has(type) || prefixes.some((p) => type.startsWith(p));
}

/**
 * Kong's request-validation with standard JSON Schema (ajv): `body_schema`
 * for JSON bodies, `query_schema` for the query string, both compiled once
 * per conf. The body is read in `access` (ctx.req.body) and what goes
 * upstream is the re-serialised value that was validated. Bodies above
 * `offload_threshold` are parsed and validated in the offload pool, so a
 * large body never stalls the worker's other requests.
 */
export const requestValidation = definePlugin({
  name: 'request-validation',
  version: '1.0.0',
  priority: 999, // Kong's
  schema: s.object({
    body_schema: jsonSchema('JSON Schema the JSON request body must match; null = body not checked'),
    query_schema: jsonSchema('JSON Schema for the query arguments as an object (repeated args are arrays; values are coerced to the schema\'s types); null = not checked'),
    allowed_content_types: Type.Array(Type.String({ minLength: 1 }), {
      default: ['application/json'],
      description: 'Media types a validated body may have (`type/*` and `*/*` allowed); the body is parsed as JSON',
    }),
    verbose_response: Type.Boolean({ default: false, description: 'Put the validation errors in the 400 body (they reveal the schema)' }),
    max_body_size: s.size({ default: '8m', description: 'Largest body read for validation (413 above it)' }),
    offload_threshold: s.size({ default: '64k', description: 'Bodies larger than this are validated in the offload pool, off the worker\'s event loop' }),
  }, { description: 'Validate the request body and query string against JSON Schemas (400)' }),

  create(conf, env) {
    const maxBody = toBytes(conf.max_body_size);
    const threshold = toBytes(conf.offload_threshold);
    const bodySchema = conf.body_schema;
    const validateBody = bodySchema === null ? null : compileSchema(bodySchema, 'body');
    const key = bodySchema === null ? '' : schemaKey(bodySchema);
    const validateQuery = conf.query_schema === null ? null : compileSchema(conf.query_schema, 'query');
    const typeAllowed = contentTypeMatcher(conf.allowed_content_types);
    const invalid = (message: string): Exit => errorExit('GW_ERR_VALIDATION', { message });
    const badType = invalid('specified Content-Type is not allowed');
    const badJson = invalid('request body is not valid JSON');
    const badNumber = invalid('request body has an integer beyond 2^53, which JSON numbers here cannot hold exactly');
    const badBody = invalid("request body doesn't conform to schema");
    const badQuery = invalid("query string doesn't conform to schema");

    // The errors array sits beside code and message: the same body, with the violations added.
    const refuse = (plain: Exit, errors: readonly Violation[]): Exit =>
      conf.verbose_response ? { status: plain.status, body: { ...(plain.body as object), errors } } : plain;

    const check = (ctx: RequestCtx, outcome: BodyOutcome): Exit | undefined => {
      if (!outcome.ok) return outcome.reason === 'json' ? badJson : outcome.reason === 'number' ? badNumber : refuse(badBody, outcome.errors);
      ctx.req.setBody(outcome.json);
      return undefined;
    };

    const checkBody = async (ctx: RequestCtx): Promise<Exit | undefined> => {
      const raw = await ctx.req.body(maxBody);
      if (raw.length <= threshold) return check(ctx, validateJson(validateBody!, raw));
      const task: ValidateTask = { key, schema: bodySchema, body: raw };
      return check(ctx, await env.offload.run<ValidateResult>(TASK, task));
    };

    const hasBody = (ctx: RequestCtx): boolean => {
      const h = ctx.req.headers;
      if (h.has('transfer-encoding')) return true;
      const len = h.get('content-length');
      return (len !== undefined && len !== '0') || BODY_METHODS.has(ctx.req.method);
    };

    return {
      access(ctx) {
        if (validateQuery !== null) {
          const args: Record<string, string | string[]> = {};
          for (const [k, v] of new URLSearchParams(ctx.req.query.toString())) {
            const prev = args[k];
            if (prev === undefined) args[k] = v;
            else if (Array.isArray(prev)) prev.push(v);
            else args[k] = [prev, v];
          }
          if (!validateQuery(args)) return refuse(badQuery, violations(validateQuery.errors));
        }
        if (validateBody === null || !hasBody(ctx)) return undefined;
        if (!typeAllowed(mediaType(ctx.req.headers.get('content-type')))) return badType;
        return checkBody(ctx);
      },
    };
  },
});
