import { hash, timingSafeEqual } from 'node:crypto';
import { errorExit, GatewayError } from './errors.ts';
import type { Consumer, Consumers, Exit, RequestCtx } from './types.ts';

/**
 * What the auth plugins (key-auth, basic-auth, jwt, forward-auth) share:
 * the checked credentials to index at `create`, secret digests, constant-time comparison
 * and the 401 they answer with. In the pdk so custom auth plugins get the same.
 */

/** SHA-256 of a secret: fixed length, so comparisons and Map keys never reveal a secret's bytes or length. */
export const digest = (secret: string | Uint8Array): Buffer => hash('sha256', secret, 'buffer');

/**
 * Map key for a secret: its digest, so the Map's early-exit string compare only ever leaks digest bytes.
 * crypto.hash is the one-shot form (0.26 µs against createHash's 0.73 µs), and its 32 bytes as a binary (latin1)
 * string skip base64: 296 ns against 478 ns a key-auth request (the key is never shown, only compared).
 */
export const digestKey = (secret: string | Uint8Array): string => hash('sha256', secret, 'binary');

/** Constant-time equality of two equal-length digests. */
export const sameDigest = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

export interface CheckedCredential<T> {
  readonly consumer: Consumer;
  readonly credential: T;
}

/**
 * The consumers' credentials for `plugin`, typed. The master checked each one
 * against the plugin's `credentialSchema` (defaults filled in) before any
 * worker started, and refused the conf on a fault with its file:line:col, so a
 * worker takes them as they are and never loads the schema validator.
 */
export function checkedCredentials<T>(plugin: string, consumers: Consumers): readonly CheckedCredential<T>[] {
  return consumers.credentials(plugin) as unknown as readonly CheckedCredential<T>[];
}

/** Fails the conf when two credentials claim the same lookup key (a key, a username, an `iss`). */
export function duplicate(plugin: string, what: string, a: Consumer, b: Consumer): GatewayError {
  return new GatewayError('GW_ERR_PLUGIN_CONF',
    `credentials.${plugin}: consumers "${a.username}" and "${b.username}" have the same ${what}`);
}

/**
 * An auth plugin's answer to a request that presents no credential, built
 * once per conf from its `anonymous` option: the anonymous consumer's identity
 * (the request goes on), or `refusal`. An unknown username fails the conf.
 */
export function whenAbsent(plugin: string, username: string | null, consumers: Consumers, refusal: Exit): (ctx: RequestCtx) => Exit | undefined {
  if (username === null) return () => refusal;
  const identity = consumers.anonymous(username);
  if (identity === undefined) throw new GatewayError('GW_ERR_PLUGIN_CONF', `${plugin}.anonymous: no consumer "${username}"`);
  return (ctx) => {
    ctx.identity = identity;
    return undefined;
  };
}

/**
 * A prebuilt GW_ERR_UNAUTHORIZED: WWW-Authenticate plus the reason as the
 * message (default: the catalogue's). Nothing from the request goes in it.
 */
export const unauthorized = (challenge: string, message?: string): Exit =>
  errorExit('GW_ERR_UNAUTHORIZED', { message, headers: { 'WWW-Authenticate': challenge } });

/** A realm as a quoted-string (RFC 9110 §11.2): no quote or backslash can end it early. */
export const quoted = (realm: string): string => `"${realm.replace(/["\\]/g, '\\$&')}"`;
