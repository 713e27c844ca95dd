/** What `sluice -t` and `sluice -T` print. */
import { stringify } from 'yaml';
import type { ConfIssue, SluiceConf } from './types.ts';

/** `file:line:col: path: message`, or `file:line:col: message` for an issue about the whole file. */
export function formatIssue(i: ConfIssue): string {
  return i.path === '' ? `${i.file}:${i.line}:${i.col}: ${i.message}` : `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/** The resolved conf as YAML (includes merged, defaults filled, durations in ms, sizes in bytes). */
export function dumpConf(conf: SluiceConf): string {
  return `# resolved conf of ${conf.file}: durations in ms, sizes in bytes\n${stringify(conf, { lineWidth: 0 })}`;
}
