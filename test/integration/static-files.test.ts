import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { startGateway } from '../helpers/gateway.ts';
import type { RunningGateway } from '../helpers/gateway.ts';
import { rawRequest, statusOf } from '../helpers/raw-http.ts';

/**
 * `root:` routes on the real gateway. The prefix directory holds:
 *
 *   secret.txt                 outside every root: must never be served
 *   wwwevil/secret.txt         a sibling whose name starts like the root's ("www" + "evil")
 *   private/{secret,index.html}  a directory outside the root
 *   www/assets/...             served under /assets/ (root: www, nginx `root` semantics)
 *                              and under /static (root: www/assets, strip_path)
 */
const SECRET = 'TOP-SECRET-8c1f0a';
const SIBLING_SECRET = 'SIBLING-SECRET-77d2';
const PRIVATE_SECRET = 'PRIVATE-SECRET-5e3b';
const SECRETS = [SECRET, SIBLING_SECRET, PRIVATE_SECRET];

const MTIME = new Date('2024-01-02T03:04:05Z');
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);

const FILES: Record<string, string | Buffer> = {
  'index.html': '<!doctype html><title>root index</title>\n',
  'style.css': 'body { color: red }\n',
  'app.js': 'console.log("app");\n',
  'data.json': '{"ok":true}\n',
  'logo.png': PNG,
  'notes.txt': 'plain notes\n',
  'sub/index.html': '<p>sub index</p>\n',
  'empty-dir/.keep': '',
  '%2e%2e/decoy.txt': 'decoy\n', // a real directory literally named "%2e%2e"
};

let gw: RunningGateway;
/** Every response body seen by any test, checked for the secrets at the end. */
const seen: string[] = [];

function layout(dir: string): void {
  writeFileSync(join(dir, 'secret.txt'), `${SECRET}\n`);
  mkdirSync(join(dir, 'wwwevil'));
  writeFileSync(join(dir, 'wwwevil/secret.txt'), `${SIBLING_SECRET}\n`);
  mkdirSync(join(dir, 'private'));
  writeFileSync(join(dir, 'private/secret.txt'), `${PRIVATE_SECRET}\n`);
  writeFileSync(join(dir, 'private/index.html'), `<p>${PRIVATE_SECRET}</p>\n`);
  const assets = join(dir, 'www/assets');
  for (const [name, body] of Object.entries(FILES)) {
    const file = join(assets, name);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, body);
    utimesSync(file, MTIME, MTIME);
  }
  symlinkSync(join(dir, 'secret.txt'), join(assets, 'link-abs.txt')); // absolute target outside
  symlinkSync('../../secret.txt', join(assets, 'link-rel.txt')); // relative target outside
  symlinkSync('../../wwwevil/secret.txt', join(assets, 'link-sibling.txt')); // shares the root's name prefix
  symlinkSync('../../private', join(assets, 'outdir')); // a directory outside
  symlinkSync('style.css', join(assets, 'link-inside.css')); // a link that stays inside is fine
}

beforeAll(async () => {
  gw = await startGateway(({ dir }) => {
    layout(dir);
    return {
      worker_processes: 1,
      access_log: { path: 'off' },
      routes: [
        { name: 'assets', paths: ['/assets/'], root: 'www' },
        { name: 'static', paths: ['/static'], strip_path: true, root: 'www/assets' },
      ],
    };
  });
});

afterAll(async () => {
  await gw?.stop();
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(gw.url(path), { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  seen.push(body.toString('latin1'));
  return { status: res.statusCode, headers: res.headers, body };
}

/** Sends the request line exactly as written (no client-side normalisation). */
async function raw(target: string, method = 'GET'): Promise<{ status: number; head: string; body: string }> {
  const res = await rawRequest(gw.port, `${method} ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
  seen.push(res);
  const split = res.indexOf('\r\n\r\n');
  return { status: statusOf(res), head: res.slice(0, split), body: res.slice(split + 4) };
}

describe('serving files', () => {
  test.each([
    ['/assets/index.html', 'text/html; charset=utf-8', 'index.html'],
    ['/assets/style.css', 'text/css; charset=utf-8', 'style.css'],
    ['/assets/app.js', 'text/javascript; charset=utf-8', 'app.js'],
    ['/assets/data.json', 'application/json; charset=utf-8', 'data.json'],
    ['/assets/logo.png', 'image/png', 'logo.png'],
    ['/assets/notes.txt', 'text/plain; charset=utf-8', 'notes.txt'],
  ])('%s has content-type %s and its exact bytes', async (path, type, name) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(type);
    const expected = Buffer.from(FILES[name]!);
    expect(res.headers['content-length']).toBe(String(expected.length));
    expect(res.body.equals(expected)).toBe(true);
  });

  test('strip_path: the route prefix is removed before looking under root', async () => {
    const res = await get('/static/app.js');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.body.toString()).toBe(FILES['app.js']);
    expect((await get('/static/sub/')).body.toString()).toBe(FILES['sub/index.html']);
  });

  test('ETag and Last-Modified come from the file', async () => {
    const res = await get('/assets/style.css');
    expect(res.headers['last-modified']).toBe(MTIME.toUTCString());
    expect(res.headers['etag']).toMatch(/^(W\/)?"[^"]+"$/);
    // Same file, same validator; a file of another size, another one.
    expect((await get('/static/style.css')).headers['etag']).toBe(res.headers['etag']);
    expect((await get('/assets/data.json')).headers['etag']).not.toBe(res.headers['etag']);
  });

  test('If-None-Match with the current ETag (alone or in a list, or *) is 304 without a body', async () => {
    const { headers } = await get('/assets/style.css');
    const etag = headers['etag'] as string;
    for (const inm of [etag, `"nope", ${etag}`, '*']) {
      const res = await get('/assets/style.css', { 'if-none-match': inm });
      expect(res.status, inm).toBe(304);
      expect(res.body.length).toBe(0);
      expect(res.headers['etag']).toBe(etag);
    }
    expect((await get('/assets/style.css', { 'if-none-match': '"stale"' })).status).toBe(200);
  });

  test('If-Modified-Since at or after the mtime is 304; before it, 200', async () => {
    expect((await get('/assets/data.json', { 'if-modified-since': MTIME.toUTCString() })).status).toBe(304);
    expect((await get('/assets/data.json', { 'if-modified-since': new Date(MTIME.getTime() + 3_600_000).toUTCString() })).status).toBe(304);
    const older = await get('/assets/data.json', { 'if-modified-since': new Date(MTIME.getTime() - 1000).toUTCString() });
    expect(older.status).toBe(200);
    expect(older.body.toString()).toBe(FILES['data.json']);
    expect((await get('/assets/data.json', { 'if-modified-since': 'not a date' })).status).toBe(200);
  });

  test('If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)', async () => {
    const res = await get('/assets/data.json', { 'if-none-match': '"stale"', 'if-modified-since': MTIME.toUTCString() });
    expect(res.status).toBe(200);
  });

  test('HEAD: the same headers, content-length of the file, no body', async () => {
    const res = await raw('/assets/logo.png', 'HEAD');
    expect(res.status).toBe(200);
    expect(res.head.toLowerCase()).toContain(`content-length: ${PNG.length}`);
    expect(res.head.toLowerCase()).toContain('content-type: image/png');
    expect(res.head.toLowerCase()).toContain('etag: ');
    expect(res.head.toLowerCase()).toContain('last-modified: ');
    expect(res.body).toBe('');
  });

  test('a link that stays inside the root is served', async () => {
    const res = await get('/assets/link-inside.css');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(FILES['style.css']);
  });
});

describe('directories', () => {
  test('without a trailing slash: 301 to the slash form, query kept', async () => {
    const res = await get('/assets/sub');
    expect(res.status).toBe(301);
    expect(res.headers['location']).toBe('/assets/sub/');
    const withQuery = await get('/assets/sub?page=2');
    expect(withQuery.status).toBe(301);
    expect(withQuery.headers['location']).toBe('/assets/sub/?page=2');
  });

  test('with a trailing slash: its index.html', async () => {
    const res = await get('/assets/sub/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.body.toString()).toBe(FILES['sub/index.html']);
    expect((await get('/assets/')).body.toString()).toBe(FILES['index.html']);
  });

  test('a directory without index.html is 404, never a listing', async () => {
    const res = await get('/assets/empty-dir/');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString())).toEqual({ code: 'GW_ERR_NOT_FOUND', message: 'not found' });
  });
});

describe('errors', () => {
  test('a missing file is 404 with the JSON body', async () => {
    const res = await get('/assets/nope.css');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString())).toEqual({ code: 'GW_ERR_NOT_FOUND', message: 'not found' });
    expect((await get('/assets/style.css/')).status).toBe(404); // a file is not a directory
  });

  test('POST, PUT and DELETE are 405 with Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await get('/assets/style.css', {}, method);
      expect(res.status, method).toBe(405);
      expect(res.headers['allow']).toBe('GET, HEAD');
      expect(JSON.parse(res.body.toString()).code).toBe('GW_ERR_METHOD_NOT_ALLOWED');
    }
  });
});

describe('nothing outside the root is ever served', () => {
  // Each answer is checked for the secrets here, and all answers again at the end.
  const neverSecret = (res: { status: number; body: string }, target: string): void => {
    expect(res.status, target).not.toBe(200);
    for (const s of SECRETS) expect(res.body, target).not.toContain(s);
  };

  test.each([
    ['/assets/../secret.txt', 404],
    ['/assets/../../secret.txt', 400],
    ['/assets/sub/../../secret.txt', 404],
    ['/assets/%2e%2e/secret.txt', 404],
    ['/assets/%2E%2E/%2e%2E/secret.txt', 400],
    ['/assets/.%2e/secret.txt', 404],
    ['/assets/..%2fsecret.txt', 400],
    ['/assets/..%2Fsecret.txt', 400],
    ['/assets/%2e%2e%2fsecret.txt', 400],
    ['/assets/%2e%2e%2f%2e%2e%2fsecret.txt', 400],
    ['/assets/..\\secret.txt', 400],
    ['/assets/..\\..\\secret.txt', 400],
    ['/assets/..%5csecret.txt', 400],
    ['/assets/..%5Csecret.txt', 400],
    ['/assets/%2e%2e%5csecret.txt', 400],
    ['/assets/..%00/secret.txt', 400],
    ['/assets/secret.txt%00.css', 400],
    ['/static/../secret.txt', 404],
    ['/static/%2e%2e/%2e%2e/secret.txt', 400],
    ['/static../secret.txt', 404], // the prefix "/static" matches "/static..": stripping leaves "/../secret.txt"
    ['/static..', 404],
    ['//assets/../secret.txt', 404],
  ])('%s is %i', async (target, status) => {
    const res = await raw(target);
    neverSecret(res, target);
    expect(res.status, target).toBe(status);
  });

  test('double encoding is decoded once: %252e%252e names a literal "%2e%2e" directory', async () => {
    for (const target of ['/assets/%252e%252e/secret.txt', '/assets/%252e%252e/%252e%252e/secret.txt', '/assets/%252e%252e%252fsecret.txt']) {
      const res = await raw(target);
      neverSecret(res, target);
      expect(res.status, target).toBe(404);
    }
    // The literal directory is reachable, so the 404s above are not just "bad escape" rejections.
    const decoy = await raw('/assets/%252e%252e/decoy.txt');
    expect(decoy.status).toBe(200);
    expect(decoy.body).toBe('decoy\n');
  });

  test('a symlink inside the root pointing to a file outside is 404', async () => {
    for (const target of ['/assets/link-abs.txt', '/assets/link-rel.txt', '/assets/link-sibling.txt', '/static/link-rel.txt']) {
      const res = await raw(target);
      neverSecret(res, target);
      expect(res.status, target).toBe(404);
    }
  });

  test('a symlink to a directory outside serves nothing from it', async () => {
    for (const target of ['/assets/outdir/secret.txt', '/assets/outdir/', '/assets/outdir/index.html', '/static/outdir/secret.txt']) {
      const res = await raw(target);
      neverSecret(res, target);
      expect(res.status, target).toBe(404);
    }
    const noSlash = await raw('/assets/outdir');
    neverSecret(noSlash, '/assets/outdir');
  });

  test('HEAD on a link outside reveals no size', async () => {
    const res = await raw('/assets/link-rel.txt', 'HEAD');
    expect(res.status).toBe(404);
    expect(res.head.toLowerCase()).not.toContain(`content-length: ${SECRET.length + 1}\r`);
  });

  test('no response in this file ever carried a secret', () => {
    expect(seen.length).toBeGreaterThan(30);
    for (const body of seen) for (const s of SECRETS) expect(body).not.toContain(s);
  });
});

// With strip_path the redirect must keep the path the client asked for, not the stripped one.
describe('strip_path directory redirect', () => {
  test('GET /static/sub redirects to /static/sub/, not /sub/', async () => {
    const res = await get('/static/sub?x=1');
    expect(res.status).toBe(301);
    expect(res.headers['location']).toBe('/static/sub/?x=1');
  });
});
