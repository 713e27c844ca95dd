/**
 * One conf file: parsed with positions kept, YAML errors turned into issues, and its
 * nodes turned into plain data while every value's position is recorded in the Reporter.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node, ParsedNode } from 'yaml';
import { formatPath } from './reporter.ts';
import type { Loc, Reporter, Seg } from './reporter.ts';

export interface YamlFile {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** false when the file has YAML errors other than duplicate keys: its tree cannot be trusted. */
  readonly usable: boolean;
}

/** Read and parse `file`; on failure the reason is reported at `from` (the include that named it) or at the file itself. */
export function readYamlFile(file: string, reporter: Reporter, from?: () => void): YamlFile | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (from !== undefined) from();
    else reporter.add({ file, line: 1, col: 1, path: '', message: `cannot read conf file: ${(err as Error).message}` });
    return null;
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, keepSourceTokens: true, uniqueKeys: true });
  let usable = true;
  for (const e of doc.errors) {
    const { line, col } = lines.linePos(e.pos[0]);
    reporter.add({ file, line, col, path: '', message: e.message });
    if (e.code !== 'DUPLICATE_KEY') usable = false;
  }
  return { file, doc, lines, usable };
}

export function locAt(f: YamlFile, node: Node | null | undefined, key?: Node | null): Loc {
  const v = f.lines.linePos(node?.range?.[0] ?? key?.range?.[0] ?? 0);
  const k = key?.range ? f.lines.linePos(key.range[0]) : v;
  return { file: f.file, line: v.line, col: v.col, keyLine: k.line, keyCol: k.col };
}

/** A map key as a string: keys are names in this conf, so anything but a scalar is refused. */
export function keyOf(f: YamlFile, key: unknown, segs: readonly Seg[], reporter: Reporter): string | null {
  if (isScalar(key) && (typeof key.value === 'string' || typeof key.value === 'number' || typeof key.value === 'boolean')) {
    return String(key.value);
  }
  const where = locAt(f, key as Node);
  reporter.add({ file: f.file, line: where.line, col: where.col, path: formatPath(segs), message: 'map keys must be plain strings' });
  return null;
}

/** Follow an alias to the node it names; an unknown anchor is reported and read as null. */
export function deref(f: YamlFile, node: unknown, segs: readonly Seg[], reporter: Reporter): ParsedNode | null {
  if (!isAlias(node)) return (node as ParsedNode | null) ?? null;
  const target = node.resolve(f.doc);
  if (target === undefined) {
    reporter.record(segs, locAt(f, node));
    reporter.report(segs, `unknown alias *${node.source}`);
    return null;
  }
  return target as ParsedNode;
}

/**
 * Plain data from `node` at `segs`, recording each value's position. `key` is the node
 * of the key holding it, so that issues about the key itself point at the key.
 */
export function toData(f: YamlFile, node: unknown, segs: readonly Seg[], reporter: Reporter, key?: Node | null, depth = 0): unknown {
  reporter.record(segs, locAt(f, node as Node | null, key));
  const n = deref(f, node, segs, reporter);
  // An alias cycle (`a: &x [*x]`) would recurse for ever; no conf is this deep.
  if (depth > 64) {
    reporter.report(segs, 'value is nested too deeply');
    return null;
  }
  if (n === null) return null;
  if (isMap(n)) {
    const out: Record<string, unknown> = {};
    for (const pair of n.items) {
      const k = keyOf(f, pair.key, segs, reporter);
      // Duplicate keys are already a YAML error; keep the first.
      if (k === null || Object.hasOwn(out, k)) continue;
      out[k] = toData(f, pair.value, [...segs, k], reporter, pair.key as Node, depth + 1);
    }
    return out;
  }
  if (isSeq(n)) return n.items.map((item, i) => toData(f, item, [...segs, i], reporter, null, depth + 1));
  if (isScalar(n)) return n.value;
  return null;
}
