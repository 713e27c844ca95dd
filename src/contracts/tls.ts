/**
 * What the master and workers agree on for TLS: the shared dict the session
 * cache lives in (created by the master when a tls listener and a
 * session_cache ask for it, like any zone) and the size of the ticket keys
 * it shares with every worker (master/ticket-keys.ts), so a ticket issued by
 * any worker, of any generation, resumes on any other until the keys rotate.
 */
export const TLS_SESSION_DICT = 'sluice_tls_sessions';

/** Node's setTicketKeys: 16 bytes of name, 16 of HMAC secret, 16 of AES key. */
export const TICKET_KEY_BYTES = 48;
