import { HeaderList } from './headers.ts';
import type { Exit } from './types.ts';

const EMPTY = new Uint8Array(0);
const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/**
 * An Exit made ready to send: its body as bytes, its headers checked and
 * laid out as the flat list writeHead takes, with Content-Type and
 * Content-Length. The response writer turns every exit into one; a plugin
 * that answers the same way many times (a cache hit) makes it once with
 * `prepareExit` and returns it as is, so nothing is encoded or checked per
 * request. The list is shared: header filters copy it before they change it.
 */
export class PreparedExit implements Exit {
  readonly status: number;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** `[name, value, …]`, checked. */
  readonly list: readonly string[];

  constructor(status: number, body: Uint8Array, headers: Exit['headers'], list: readonly string[]) {
    this.status = status;
    this.body = body;
    this.headers = headers;
    this.list = list;
  }
}

function bodyOf(body: Exit['body']): { bytes: Uint8Array; type: string } {
  if (body === undefined || body === '') return { bytes: EMPTY, type: '' };
  if (typeof body === 'string') return { bytes: Buffer.from(body), type: TEXT_TYPE };
  if (body instanceof Uint8Array) return { bytes: body, type: 'application/octet-stream' };
  return { bytes: Buffer.from(`${JSON.stringify(body)}\n`), type: JSON_TYPE };
}

/** RFC 9110 §15.3.5, §15.4.5: a 204 or a 304 has no body, and a 204 no Content-Length (nor a 304 one for a body it lacks). */
const bodiless = (status: number): boolean => status === 204 || status === 304;

/** The exit, ready to send; throws (GW_ERR_BAD_HEADER) on a header no response may carry. */
export function prepareExit(exit: Exit): PreparedExit {
  if (exit instanceof PreparedExit) return exit;
  const { bytes, type } = bodiless(exit.status) ? { bytes: EMPTY, type: '' } : bodyOf(exit.body);
  const headers = new HeaderList([]);
  if (exit.headers !== undefined) for (const name in exit.headers) headers.set(name, exit.headers[name]!);
  if (type !== '' && !headers.has('content-type')) headers.set('content-type', type);
  if (!bodiless(exit.status)) headers.set('content-length', bytes.length);
  return new PreparedExit(exit.status, bytes, exit.headers, headers.list);
}
