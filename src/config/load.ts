/**
 * `loadConf`: read the main conf and its includes, check them against the schema and
 * the cross-references, and resolve them into a SluiceConf. Synchronous: it runs at
 * start and on reload, before anything is served, and conf files are small.
 */
import { resolve } from 'node:path';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { readConfTree } from './merge.ts';
import { Reporter } from './reporter.ts';
import { resolveConf } from './resolve.ts';
import { ConfSchema } from './schema.ts';
import { checkSchema } from './schema-issues.ts';
import type { ConfIssue, SluiceConf } from './types.ts';

export interface LoadOptions {
  /** Relative paths in the conf resolve against this (nginx -p); default: the working directory. */
  readonly prefix?: string;
  /** Plugin name -> schema. Given: unknown plugins are errors and plugin confs are checked with defaults filled in. */
  readonly pluginSchemas?: ReadonlyMap<string, TSchema>;
  /** Plugin name -> schema of one consumer credential; given: every `consumers[].credentials` entry is checked. */
  readonly credentialSchemas?: ReadonlyMap<string, TSchema>;
}

export type LoadResult = { readonly ok: true; readonly conf: SluiceConf } | { readonly ok: false; readonly issues: ConfIssue[] };

export function loadConf(file: string, opts: LoadOptions = {}): LoadResult {
  const abs = resolve(file);
  const reporter = new Reporter(abs);
  const merged = readConfTree(abs, reporter);
  // A file that did not parse leaves holes; schema errors about them would only mislead.
  if (!merged.complete) return { ok: false, issues: inReadingOrder(reporter.issues) };
  checkSchema(ConfSchema, merged.data, [], reporter);
  const written = Value.Default(ConfSchema, structuredClone(merged.data)) as Record<string, unknown>;
  const conf = resolveConf(written, { file: abs, prefix: resolve(opts.prefix ?? process.cwd()), pluginSchemas: opts.pluginSchemas, credentialSchemas: opts.credentialSchemas }, reporter);
  if (reporter.issues.length > 0) return { ok: false, issues: inReadingOrder(reporter.issues) };
  return { ok: true, conf };
}

/** Schema and cross-reference checks find faults in different orders; list them as the files read, files in load order. */
function inReadingOrder(issues: readonly ConfIssue[]): ConfIssue[] {
  const files = [...new Set(issues.map((i) => i.file))];
  return [...issues].sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line || a.col - b.col);
}
