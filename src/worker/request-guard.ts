import type { GatewayErrorCode } from '../plugins/pdk/errors.ts';
import { isValidHost } from './host.ts';
import type { Incoming } from './http2-exchange.ts';

/**
 * Request heads Node's parser lets through but a gateway must refuse
 * (reliability.md §2, nginx http_headers_multi.t, http_host.t and
 * body_chunked.t): Node silently keeps the first of duplicate Host /
 * Authorization headers, accepts any bytes as a Host (`a/b`, `..x`), and
 * accepts Transfer-Encoding in HTTP/1.0 and `identity, chunked`. A proxy that
 * forwards any of these invites request smuggling, auth confusion or a forged
 * X-Forwarded-Host. An HTTP/1.1 request without Host is refused here too
 * (RFC 9112 §3.2; the server runs with Node's own check off so that this 400
 * is answered and logged like the others), and so is an HTTP/2 one with
 * neither `:authority` nor Host, as nginx refuses it. HTTP/2 requests arrive
 * with the head HTTP/1.1 would have carried (http2-exchange.ts), so a Host
 * that disagrees with `:authority` is a second Host here; their framing
 * (Content-Length against DATA, connection-specific headers) is nghttp2's.
 */
export function guardRequest(req: Incoming): GatewayErrorCode | null {
  const raw = req.rawHeaders;
  let host = 0;
  let authorization = 0;
  let contentLength = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // Length first: most headers are rejected without lower-casing.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          if (!isValidHost(raw[i + 1]!)) return 'GW_ERR_BAD_REQUEST';
          host++;
        }
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') authorization++;
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') contentLength++;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return 'GW_ERR_BAD_REQUEST';
          if (raw[i + 1]!.trim().toLowerCase() !== 'chunked') return 'GW_ERR_BAD_REQUEST';
        }
        break;
    }
  }
  if (host === 0 && (req.httpVersionMajor > 1 || req.httpVersionMinor >= 1)) return 'GW_ERR_BAD_REQUEST';
  return host > 1 || authorization > 1 || contentLength > 1 ? 'GW_ERR_BAD_REQUEST' : null;
}

/**
 * Absolute-form targets (`GET http://a/x`): allowed only when the authority is
 * a valid host and agrees with Host, so routing by Host and the target can
 * never disagree. Returns the origin-form path, or null to reject.
 */
export function originForm(target: string, host: string | undefined): string | null {
  const scheme = target.startsWith('http://') ? 7 : target.startsWith('https://') ? 8 : 0;
  if (scheme === 0) return null;
  let end = scheme;
  while (end < target.length && target[end] !== '/' && target[end] !== '?') end++;
  const authority = target.slice(scheme, end).toLowerCase();
  if (host === undefined || !isValidHost(authority) || authority !== host.toLowerCase()) return null;
  return target[end] === '/' ? target.slice(end) : `/${target.slice(end)}`;
}
