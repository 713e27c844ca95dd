import type { Exit } from './types.ts';

/** A code a client can receive: the status it is answered with by default and its default message. */
interface AnsweredEntry {
  readonly status: number;
  readonly message: string;
}

/** A code that is only thrown or logged, never the code of a response: what it means. */
interface InternalEntry {
  readonly internal: true;
  readonly message: string;
}

/**
 * Every error code of the gateway, in one place (fastify's FST_ERR_*
 * catalogue): tests and operators match on the code, never on the message.
 * The README's "Error codes" table lists the same codes (a test keeps them
 * equal). Codes a client can receive have a status; the others are thrown as
 * {@link GatewayError} or logged only, so they are marked internal instead of
 * being given a status nobody sends: a throw that reaches a client answers
 * GW_ERR_PLUGIN or GW_ERR_INTERNAL.
 */
export const GATEWAY_ERRORS = {
  // Answered by the gateway itself.
  GW_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  GW_ERR_BAD_PATH: { status: 400, message: 'bad request path' },
  GW_ERR_NO_ROUTE: { status: 404, message: 'no route matched' },
  GW_ERR_NOT_FOUND: { status: 404, message: 'not found' },
  GW_ERR_FORBIDDEN: { status: 403, message: 'forbidden' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  GW_ERR_CLIENT_TIMEOUT: { status: 408, message: 'client timed out' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  GW_ERR_BAD_HANDSHAKE: { status: 400, message: 'bad WebSocket handshake' },
  GW_ERR_WEBSOCKET_VERSION: { status: 426, message: 'unsupported WebSocket version' },
  GW_ERR_INTERNAL: { status: 500, message: 'internal error' },
  GW_ERR_UPSTREAM: { status: 502, message: 'upstream failed' },
  GW_ERR_NO_HEALTHY_UPSTREAM: { status: 503, message: 'no healthy upstream' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },

  // Answered for plugins. A plugin option may change the status or the message; the code stays.
  GW_ERR_PLUGIN: { status: 500, message: 'plugin failed' },
  GW_ERR_VALIDATION: { status: 400, message: 'request failed validation' },
  GW_ERR_UNAUTHORIZED: { status: 401, message: 'unauthorized' },
  GW_ERR_IP_DENIED: { status: 403, message: 'client address not allowed' },
  GW_ERR_NO_LIMIT_KEY: { status: 403, message: 'no rate-limiting key in the request' },
  GW_ERR_LENGTH_REQUIRED: { status: 411, message: 'a valid Content-Length header is required' },
  GW_ERR_RATE_LIMITED: { status: 429, message: 'rate limit exceeded' },
  GW_ERR_CONCURRENCY_LIMITED: { status: 503, message: 'too many concurrent requests' },
  GW_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, message: 'rate limiting is unavailable' },
  GW_ERR_AUTH_UNAVAILABLE: { status: 503, message: 'authentication service unavailable' },
  GW_ERR_AUTH_TIMEOUT: { status: 504, message: 'authentication service timed out' },
  GW_ERR_TERMINATED: { status: 503, message: 'terminated' },
  GW_ERR_NO_CACHE: { status: 404, message: 'no such route, or the route has no proxy-cache' },

  // Thrown or logged only.
  GW_ERR_PLUGIN_CONF: { internal: true, message: 'a plugin conf or consumer credential failed its check' },
  GW_ERR_UNKNOWN_PLUGIN: { internal: true, message: 'the conf names a plugin nobody registered' },
  GW_ERR_PLUGIN_LOAD: { internal: true, message: 'a custom plugin folder could not be loaded' },
  GW_ERR_BAD_HEADER: { internal: true, message: 'a plugin set a header that could split or smuggle a header' },
  GW_ERR_NO_DICT: { internal: true, message: 'env.dict() named a shared dict the conf does not declare' },
  GW_ERR_CLIENT_GONE: { internal: true, message: 'the client closed the connection before the response' },
  GW_ERR_SEND_TIMEOUT: { internal: true, message: 'sending the request body upstream timed out' },
  GW_ERR_UPSTREAM_CONNECT_TIMEOUT: { internal: true, message: 'connecting to the upstream timed out' },
  GW_ERR_UPSTREAM_HEADERS_TIMEOUT: { internal: true, message: 'the upstream sent nothing for read_timeout before its response head was complete' },
  GW_ERR_UPSTREAM_BODY_TIMEOUT: { internal: true, message: 'the upstream response body stalled for read_timeout' },
  GW_ERR_UPSTREAM_CLOSED: { internal: true, message: 'the upstream closed the connection before the response was complete' },
  GW_ERR_UPSTREAM_BAD_RESPONSE: { internal: true, message: 'the upstream response broke HTTP/1.1 framing' },
  GW_ERR_START: { internal: true, message: 'a worker failed to start' },
  GW_ERR_LISTEN: { internal: true, message: 'a worker could not listen' },
  GW_ERR_WORKER_EXIT: { internal: true, message: 'a worker exited while starting' },
  GW_ERR_WORKER_START_TIMEOUT: { internal: true, message: 'a worker did not listen in time' },
} as const satisfies Readonly<Record<`GW_ERR_${string}`, AnsweredEntry | InternalEntry>>;

/** Every code of the catalogue. */
export type ErrorCode = keyof typeof GATEWAY_ERRORS;

/** The codes a client can receive: those with a status. */
export type GatewayErrorCode = { [C in ErrorCode]: (typeof GATEWAY_ERRORS)[C] extends AnsweredEntry ? C : never }[ErrorCode];

const isAnswered = (entry: AnsweredEntry | InternalEntry): entry is AnsweredEntry => !('internal' in entry);

// Built once at load: the gateway writes these bytes as they are, nothing is formatted per request.
const bodies = new Map<ErrorCode, Buffer>();
for (const [code, entry] of Object.entries(GATEWAY_ERRORS)) {
  if (isAnswered(entry)) bodies.set(code as ErrorCode, Buffer.from(`${JSON.stringify({ code, message: entry.message })}\n`));
}

/** The JSON body `{"code","message"}` of a code, with the default message. */
export const errorBody = (code: GatewayErrorCode): Buffer => bodies.get(code)!;

export const errorStatus = (code: GatewayErrorCode): number => GATEWAY_ERRORS[code].status;

/** What a plugin's options may change in an error answer; the code never changes. */
export interface ErrorExitOptions {
  readonly status?: number | undefined;
  readonly message?: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * A frozen Exit answering `code` with the body `{ code, message }`: build it
 * once in `create`, return it per request. The status and message default to
 * the catalogue's, so a plugin's `status`/`message` options pass straight through.
 */
export function errorExit(code: GatewayErrorCode, options: ErrorExitOptions = {}): Exit {
  const { status, message } = GATEWAY_ERRORS[code];
  const body = Object.freeze({ code, message: options.message ?? message });
  return Object.freeze(options.headers === undefined
    ? { status: options.status ?? status, body }
    : { status: options.status ?? status, body, headers: Object.freeze({ ...options.headers }) });
}

/**
 * Errors raised by the plugin framework and the gateway. Every one carries a
 * stable `code` from the catalogue. Denials a plugin means to give (401, 403,
 * 429) are not errors: they are `Exit` values, built with {@link errorExit}.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
  }
}

export type Phase = 'rewrite' | 'access' | 'headerFilter' | 'bodyFilter' | 'log';

/** A handler threw: names the plugin and phase so the log line says who failed where. */
export class PluginError extends GatewayError {
  readonly plugin: string;
  readonly phase: Phase;
  constructor(plugin: string, phase: Phase, cause: unknown) {
    super('GW_ERR_PLUGIN', `plugin "${plugin}" failed in ${phase}`, { cause });
    this.name = 'PluginError';
    this.plugin = plugin;
    this.phase = phase;
  }
}
