import { basicAuth } from './basic-auth/index.ts';
import { correlationId } from './correlation-id/index.ts';
import { cors } from './cors/index.ts';
import { forwardAuth } from './forward-auth/index.ts';
import { ipRestriction } from './ip-restriction/index.ts';
import { limitConn } from './limit-conn/index.ts';
import { limitReq } from './limit-req/index.ts';
import { jwt } from './jwt/index.ts';
import { keyAuth } from './key-auth/index.ts';
import type { PluginDef } from './pdk/types.ts';
import { proxyCache } from './proxy-cache/index.ts';
import { rateLimiting } from './rate-limiting/index.ts';
import { buildRegistry } from './registry.ts';
import { requestSizeLimiting } from './request-size-limiting/index.ts';
import { requestTermination } from './request-termination/index.ts';
import { requestTransformer } from './request-transformer/index.ts';
import { requestValidation } from './request-validation/index.ts';
import { responseTransformer } from './response-transformer/index.ts';
import { syslog } from './syslog/index.ts';
import { trafficSplit } from './traffic-split/index.ts';
import type { PluginRegistry } from './registry.ts';

export type { PluginRegistry } from './registry.ts';

/**
 * The built-in plugins, listed by hand (no directory scanning): what ships is
 * what is written here. Folder name = `name` = YAML key (a unit test checks).
 */
export const BUILTIN_PLUGINS: readonly PluginDef[] = [
  basicAuth,
  correlationId,
  cors,
  forwardAuth,
  ipRestriction,
  limitConn,
  limitReq,
  proxyCache,
  rateLimiting,
  jwt,
  keyAuth,
  requestSizeLimiting,
  requestTermination,
  requestTransformer,
  requestValidation,
  responseTransformer,
  syslog,
  trafficSplit,
] as readonly PluginDef[];

/**
 * Every plugin a conf may use: the built-in ones plus the custom ones found
 * under `plugin_paths` (already absolute in a resolved conf). The master
 * passes `.schemas` to loadConf; workers pass `.plugins` to their pipeline.
 */
export const loadPluginRegistry = (pluginPaths: readonly string[]): Promise<PluginRegistry> =>
  buildRegistry(BUILTIN_PLUGINS, pluginPaths);
