/**
 * The plugin development kit: the only module a plugin imports. See
 * src/plugins/README.md, "Writing a plugin", and src/plugins/example/.
 */
export { definePlugin } from './types.ts';
export type {
  Consumer, ConsumerCredential, Consumers, CtxVars, Exit, Handlers, Identity, Ids, LogCtx, MaybePromise, MutableRequestHead, MutableResponseHead, Offload,
  PluginDef, PluginEnv, RequestCtx, RequestHead, ResponseCtx, ResponseHead, ResponseSource, RouteInfo, Timing, UpstreamAnswerCtx, UpstreamAnswerHook,
} from './types.ts';
export { s, splitPair, toBytes, toMs, Type } from './schema.ts';
export type { Static, TSchema } from './schema.ts';
export { isHeaderName, isHeaderValue } from './headers.ts';
export type { MutableHeaders, ReadonlyHeaders } from './headers.ts';
export type { MutableQuery, ReadonlyQuery } from './query.ts';
export { errorBody, errorExit, errorStatus, GATEWAY_ERRORS, GatewayError, PluginError } from './errors.ts';
export type { ErrorCode, ErrorExitOptions, GatewayErrorCode } from './errors.ts';
export { Lru } from './lru.ts';
export { prepareExit, PreparedExit } from './prepared-exit.ts';
export { addressSet } from './address-set.ts';
export type { AddressSet } from './address-set.ts';
export { cookieValue } from './cookie.ts';
export { murmur3 } from './murmur3.ts';
export { requestValue } from './request-value.ts';
export { allExact, valueMatcher, valuePatternFault } from './value-match.ts';
export type { ValueFn } from './request-value.ts';
export { bySchema, compileKey, missingKey, NO_LIMIT_KEY, onMissingKeySchema } from './limit-key.ts';
export type { KeyFn, OnMissingKey } from './limit-key.ts';
export { checkedCredentials, digest, digestKey, duplicate, quoted, sameDigest, unauthorized, whenAbsent } from './auth.ts';
export type { CheckedCredential } from './auth.ts';
export type { Phase } from './errors.ts';
export type { SharedDict } from '../../shdict/index.ts';
