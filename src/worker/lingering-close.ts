import type { Socket } from 'node:net';

/**
 * nginx's lingering_close for HTTP/1.1: a response that closes the
 * connection while the client is still sending its body (a 413 for a body
 * past client_max_body_size) must not be followed by an immediate close.
 * Closing a socket with unread bytes sends a reset, and the client's kernel
 * drops the response it had not read yet: the client sees ECONNRESET, never
 * the 413 (seen in CI: a raw client uploading 12 MiB chunked got nothing).
 *
 * So the close after the response becomes: a FIN, then whatever the client
 * still sends is read and dropped (Node dumps the request once its response
 * is done) until the client closes too, or for LINGER_MS at most (nginx's
 * lingering_timeout).
 */
const LINGER_MS = 5000;

/** Node closes the connection after its response with `destroySoon`: this one lingers first. */
function lingeringDestroySoon(this: Socket): void {
  this.end();
  const timer = setTimeout(() => this.destroy(), LINGER_MS).unref();
  this.once('close', () => clearTimeout(timer));
  this.once('end', () => this.destroy());
  this.resume();
}

export function lingerOnClose(socket: Socket): void {
  socket.destroySoon = lingeringDestroySoon;
}
