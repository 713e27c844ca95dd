/** Read access to the query string arguments. */
export interface ReadonlyQuery {
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string): boolean;
  /** The query as it will be sent upstream, without `?`. */
  toString(): string;
}

export interface MutableQuery extends ReadonlyQuery {
  /** Replaces every value of `name`. */
  set(name: string, value: string): void;
  /** Adds one more `name=value` (Kong's `append`). */
  add(name: string, value: string): void;
  remove(name: string): void;
}

/**
 * The request's query arguments. Parsed on first use only, and re-serialised
 * only when a plugin changed something: an untouched query goes upstream byte
 * for byte as the client sent it.
 */
export class QueryArgs implements MutableQuery {
  private raw: string;
  private parsed: URLSearchParams | null;
  private changed: boolean;

  constructor(raw: string) {
    this.raw = raw;
    this.parsed = null;
    this.changed = false;
  }

  // Reads of an empty query (most requests, and every key-auth request that
  // carries its key in a header) answer without building a URLSearchParams.

  get(name: string): string | null {
    return this.isEmpty() ? null : this.params().get(name);
  }

  getAll(name: string): string[] {
    return this.isEmpty() ? [] : this.params().getAll(name);
  }

  has(name: string): boolean {
    return !this.isEmpty() && this.params().has(name);
  }

  set(name: string, value: string): void {
    this.params().set(name, value);
    this.changed = true;
  }

  add(name: string, value: string): void {
    this.params().append(name, value);
    this.changed = true;
  }

  remove(name: string): void {
    this.params().delete(name);
    this.changed = true;
  }

  toString(): string {
    if (this.changed) {
      this.raw = this.parsed!.toString();
      this.changed = false;
    }
    return this.raw;
  }

  private isEmpty(): boolean {
    return this.parsed === null && this.raw === '';
  }

  private params(): URLSearchParams {
    return (this.parsed ??= new URLSearchParams(this.raw));
  }
}
