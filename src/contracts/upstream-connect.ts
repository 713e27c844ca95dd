/**
 * How a target is reached, by the workers' proxy and by the master's health
 * checks alike: the same origin (http or https) and the same TLS settings, so
 * that a probe meets what a request would meet.
 */
import type { ConnectionOptions } from 'node:tls';
import { buildConnector } from 'undici';
import type { HostPort } from '../config/addresses.ts';
import type { UpstreamTlsConf } from '../config/types.ts';

export function targetOrigin(t: HostPort, tls: UpstreamTlsConf | null): string {
  return `${tls === null ? 'http' : 'https'}://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

/**
 * What a request to the target says its server name is (undici's dispatch
 * `servername`). Left out, undici takes it from each request's Host header
 * (core/request.js), and a Client whose requests name another server drops
 * its connection ("servername changed"): with preserve_host every client's
 * Host would cost a handshake. One name per target keeps its connections.
 */
export const targetServerName = (t: HostPort, tls: UpstreamTlsConf | null): string => tls?.server_name ?? t.host;

/**
 * The connector of one target, shared by all of its pools: undici caches TLS
 * sessions per connector (keyed by server name), so a new connection to the
 * target, whichever pool opens it, resumes the last session instead of a full
 * handshake. HTTP/1.1 only (undici would offer h2 by ALPN on https): the proxy
 * speaks HTTP/1.1 upstream, as nginx does.
 *
 * SNI, and the name the certificate is verified against, is `server_name` or
 * else the target's host; an IP sends no SNI (RFC 6066) and is verified
 * against the certificate's IP addresses. The server name undici passes per
 * connection (see targetServerName) is ignored, so no request can change it.
 */
export function targetConnector(tls: UpstreamTlsConf | null, connectTimeout: number): buildConnector.connector {
  const options: buildConnector.BuildOptions = { allowH2: false, timeout: connectTimeout };
  if (tls !== null) {
    const secure: ConnectionOptions = { rejectUnauthorized: tls.verify };
    if (tls.server_name !== null) secure.servername = tls.server_name;
    if (tls.caPem !== null) secure.ca = tls.caPem; // replaces Node's default roots, as nginx's proxy_ssl_trusted_certificate
    if (tls.certPem !== null && tls.keyPem !== null) {
      secure.cert = tls.certPem;
      secure.key = tls.keyPem;
    }
    Object.assign(options, secure);
  }
  const connect = buildConnector(options);
  return (opts, callback) => {
    const { servername: _ignored, ...rest } = opts;
    connect(rest, callback);
  };
}
