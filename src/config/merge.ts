/**
 * Reads the main conf file and everything it includes into one plain document.
 * Merge rule: maps merge key by key, lists concatenate in order, a scalar set in two
 * places is an error, and a name defined in two files (upstream, shared dict, global
 * plugin) is an error that points at the second definition and names the first.
 * A file's own keys come first, then its includes in glob order (depth first), so
 * routes keep the order an operator reads them in.
 */
import { globSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { formatPath, where } from './reporter.ts';
import type { Reporter, Seg } from './reporter.ts';
import { deref, keyOf, locAt, readYamlFile, toData } from './yaml-file.ts';
import type { YamlFile } from './yaml-file.ts';

/** Top-level maps whose keys are names of things: the same name twice is a duplicate definition. */
const NAMED: Readonly<Record<string, string>> = { upstreams: 'upstream', shared_dicts: 'shared dict', plugins: 'plugin' };

export interface Merged {
  readonly data: Record<string, unknown>;
  /** false when some file could not be read or parsed: later checks would only add noise. */
  readonly complete: boolean;
}

interface Included {
  readonly by: string; // file:line of the include that first pulled it in
}

export function readConfTree(mainFile: string, reporter: Reporter): Merged {
  const data: Record<string, unknown> = {};
  const seen = new Map<string, Included>();
  let complete = true;

  const visit = (file: string, stack: readonly string[], fromReport?: (message: string) => void, by?: string): void => {
    const real = safeRealpath(file);
    const cycleAt = stack.indexOf(real);
    if (cycleAt >= 0) {
      fromReport?.(`include cycle: ${[...stack.slice(cycleAt), real].join(' -> ')}`);
      complete = false;
      return;
    }
    const first = seen.get(real);
    if (first !== undefined) {
      fromReport?.(`${file} is included twice (first by ${first.by})`);
      return;
    }
    seen.set(real, { by: by ?? file });
    const f = readYamlFile(file, reporter, fromReport && (() => fromReport(`cannot read included file ${file}`)));
    if (f === null || !f.usable) {
      complete = false;
      return;
    }
    const root = f.doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return; // an empty file adds nothing
    if (!isMap(root)) {
      const loc = locAt(f, root);
      reporter.add({ file, line: loc.line, col: loc.col, path: '', message: 'a conf file must be a map of keys' });
      complete = false;
      return;
    }
    if (stack.length === 0) reporter.record([], locAt(f, root));
    const includes = mergeMap(f, data, root, [], reporter);
    for (const inc of includes) {
      const report = (message: string) => reporter.add({ file, line: inc.line, col: inc.col, path: inc.path, message });
      const dir = dirname(file);
      const matches = globSync(inc.pattern, { cwd: dir }).sort();
      if (matches.length === 0 && !/[*?[\]{}]/.test(inc.pattern)) {
        // nginx: a glob may match nothing, a plain file name must exist.
        report(`included file ${resolve(dir, inc.pattern)} does not exist`);
        complete = false;
      }
      for (const m of matches) visit(resolve(dir, m), [...stack, real], report, `${file}:${inc.line}`);
    }
  };

  visit(mainFile, []);
  return { data, complete };
}

function safeRealpath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

interface IncludeRef {
  readonly pattern: string;
  readonly line: number;
  readonly col: number;
  readonly path: string;
}

/** Merge map node `node` of file `f` into `dst` at `segs`; returns the include globs found at top level. */
function mergeMap(f: YamlFile, dst: Record<string, unknown>, node: Node & { items: unknown[] }, segs: readonly Seg[], reporter: Reporter): IncludeRef[] {
  const includes: IncludeRef[] = [];
  const own = new Set<string>();
  for (const item of node.items) {
    const pair = item as { key: unknown; value: unknown };
    const key = keyOf(f, pair.key, segs, reporter);
    // Duplicate keys in one map are a YAML error already; keep the first.
    if (key === null || own.has(key)) continue;
    own.add(key);
    const here = [...segs, key];
    const keyNode = pair.key as Node;
    if (segs.length === 0 && key === 'include') {
      includes.push(...includeRefs(f, pair.value, here, keyNode, reporter));
      continue;
    }
    if (!Object.hasOwn(dst, key)) {
      dst[key] = toData(f, pair.value, here, reporter, keyNode);
      continue;
    }
    const existing = dst[key];
    const firstLoc = reporter.exactLocOf(here);
    const first = firstLoc ? ` (first defined at ${where(firstLoc)})` : '';
    const value = deref(f, pair.value, here, reporter);
    const kind = segs.length === 1 ? NAMED[segs[0] as string] : undefined;
    const at = locAt(f, value, keyNode);
    const path = here;
    if (kind !== undefined) {
      reporter.add({ file: f.file, line: at.keyLine, col: at.keyCol, path: formatPath(path), message: `duplicate ${kind} "${key}"${first}` });
    } else if (isMap(value) && isPlainObject(existing)) {
      mergeMap(f, existing, value, here, reporter);
    } else if (isSeq(value) && Array.isArray(existing)) {
      const offset = existing.length;
      value.items.forEach((it, i) => existing.push(toData(f, it, [...here, offset + i], reporter)));
    } else {
      reporter.add({ file: f.file, line: at.keyLine, col: at.keyCol, path: formatPath(path), message: `"${key}" is set twice${first}` });
    }
  }
  return includes;
}

function includeRefs(f: YamlFile, raw: unknown, segs: readonly Seg[], keyNode: Node, reporter: Reporter): IncludeRef[] {
  const node = deref(f, raw, segs, reporter);
  const items: unknown[] = isSeq(node) ? node.items : [node];
  const refs: IncludeRef[] = [];
  items.forEach((item, i) => {
    const n = deref(f, item, segs, reporter);
    const path = isSeq(node) ? `include[${i}]` : 'include';
    const loc = locAt(f, n, keyNode);
    if (!isScalar(n) || typeof n.value !== 'string' || n.value === '') {
      reporter.add({ file: f.file, line: loc.line, col: loc.col, path, message: 'must be a glob string (or a list of them)' });
      return;
    }
    refs.push({ pattern: n.value, line: loc.line, col: loc.col, path });
  });
  return refs;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
