import type { ServerResponse } from 'node:http';
import type { Exit } from '../../plugins/pdk/types.ts';
import type { PluginCtx } from './ctx.ts';
import { PLUGIN_FAILED, runHeaderFilter } from './run.ts';

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';

function exitBody(body: Exit['body']): { bytes: Buffer; type: string } {
  if (body === undefined) return { bytes: Buffer.alloc(0), type: '' };
  if (typeof body === 'string') return { bytes: Buffer.from(body), type: TEXT_TYPE };
  if (body instanceof Uint8Array) return { bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength), type: 'application/octet-stream' };
  return { bytes: Buffer.from(`${JSON.stringify(body)}\n`), type: JSON_TYPE };
}

/**
 * Answers with a plugin's Exit. Response plugins still see it (CORS headers
 * on a 401, the correlation id on a 403), as Kong runs header_filter for
 * kong.response.exit. Exit headers are checked like any plugin-set header; a
 * bad one turns the answer into the plugin-failure 500.
 */
export function sendExit(res: ServerResponse, ctx: PluginCtx, exit: Exit): void {
  if (res.headersSent || res.destroyed) return;
  const { bytes, type } = exitBody(exit.body);
  const headers = ctx.startResponse(exit.status, []);
  try {
    if (exit.headers !== undefined) for (const name in exit.headers) headers.set(name, exit.headers[name]!);
  } catch (err) {
    ctx.chain.errorLog.error({ err, route: ctx.route.name }, 'plugin exit has an invalid header');
    if (exit !== PLUGIN_FAILED) sendExit(res, ctx, PLUGIN_FAILED);
    return;
  }
  if (type !== '' && !headers.has('content-type')) headers.set('content-type', type);
  headers.set('content-length', String(bytes.length));
  runHeaderFilter(ctx);
  res.writeHead(exit.status, headers.list as string[]);
  res.end(ctx.req.method === 'HEAD' ? undefined : bytes);
}

/** A `return:` route's prebuilt response, through the header filters (the list is copied only if one changes it). */
export function sendReturn(res: ServerResponse, ctx: PluginCtx, status: number, headers: readonly string[], body: Buffer): void {
  const list = ctx.startResponse(status, headers);
  runHeaderFilter(ctx);
  res.writeHead(status, list.list as string[]);
  res.end(ctx.req.method === 'HEAD' ? undefined : body);
}
