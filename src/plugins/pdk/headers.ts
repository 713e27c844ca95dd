import { GatewayError } from './errors.ts';

/** RFC 9110 token: what a field name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Node's own rule for field values: no CR, LF, NUL or other controls but tab, so nothing can split a header. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export const isHeaderName = (name: string): boolean => TOKEN.test(name);
export const isHeaderValue = (value: string): boolean => FIELD_VALUE.test(value);

/** Does a comma-separated field value (Connection, Upgrade…) list `token`? `token` lower-case; the value's case does not matter. */
export function listsToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** Read access to a header list; names are matched case-insensitively. */
export interface ReadonlyHeaders {
  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined;
  /** Every value of `name`, in order (e.g. each Set-Cookie). */
  getAll(name: string): string[];
  has(name: string): boolean;
  /** Visits every field in order, with the name as received. */
  forEach(fn: (value: string, name: string) => void): void;
}

/** A header list a plugin may change in the phase that owns it. */
export interface MutableHeaders extends ReadonlyHeaders {
  /** Replaces every value of `name` with `value` (a number is sent in decimal, as Kong's set_header does). */
  set(name: string, value: string | number): void;
  /** Adds one more field `name` (Kong's `append`). */
  add(name: string, value: string | number): void;
  /** Removes every field `name`; true when there was one. */
  remove(name: string): boolean;
}

/**
 * A header list kept in the flat `[name, value, name, value, …]` form that
 * Node's rawHeaders, writeHead and the upstream client all use, so nothing is converted on
 * the way in or out. It borrows the list it was given and copies it only on the
 * first change (the list may be Node's rawHeaders or a prebuilt `return:`
 * response shared by every request). Header lists are short: a linear scan
 * with a length check first beats building a map per request.
 */
export class HeaderList implements MutableHeaders {
  list: readonly string[];
  /** True once `list` is our own copy. */
  owned: boolean;

  constructor(list: readonly string[]) {
    this.list = list;
    this.owned = false;
  }

  get(name: string): string | undefined {
    const i = this.indexOf(name, 0);
    return i < 0 ? undefined : this.list[i + 1];
  }

  getAll(name: string): string[] {
    const out: string[] = [];
    for (let i = this.indexOf(name, 0); i >= 0; i = this.indexOf(name, i + 2)) out.push(this.list[i + 1]!);
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  forEach(fn: (value: string, name: string) => void): void {
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) fn(l[i + 1]!, l[i]!);
  }

  set(name: string, value: string | number): void {
    const v = fieldValue(name, value);
    this.remove(name);
    this.own().push(name, v);
  }

  add(name: string, value: string | number): void {
    this.own().push(name, fieldValue(name, value));
  }

  remove(name: string): boolean {
    // Usually absent (set() of a new header): find the first match before copying or writing anything.
    let i = this.indexOf(name, 0);
    if (i < 0) return false;
    const l = this.own();
    const lower = name.toLowerCase();
    let w = i;
    for (i += 2; i < l.length; i += 2) {
      if (sameName(l[i]!, lower)) continue;
      l[w++] = l[i]!;
      l[w++] = l[i + 1]!;
    }
    l.length = w;
    return true;
  }

  /**
   * Index of the first field named `name` at or after `from`, or -1. The name
   * is lower-cased only once a field of its length turns up: a lookup of an
   * absent header, the usual case for set(), allocates nothing.
   */
  private indexOf(name: string, from: number): number {
    const l = this.list;
    let lower: string | null = null;
    for (let i = from; i < l.length; i += 2) {
      const n = l[i]!;
      if (n.length === name.length && sameName(n, (lower ??= name.toLowerCase()))) return i;
    }
    return -1;
  }

  private own(): string[] {
    if (!this.owned) {
      this.list = this.list.slice();
      this.owned = true;
    }
    return this.list as string[];
  }
}

const sameName = (n: string, lower: string): boolean => n.length === lower.length && n.toLowerCase() === lower;

/**
 * Names plugins have set that were valid. Plugins set the same few names on
 * every request (usually constants, whose hash V8 keeps), so a set lookup
 * replaces a scan of the name; bounded so that names made per request cannot
 * grow it without limit.
 */
const knownNames = new Set<string>();
const MAX_KNOWN_NAMES = 1024;

/**
 * The field's value as sent, once its name and value are known safe: a plugin
 * can never emit a field that splits the head or smuggles a second header. A
 * number needs no scan: its decimal form (or NaN, Infinity) is printable ASCII.
 */
function fieldValue(name: string, value: string | number): string {
  if (!knownNames.has(name)) {
    if (!isHeaderName(name)) throw new GatewayError('GW_ERR_BAD_HEADER', `invalid header name ${JSON.stringify(name)}`);
    if (knownNames.size < MAX_KNOWN_NAMES) knownNames.add(name);
  }
  if (typeof value === 'number') return String(value);
  if (!isHeaderValue(value)) throw new GatewayError('GW_ERR_BAD_HEADER', `invalid value for header ${name}: control characters are not allowed`);
  return value;
}
