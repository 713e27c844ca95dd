import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { contentType } from 'mime-types';
import type { Exchange } from './exchange.ts';
import { sendError, sendHead, sendStream, sendWhole } from './response-writer.ts';

/**
 * `root:` routes: files under a directory, as nginx serves them, with one rule
 * nginx leaves to the operator: nothing outside the root is ever served. The
 * path was already normalised (no dot segments, no encoded `/` `\` NUL), and the
 * file's real path (symlinks resolved) must still lie under the root's real path.
 */
export interface StaticRoot {
  /** Real path of the root, with a trailing separator for prefix checks. */
  readonly base: string;
  readonly real: string;
}

export function createStaticRoot(root: string): StaticRoot {
  let real: string;
  try {
    real = realpathSync(root);
  } catch {
    real = root; // a missing root serves 404s until it exists; the conf loader warns about it
  }
  return { real, base: real.endsWith(sep) ? real : real + sep };
}

const inside = (root: StaticRoot, p: string): boolean => p === root.real || p.startsWith(root.base);

const INDEX = 'index.html';

function etagOf(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, etag: string, mtimeMs: number): boolean {
  if (ifNoneMatch !== undefined) return ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === '*');
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
  }
  return false;
}

const NO_BODY = new Uint8Array(0);

/**
 * The file is the request's path under the root (the normalised path,
 * stripped when the route strips, as plugins left it); a directory redirect
 * keeps the path the client asked for, and its query.
 */
export async function serveStatic(x: Exchange, root: StaticRoot): Promise<void> {
  if (x.method !== 'GET' && x.method !== 'HEAD') {
    x.out.setHeader('allow', 'GET, HEAD');
    sendError(x, 'GW_ERR_METHOD_NOT_ALLOWED');
    return;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(x.req.path);
  } catch {
    sendError(x, 'GW_ERR_BAD_PATH');
    return;
  }
  const candidate = join(root.real, decoded);
  if (!inside(root, candidate)) {
    sendError(x, 'GW_ERR_NOT_FOUND');
    return;
  }
  try {
    let file = await realpath(candidate);
    // Checked after resolving symlinks (a link inside the root may point anywhere), and
    // before anything else is said about the target, even that it is a directory.
    if (!inside(root, file)) {
      sendError(x, 'GW_ERR_NOT_FOUND');
      return;
    }
    let info = await stat(file);
    if (info.isDirectory()) {
      if (!x.path.endsWith('/')) {
        const query = x.req.query.toString();
        sendWhole(x, 301, ['location', `${x.path}/${query === '' ? '' : `?${query}`}`, 'content-length', '0'], NO_BODY, 'route');
        return;
      }
      file = await realpath(join(file, INDEX));
      info = await stat(file);
    }
    if (!inside(root, file) || !info.isFile()) {
      sendError(x, 'GW_ERR_NOT_FOUND');
      return;
    }
    const etag = etagOf(info.size, info.mtimeMs);
    const lastModified = info.mtime.toUTCString();
    const headers = x.req.headers;
    if (notModified(headers.get('if-none-match'), headers.get('if-modified-since'), etag, info.mtimeMs)) {
      sendWhole(x, 304, ['etag', etag, 'last-modified', lastModified], NO_BODY, 'route');
      return;
    }
    const type = contentType(file.slice(file.lastIndexOf(sep) + 1)) || 'application/octet-stream';
    const head = ['content-type', type, 'content-length', String(info.size), 'etag', etag, 'last-modified', lastModified];
    if (x.method === 'HEAD') {
      sendWhole(x, 200, head, NO_BODY, 'route');
      return;
    }
    sendHead(x, 200, head, 'route');
    sendStream(x, createReadStream(file));
  } catch (err) {
    const code = (err as { code?: string }).code;
    sendError(x, code === 'EACCES' || code === 'EPERM' ? 'GW_ERR_FORBIDDEN' : 'GW_ERR_NOT_FOUND');
  }
}
