/**
 * The types of the conf. As written (`ConfFile`): the schema's static type, with
 * every default filled in — what `sluice -T` prints. Resolved (`SluiceConf` and its
 * parts): what `loadConf` returns and every process uses, defined by `resolve.ts`
 * as the written types with durations in ms, sizes in bytes, addresses parsed and
 * paths absolute. The resolved conf crosses threads through workerData, so it holds
 * plain data only (no RegExp, no functions, no class instances).
 */
import type { Static } from 'typebox';
import type { ConfSchema } from './schema.ts';

export type ConfFile = Static<typeof ConfSchema>;

export type {
  AccessLogConf,
  ActiveHealthcheckConf,
  Algorithm,
  ConsumerConf,
  ListenAddr,
  LogLevel,
  PassiveHealthcheckConf,
  RealIpConf,
  ReturnConf,
  RouteConf,
  ServerConf,
  SluiceConf,
  TargetConf,
  UpstreamConf,
  UpstreamTlsConf,
} from './resolve.ts';

/** One problem found in a conf, printed by `sluice -t` as `file:line:col: path: message`. */
export interface ConfIssue {
  readonly file: string;
  readonly line: number; // 1-based
  readonly col: number; // 1-based
  /** Dotted path into the document, e.g. `routes[3].plugins.cors.max_age`; '' for the whole file. */
  readonly path: string;
  readonly message: string;
}
