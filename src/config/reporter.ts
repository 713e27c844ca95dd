/**
 * Where every value of the merged conf came from, and the list of issues found so far.
 * Values are addressed by their segments in the merged document (list indices are
 * after concatenation), so an issue found on merged data still points at its file and line.
 */
import type { ConfIssue } from './types.ts';
import type { Fault } from './validate.ts';

export type Seg = string | number;

export interface Loc {
  readonly file: string;
  /** Position of the value. */
  readonly line: number;
  readonly col: number;
  /** Position of the key that holds the value; the value's own position for list items and roots. */
  readonly keyLine: number;
  readonly keyCol: number;
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** `routes[3].plugins.cors.max_age`; keys that would be ambiguous are quoted: `shared_dicts["a.b"]`. */
export function formatPath(segs: readonly Seg[]): string {
  let out = '';
  for (const s of segs) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (PLAIN_KEY.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

export class Reporter {
  readonly issues: ConfIssue[] = [];
  /** What a conf may still run with but an operator must hear of (a certificate about to expire). */
  readonly warnings: ConfIssue[] = [];
  readonly #locs = new Map<string, Loc>();
  readonly #mainFile: string;

  constructor(mainFile: string) {
    this.#mainFile = mainFile;
  }

  record(segs: readonly Seg[], loc: Loc): void {
    this.#locs.set(formatPath(segs), loc);
  }

  /** The location of `segs`, or of its nearest ancestor that was written (defaults have no location). */
  locOf(segs: readonly Seg[]): Loc | undefined {
    for (let n = segs.length; n >= 0; n--) {
      const loc = this.#locs.get(formatPath(segs.slice(0, n)));
      if (loc !== undefined) return loc;
    }
    return undefined;
  }

  /** Exact location of `segs` only; used to name where something was first defined. */
  exactLocOf(segs: readonly Seg[]): Loc | undefined {
    return this.#locs.get(formatPath(segs));
  }

  /**
   * Report at the value (or, with `at: 'key'`, at its key) of `segs`. A value that was
   * not written (a default) has no position: the issue goes to the key of its nearest
   * written ancestor, e.g. the plugin whose defaulted option it is.
   */
  report(segs: readonly Seg[], message: string, at: 'value' | 'key' = 'value'): void {
    this.add(this.issueAt(segs, message, at));
  }

  /** A warning at `segs`, placed as `report` places an issue. */
  warn(segs: readonly Seg[], message: string): void {
    this.warnings.push(this.issueAt(segs, message, 'value'));
  }

  private issueAt(segs: readonly Seg[], message: string, at: 'value' | 'key'): ConfIssue {
    const exact = this.#locs.get(formatPath(segs));
    const loc = exact ?? this.locOf(segs);
    if (loc === undefined) return { file: this.#mainFile, line: 1, col: 1, path: formatPath(segs), message };
    const onKey = at === 'key' || exact === undefined;
    return { file: loc.file, line: onKey ? loc.keyLine : loc.line, col: onKey ? loc.keyCol : loc.col, path: formatPath(segs), message };
  }

  /** The faults `validate` found in the value at `base`. */
  reportFaults(base: readonly Seg[], faults: readonly Fault[]): void {
    for (const f of faults) this.report([...base, ...f.path], f.message, f.at);
  }

  add(issue: ConfIssue): void {
    // Two checks can reach the same fault (schema and resolve); say it once.
    const dup = this.issues.some(
      (i) => i.file === issue.file && i.line === issue.line && i.col === issue.col && i.path === issue.path && i.message === issue.message,
    );
    if (!dup) this.issues.push(issue);
  }
}

/** `file:line` of a location, for messages such as "first defined at …". */
export function where(loc: Loc): string {
  return `${loc.file}:${loc.keyLine}`;
}
