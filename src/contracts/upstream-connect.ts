/**
 * How a target is reached, by the workers' proxy and by the master's health
 * checks alike: the same socket (TCP, or TLS with the upstream's settings), so
 * that a probe meets what a request would meet.
 */
import { connect as tcpConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { HostPort } from '../config/addresses.ts';
import type { UpstreamTlsConf } from '../config/types.ts';

/** Opens a new connection to one target; the caller waits for {@link connectedEvent} and owns the socket. */
export type Connector = () => Socket;

/** The event that says a connector's socket is ready for a request. */
export const connectedEvent = (tls: UpstreamTlsConf | null): 'connect' | 'secureConnect' => tls === null ? 'connect' : 'secureConnect';

/**
 * The connector of one target, shared by all of its pools. For https it keeps
 * the target's last TLS session, so a new connection, whichever pool opens
 * it, resumes that session instead of making a full handshake (undici's
 * connector did the same, keyed by server name: one target has one name).
 * HTTP/1.1 only, by ALPN too: the proxy speaks HTTP/1.1 upstream, as nginx does.
 *
 * SNI, and the name the certificate is verified against, is `server_name` or
 * else the target's host; an IP sends no SNI (RFC 6066) and is verified
 * against the certificate's IP addresses. No request can change it (a
 * preserved Host header is not a server name).
 */
export function targetConnector(t: HostPort, tls: UpstreamTlsConf | null): Connector {
  if (tls === null) {
    return () => tcpConnect({ host: t.host, port: t.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
  }
  const name = tls.server_name ?? (isIP(t.host) === 0 ? t.host : undefined);
  const options: ConnectionOptions = {
    host: t.host,
    port: t.port,
    rejectUnauthorized: tls.verify,
    ALPNProtocols: ['http/1.1'],
  };
  if (name !== undefined) options.servername = name;
  if (tls.caPem !== null) options.ca = tls.caPem; // replaces Node's default roots, as nginx's proxy_ssl_trusted_certificate
  if (tls.certPem !== null && tls.keyPem !== null) {
    options.cert = tls.certPem;
    options.key = tls.keyPem;
  }
  let session: Buffer | undefined;
  const keep = (s: Buffer): void => {
    session = s;
  };
  return () => {
    options.session = session;
    const socket = tlsConnect(options);
    socket.on('session', keep);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}
