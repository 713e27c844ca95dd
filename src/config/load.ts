/**
 * `loadConf`: read the main conf and its includes, check them (schema, cross-references,
 * plugin confs, consumer credentials, shared dicts) in one pass that lists every fault,
 * and resolve them into a SluiceConf. Synchronous: it runs at start and on reload,
 * before anything is served, and conf files are small.
 */
import { resolve } from 'node:path';
import { crossCheck } from './cross-checks.ts';
import type { Obj } from './loose.ts';
import { readConfTree } from './merge.ts';
import { checkPluginConfs } from './plugin-confs.ts';
import type { PluginSchemas } from './plugin-confs.ts';
import { Reporter } from './reporter.ts';
import { loadCertificates, loadUpstreamTls } from './tls-certificates.ts';
import { resolveConf } from './resolve.ts';
import { ConfSchema } from './schema.ts';
import type { ConfFile, ConfIssue, SluiceConf } from './types.ts';
import { validate } from './validate.ts';

export interface LoadOptions extends PluginSchemas {
  /** Relative paths in the conf resolve against this (nginx -p); default: the working directory. */
  readonly prefix?: string;
}

export type LoadResult =
  | {
      readonly ok: true;
      readonly conf: SluiceConf;
      /** The conf as written: includes merged, every default (plugin ones too) filled in. What `sluice -T` prints. */
      readonly written: ConfFile;
      /** What it runs with but the operator must hear of (`-t` prints them, the master logs them). */
      readonly warnings: ConfIssue[];
    }
  | { readonly ok: false; readonly issues: ConfIssue[] };

/** The conf files read and merged, not yet checked. */
export interface ReadConf {
  readonly file: string;
  readonly data: Obj;
  /** false when some file could not be read or parsed. */
  readonly complete: boolean;
  readonly reporter: Reporter;
}

export function readConf(file: string): ReadConf {
  const abs = resolve(file);
  const reporter = new Reporter(abs);
  const { data, complete } = readConfTree(abs, reporter);
  return { file: abs, data, complete, reporter };
}

export function checkConf(read: ReadConf, opts: LoadOptions = {}): LoadResult {
  const { reporter } = read;
  // A file that did not parse leaves holes; faults found in them would only mislead.
  if (!read.complete) return { ok: false, issues: inReadingOrder(reporter.issues) };
  const core = validate(ConfSchema, read.data);
  reporter.reportFaults([], core.faults);
  // validate's copy: plugin confs and credentials get their defaults in it too.
  const written = core.value as Obj;
  crossCheck(written, reporter);
  checkPluginConfs(written, opts, reporter);
  const prefix = resolve(opts.prefix ?? process.cwd());
  const certificates = loadCertificates(written, prefix, reporter);
  const upstreamTls = loadUpstreamTls(written, prefix, reporter);
  if (reporter.issues.length > 0 || certificates === null || upstreamTls === null) return { ok: false, issues: inReadingOrder(reporter.issues) };
  const checked = written as ConfFile;
  return { ok: true, conf: resolveConf(checked, read.file, prefix, certificates, upstreamTls), written: checked, warnings: inReadingOrder(reporter.warnings) };
}

export function loadConf(file: string, opts: LoadOptions = {}): LoadResult {
  return checkConf(readConf(file), opts);
}

/** Checks find faults in different orders; list them as the files read, files in load order. */
function inReadingOrder(issues: readonly ConfIssue[]): ConfIssue[] {
  const files = [...new Set(issues.map((i) => i.file))];
  return [...issues].sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line || a.col - b.col);
}
