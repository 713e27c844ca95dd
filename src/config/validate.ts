/**
 * The one schema check of the conf: the core conf, each plugin conf, each consumer
 * credential (master), and plugin confs again in workers and tests. Defaults are
 * filled in first, so a value is checked as it will be used, then every fault is
 * listed. TypeBox's Value.Errors lists every failed keyword, including each failed
 * branch of a union; an operator wants one sentence per fault, so this turns that
 * list into faults (unknown key at the key, missing key at the parent map, one line
 * per bad union value) with the path where each one is.
 */
import { Settings } from 'typebox/system';
import { Value } from 'typebox/value';
import type { Static, TSchema } from 'typebox';
import { GatewayError } from '../plugins/pdk/errors.ts';
import { formatPath } from './reporter.ts';
import type { Seg } from './reporter.ts';

/** One fault of a value against its schema. */
export interface Fault {
  /** Where in the value: `['allow', 1]`; [] for the value itself. */
  readonly path: readonly Seg[];
  readonly message: string;
  /** 'key': the fault is the key itself (an unknown key), so it is shown at the key. */
  readonly at: 'value' | 'key';
}

export type Validated<T> =
  | { readonly ok: true; readonly value: T; readonly faults: readonly [] }
  | { readonly ok: false; readonly value: unknown; readonly faults: readonly Fault[] };

interface SchemaError {
  readonly keyword: string;
  readonly schemaPath: string;
  readonly instancePath: string;
  readonly params: Record<string, unknown>;
  readonly message: string;
}

interface Explained {
  readonly instancePath: string;
  readonly key?: string; // set: the issue is about this key of the map at instancePath
  readonly at: 'value' | 'key';
  readonly message: string;
}

/**
 * `value` with the schema's defaults filled in (on a copy: the caller's data is not
 * changed) and every fault of it. The value is returned even when it has faults, so a
 * caller can go on checking what it refers to and report everything in one pass.
 */
export function validate<S extends TSchema>(schema: S, value: unknown): Validated<Static<S>> {
  const filled: unknown = Value.Default(schema, structuredClone(value));
  const errors = allErrors(schema, filled);
  if (errors.length === 0) return { ok: true, value: filled as Static<S>, faults: [] };
  const faults = explain(errors, schema, filled).map((e): Fault => {
    const path = segsOf(filled, e.instancePath);
    if (e.key !== undefined) path.push(e.key);
    return { path, message: e.message, at: e.at };
  });
  return { ok: false, value: filled, faults };
}

// TypeBox stops after `maxErrors` (8) as a guard against hostile input; a conf is the
// operator's own file and `sluice -t` must list every fault, so lift it for this call only
// (synchronous, so nothing else in the thread sees the change).
const CONF_MAX_ERRORS = 10_000;

function allErrors(schema: TSchema, value: unknown): SchemaError[] {
  const before = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: CONF_MAX_ERRORS });
  try {
    return [...Value.Errors(schema, value)] as unknown as SchemaError[];
  } finally {
    Settings.Set({ maxErrors: before });
  }
}

function explain(errors: readonly SchemaError[], root: TSchema, value: unknown): Explained[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const inUnion = (e: SchemaError) => unions.some((u) => u !== e && within(e, u.instancePath, `${u.schemaPath}/anyOf/`));
  const out: Explained[] = [];
  for (const e of errors) {
    if (inUnion(e)) continue;
    const p = e.instancePath;
    switch (e.keyword) {
      case 'anyOf':
        out.push(...explainUnion(e, errors, root, value));
        break;
      case 'boolean':
        // `additionalProperties: false` fails once per extra key and once more for the map; report the map's list.
        if (!e.schemaPath.endsWith('/additionalProperties')) out.push({ instancePath: p, at: 'value', message: e.message });
        break;
      case 'additionalProperties':
        for (const k of (e.params['additionalProperties'] as string[] | undefined) ?? []) {
          out.push({ instancePath: p, key: k, at: 'key', message: `unknown key "${k}"` });
        }
        break;
      case 'required': {
        // A key with a default is never missing; it is "missing" only where Default could not
        // pick a union branch for a value with faults, which are reported on their own.
        const props = schemaAt(root, e.schemaPath)?.['properties'] as Record<string, { default?: unknown }> | undefined;
        for (const k of (e.params['requiredProperties'] as string[] | undefined) ?? []) {
          if (props?.[k]?.default === undefined) out.push({ instancePath: p, at: 'value', message: `missing required key "${k}"` });
        }
        break;
      }
      default:
        out.push({ instancePath: p, at: 'value', message: messageOf(e) });
    }
  }
  return out;
}

/** A union failed: if the value's kind matches exactly one branch, that branch's faults say more; otherwise name the choices. */
function explainUnion(u: SchemaError, errors: readonly SchemaError[], root: TSchema, value: unknown): Explained[] {
  const schema = schemaAt(root, u.schemaPath);
  const branches = (schema?.['anyOf'] as Record<string, unknown>[] | undefined) ?? [];
  const v = valueAt(value, u.instancePath);
  const fitting = branches.map((b, i) => [b, i] as const).filter(([b]) => fits(b, v));
  if (fitting.length === 1) {
    const [, i] = fitting[0] as readonly [Record<string, unknown>, number];
    const prefix = `${u.schemaPath}/anyOf/${i}`;
    const inside = errors.filter((e) => within(e, u.instancePath, prefix) && (e.schemaPath === prefix || e.schemaPath[prefix.length] === '/'));
    return explain(inside, root, value);
  }
  const expected = schema?.['expected'];
  if (typeof expected === 'string') return [{ instancePath: u.instancePath, at: 'value', message: `must be ${expected}` }];
  const alts = branches.flatMap(describe);
  const message = branches.every((b) => 'const' in b || 'enum' in b) ? `must be one of ${alts.join(', ')}` : `must be ${alts.join(' or ')}`;
  return [{ instancePath: u.instancePath, at: 'value', message }];
}

/** Whether `e` is about the value at `instancePath` (or inside it) and comes from the schema under `schemaPrefix`. */
function within(e: SchemaError, instancePath: string, schemaPrefix: string): boolean {
  const sameValue = e.instancePath === instancePath || e.instancePath.startsWith(`${instancePath}/`);
  return sameValue && e.schemaPath.startsWith(schemaPrefix);
}

const KIND: Readonly<Record<string, string>> = {
  object: 'a map',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
};

function describe(b: Record<string, unknown>): string[] {
  if ('const' in b) return [JSON.stringify(b['const'])];
  if (Array.isArray(b['enum'])) return b['enum'].map((x) => JSON.stringify(x));
  if (Array.isArray(b['anyOf'])) return (b['anyOf'] as Record<string, unknown>[]).flatMap(describe);
  const t = b['type'];
  return typeof t === 'string' ? [KIND[t] ?? t] : ['a valid value'];
}

/** Whether a value is of the kind a union branch is about (consts and enums never "fit": naming the choices reads better). */
function fits(b: Record<string, unknown>, v: unknown): boolean {
  if ('const' in b || 'enum' in b) return false;
  if (Array.isArray(b['anyOf'])) return (b['anyOf'] as Record<string, unknown>[]).some((x) => fits(x, v));
  switch (b['type']) {
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'integer':
    case 'number':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    default:
      return false;
  }
}

function messageOf(e: SchemaError): string {
  const limit = e.params['limit'];
  switch (e.keyword) {
    case 'type':
      return `must be ${KIND[String(e.params['type'])] ?? String(e.params['type'])}`;
    case 'enum':
      return `must be one of ${((e.params['allowedValues'] as unknown[] | undefined) ?? []).map((x) => JSON.stringify(x)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(e.params['allowedValue'])}`;
    case 'minItems':
      return limit === 1 ? 'must not be empty' : `must have at least ${String(limit)} items`;
    case 'minLength':
      return limit === 1 ? 'must not be empty' : `must be at least ${String(limit)} characters`;
    case 'pattern':
      return `must match /${String(e.params['pattern'])}/`;
    default:
      return e.message;
  }
}

function pointerSegs(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** Segments of a JSON pointer into `value`: indices of lists become numbers so paths print as `routes[3]`. */
function segsOf(value: unknown, pointer: string): Seg[] {
  const segs: Seg[] = [];
  let cur = value;
  for (const s of pointerSegs(pointer)) {
    const seg: Seg = Array.isArray(cur) ? Number(s) : s;
    segs.push(seg);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return segs;
}

function valueAt(value: unknown, pointer: string): unknown {
  let cur = value;
  for (const s of pointerSegs(pointer)) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[s] : undefined;
  return cur;
}

function schemaAt(root: TSchema, schemaPath: string): Record<string, unknown> | undefined {
  const v = valueAt(root, schemaPath.replace(/^#/, ''));
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

/**
 * A worker's re-check of what the master already checked (a plugin conf, a
 * consumer credential): the value with its defaults, or a GW_ERR_PLUGIN_CONF
 * naming the first fault under `where`. The master's check makes this a no-op
 * in a running gateway; it keeps a worker (or a test harness) that skipped it safe.
 */
export function checkedOrThrow<S extends TSchema>(schema: S, value: unknown, where: readonly Seg[]): Static<S> {
  const r = validate(schema, value);
  if (r.ok) return r.value;
  const f = r.faults[0]!;
  throw new GatewayError('GW_ERR_PLUGIN_CONF', `${formatPath([...where, ...f.path])}: ${f.message}`);
}
