/** What `sluice -t` and `sluice -T` print. */
import { stringify } from 'yaml';
import type { ConfFile, ConfIssue } from './types.ts';

/** `file:line:col: path: message`, or `file:line:col: message` for an issue about the whole file. */
export function formatIssue(i: ConfIssue): string {
  return i.path === '' ? `${i.file}:${i.line}:${i.col}: ${i.message}` : `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/**
 * The conf as written, includes merged and every default filled in (nginx -T): a conf
 * file in its own right, which `sluice -t` accepts and which loads to the same conf.
 */
export function dumpConf(written: ConfFile, file: string): string {
  return `# ${file} with its includes merged and every default filled in\n${stringify(written, { lineWidth: 0 })}`;
}
