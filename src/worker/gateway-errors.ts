import type { ServerResponse } from 'node:http';

/**
 * Every answer the gateway itself gives on error: a stable `code` (asserted by
 * tests, documented for operators), an HTTP status and a message. Bodies are
 * built once at load; nothing is formatted per request.
 */
export const GATEWAY_ERRORS = {
  GW_ERR_BAD_REQUEST: { status: 400, message: 'bad request' },
  GW_ERR_BAD_PATH: { status: 400, message: 'bad request path' },
  GW_ERR_NO_ROUTE: { status: 404, message: 'no route matched' },
  GW_ERR_NOT_FOUND: { status: 404, message: 'not found' },
  GW_ERR_FORBIDDEN: { status: 403, message: 'forbidden' },
  GW_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  GW_ERR_CLIENT_TIMEOUT: { status: 408, message: 'client timed out' },
  GW_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  GW_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  GW_ERR_INTERNAL: { status: 500, message: 'internal error' },
  GW_ERR_UPSTREAM: { status: 502, message: 'upstream failed' },
  GW_ERR_NO_HEALTHY_UPSTREAM: { status: 503, message: 'no healthy upstream' },
  GW_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },
} as const;

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;

const bodies = new Map<GatewayErrorCode, Buffer>();
for (const [code, { message }] of Object.entries(GATEWAY_ERRORS)) {
  bodies.set(code as GatewayErrorCode, Buffer.from(`${JSON.stringify({ code, message })}\n`));
}

export const errorStatus = (code: GatewayErrorCode): number => GATEWAY_ERRORS[code].status;

/** Writes the JSON error; `close` also asks the client to drop the connection (bad framing, timeouts). */
export function sendGatewayError(res: ServerResponse, code: GatewayErrorCode, close = false): void {
  const body = bodies.get(code)!;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: string[] = ['content-type', 'application/json', 'content-length', String(body.length)];
  if (close) headers.push('connection', 'close');
  res.writeHead(GATEWAY_ERRORS[code].status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
