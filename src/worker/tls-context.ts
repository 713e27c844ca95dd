import { createSecureContext } from 'node:tls';
import type { SecureContext, SecureContextOptions, Server, TLSSocket } from 'node:tls';
import type { ServerOptions } from 'node:https';
import { constants } from 'node:crypto';
import type { TlsConf } from '../config/resolve.ts';
import type { SharedDict } from '../shdict/index.ts';

/**
 * TLS for a worker's tls listeners, built once per conf: one secure context
 * per certificate, chosen by SNI (exact name, then `*.` wildcard of the
 * first label, then the first certificate, as nginx picks its default
 * server), protocols and ciphers from the conf, and resumption that works
 * whichever worker a resumed connection lands on:
 * - tickets (TLS 1.2 and 1.3) sealed with the master's keys, which every
 *   worker holds and loads again when the master rotates them
 *   (master/ticket-keys.ts; nginx's ssl_session_ticket_key, made for us);
 * - TLS 1.2 session ids in a shared dict (nginx's `ssl_session_cache shared:`).
 */

/** nginx's ssl_session_timeout default. */
const SESSION_TIMEOUT_S = 300;

export interface TlsSetup {
  readonly options: ServerOptions;
  /** Hooks a tls server up: the shared session cache, and the ticket keys' rotation. */
  attach(server: Server): void;
  /** Loads the master's rotated ticket keys into every attached server (a no-op without tickets). */
  loadTicketKeys(): void;
}

/**
 * `ticketKeys` is the master's shared buffer: copied out when read, as Node
 * keeps its own copy and the master may rewrite the buffer at any time.
 */
export function createTlsSetup(tls: TlsConf, ticketKeys: Uint8Array | null, sessions: SharedDict | null): TlsSetup {
  const base: SecureContextOptions = {
    minVersion: tls.minVersion,
    maxVersion: tls.maxVersion,
    ...(tls.ciphers === null ? {} : { ciphers: tls.ciphers }),
  };
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  const contexts = tls.certificates.map((c) => createSecureContext({ ...base, cert: c.certPem, key: c.keyPem }));
  // In conf order, so a name two certificates share goes to the first, as the default does.
  tls.certificates.forEach((c, i) => {
    const ctx = contexts[i]!;
    for (const name of c.names) {
      const map = name.startsWith('*.') ? wildcard : exact;
      const key = name.startsWith('*.') ? name.slice(2) : name;
      if (!map.has(key)) map.set(key, ctx);
    }
  });
  const first = tls.certificates[0]!;
  const fallback = contexts[0]!;
  const pick = (servername: string): SecureContext => {
    const name = servername.toLowerCase();
    const found = exact.get(name);
    if (found !== undefined) return found;
    const dot = name.indexOf('.');
    return (dot > 0 ? wildcard.get(name.slice(dot + 1)) : undefined) ?? fallback;
  };
  const options: ServerOptions = {
    ...base,
    cert: first.certPem,
    key: first.keyPem,
    SNICallback: (servername, cb) => cb(null, pick(servername)),
    sessionTimeout: SESSION_TIMEOUT_S,
    ...(ticketKeys === null
      ? { secureOptions: constants.SSL_OP_NO_TICKET }
      : { ticketKeys: Buffer.from(ticketKeys) }),
  };
  const servers: Server[] = [];
  return {
    options,
    loadTicketKeys() {
      if (ticketKeys === null) return;
      const keys = Buffer.from(ticketKeys);
      for (const s of servers) s.setTicketKeys(keys);
    },
    attach(server) {
      servers.push(server);
      if (sessions === null) return;
      server.on('newSession', (id: Buffer, data: Buffer, done: () => void) => {
        sessions.set(id.toString('hex'), data, SESSION_TIMEOUT_S * 1000);
        done();
      });
      server.on('resumeSession', (id: Buffer, done: (err: Error | null, data: Buffer | null) => void) => {
        const v = sessions.get(id.toString('hex'));
        done(null, v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : null);
      });
    },
  };
}

/** Whether a connection is TLS: the scheme a request came in with (X-Forwarded-Proto). */
export const isTls = (socket: object): socket is TLSSocket => (socket as Partial<TLSSocket>).encrypted === true;
