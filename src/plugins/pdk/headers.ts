import { GatewayError } from './errors.ts';

/** RFC 9110 token: what a field name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Node's own rule for field values: no CR, LF, NUL or other controls but tab, so nothing can split a header. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export const isHeaderName = (name: string): boolean => TOKEN.test(name);
export const isHeaderValue = (value: string): boolean => FIELD_VALUE.test(value);

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
  /** Replaces every value of `name` with `value`. */
  set(name: string, value: string): void;
  /** Adds one more field `name` (Kong's `append`). */
  add(name: string, value: string): void;
  /** Removes every field `name`; true when there was one. */
  remove(name: string): boolean;
}

/**
 * A header list kept in the flat `[name, value, name, value, …]` form that
 * Node's rawHeaders, writeHead and undici all use, so nothing is converted on
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
    const lower = name.toLowerCase();
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) {
      const n = l[i]!;
      if (n.length === lower.length && n.toLowerCase() === lower) return l[i + 1];
    }
    return undefined;
  }

  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    const l = this.list;
    const out: string[] = [];
    for (let i = 0; i < l.length; i += 2) {
      const n = l[i]!;
      if (n.length === lower.length && n.toLowerCase() === lower) out.push(l[i + 1]!);
    }
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  forEach(fn: (value: string, name: string) => void): void {
    const l = this.list;
    for (let i = 0; i < l.length; i += 2) fn(l[i + 1]!, l[i]!);
  }

  set(name: string, value: string): void {
    checkField(name, value);
    this.remove(name);
    this.own().push(name, value);
  }

  add(name: string, value: string): void {
    checkField(name, value);
    this.own().push(name, value);
  }

  remove(name: string): boolean {
    const lower = name.toLowerCase();
    // Usually absent (set() of a new header): find the first match before copying or writing anything.
    let i = 0;
    while (i < this.list.length && !sameName(this.list[i]!, lower)) i += 2;
    if (i >= this.list.length) return false;
    const l = this.own();
    let w = i;
    for (i += 2; i < l.length; i += 2) {
      if (sameName(l[i]!, lower)) continue;
      l[w++] = l[i]!;
      l[w++] = l[i + 1]!;
    }
    l.length = w;
    return true;
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

/** A plugin can never emit a field that splits the head or smuggles a second header. */
function checkField(name: string, value: string): void {
  if (!TOKEN.test(name)) throw new GatewayError('GW_ERR_BAD_HEADER', `invalid header name ${JSON.stringify(name)}`);
  if (!FIELD_VALUE.test(value)) throw new GatewayError('GW_ERR_BAD_HEADER', `invalid value for header ${name}: control characters are not allowed`);
}
