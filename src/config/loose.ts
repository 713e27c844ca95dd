/**
 * Reads of conf data that may still hold faults (checks run on it before it is known
 * to fit the schema, to report everything in one pass): a value of the wrong type
 * reads as empty, since the schema check has already reported it.
 */
export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
