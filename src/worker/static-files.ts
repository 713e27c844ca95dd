import { createReadStream, realpathSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { pipeline } from 'node:stream';
import { contentType } from 'mime-types';
import { sendGatewayError } from './gateway-errors.ts';

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

/**
 * `path` is the file's path under the root (the normalised path, stripped when
 * the route strips); `requestPath` is the normalised path the client asked for,
 * which a directory redirect must keep; `query` is re-attached to redirects.
 */
export async function serveStatic(root: StaticRoot, res: ServerResponse, path: string, requestPath: string, query: string): Promise<void> {
  const req = res.req;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    sendGatewayError(res, 'GW_ERR_METHOD_NOT_ALLOWED');
    return;
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    sendGatewayError(res, 'GW_ERR_BAD_PATH');
    return;
  }
  const candidate = join(root.real, decoded);
  if (!inside(root, candidate)) {
    sendGatewayError(res, 'GW_ERR_NOT_FOUND');
    return;
  }
  try {
    let file = await realpath(candidate);
    // Checked after resolving symlinks (a link inside the root may point anywhere), and
    // before anything else is said about the target, even that it is a directory.
    if (!inside(root, file)) {
      sendGatewayError(res, 'GW_ERR_NOT_FOUND');
      return;
    }
    let info = await stat(file);
    if (info.isDirectory()) {
      if (!requestPath.endsWith('/')) {
        res.writeHead(301, { location: `${requestPath}/${query === '' ? '' : `?${query}`}`, 'content-length': '0' });
        res.end();
        return;
      }
      file = await realpath(join(file, INDEX));
      info = await stat(file);
    }
    if (!inside(root, file) || !info.isFile()) {
      sendGatewayError(res, 'GW_ERR_NOT_FOUND');
      return;
    }
    const etag = etagOf(info.size, info.mtimeMs);
    const lastModified = info.mtime.toUTCString();
    const ims = req.headers['if-modified-since'];
    if (notModified(req.headers['if-none-match'], ims, etag, info.mtimeMs)) {
      res.writeHead(304, { etag, 'last-modified': lastModified });
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': contentType(file.slice(file.lastIndexOf(sep) + 1)) || 'application/octet-stream',
      'content-length': String(info.size),
      etag,
      'last-modified': lastModified,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    pipeline(createReadStream(file), res, () => {}); // errors end the response; the access log records it
  } catch (err) {
    const code = (err as { code?: string }).code;
    sendGatewayError(res, code === 'EACCES' || code === 'EPERM' ? 'GW_ERR_FORBIDDEN' : 'GW_ERR_NOT_FOUND');
  }
}
