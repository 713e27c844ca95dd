import { connect } from 'node:net';

/**
 * Sends bytes exactly as given (clients normalise what tests need to break)
 * and returns everything the server wrote until it closed the connection.
 */
export function rawRequest(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => { out += c; });
    socket.on('end', () => resolve(out));
    socket.on('error', (err) => (out === '' ? reject(err) : resolve(out)));
    socket.write(data);
  });
}

export const statusOf = (response: string): number => Number(response.slice(9, 12));
