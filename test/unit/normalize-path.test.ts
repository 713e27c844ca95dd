import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../src/worker/normalize-path.ts';

const path = (target: string): string => {
  const r = normalizePath(target);
  if ('error' in r) throw new Error(`${target}: ${r.error}`);
  return r.path;
};
const error = (target: string): string | undefined => {
  const r = normalizePath(target);
  return 'error' in r ? r.error : undefined;
};

describe('normalizePath', () => {
  it('keeps plain paths and splits the query off raw', () => {
    expect(normalizePath('/')).toEqual({ path: '/', query: '' });
    expect(normalizePath('/a/b/')).toEqual({ path: '/a/b/', query: '' });
    expect(normalizePath('/a/b?x=%2F&y=..//z')).toEqual({ path: '/a/b', query: 'x=%2F&y=..//z' });
    expect(normalizePath('/a?')).toEqual({ path: '/a', query: '' });
    expect(normalizePath('/a/../b//c?x=1')).toEqual({ path: '/b/c', query: 'x=1' });
  });

  it('returns the target itself on the fast path', () => {
    const target = '/api/v1/users/42';
    const r = normalizePath(target);
    expect('error' in r ? null : r.path).toBe(target);
    expect(path('/static/app.min.js')).toBe('/static/app.min.js');
    expect(path('/api..')).toBe('/api..');
  });

  // The WHATWG URL parser and the CVEs in research/reliability.md §2.
  it.each([
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['/api/%2e./admin', '/admin'],
    ['/api/%2e/admin', '/api/admin'],
    ['/api../admin', '/api../admin'],
    ['/%61dmin', '/admin'],
    ['/%7e%41%2d%5f', '/~A-_'],
    ['/a%3bb%3B', '/a%3Bb%3B'],
    ['/a%20b', '/a%20b'],
    ['//admin/secret', '/admin/secret'],
    ['///a////b///', '/a/b/'],
    ['/a/./b/../c', '/a/c'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a/b/../', '/a/'],
    ['/a//../b', '/b'],
    ['/.', '/'],
    ['/a/b/%2e%2e/%2e%2e/c/..', '/'],
  ])('%s -> %s', (target, expected) => {
    expect(path(target)).toBe(expected);
  });

  it.each([
    ['/api/..%2Fadmin', 'encoded slash'],
    ['/admin%2f', 'encoded slash'],
    ['/admin%2F', 'encoded slash'],
    ['/x%5cy', 'encoded backslash'],
    ['/x%5Cy', 'encoded backslash'],
    ['/x%00', 'encoded nul'],
    ['/x%23y', 'encoded hash'],
    ['/x\\y', 'backslash'],
    ['/\\evil/x', 'backslash'],
    ['/x#frag', 'fragment'],
    ['/x?a=1#frag', 'fragment'],
    ['/a%zz', 'bad escape'],
    ['/a%4', 'bad escape'],
    ['/a%', 'bad escape'],
    ['/a%4?x', 'bad escape'],
    ['/x\u0000y', 'bad character'],
    ['/x\ty', 'bad character'],
    ['/x y', 'bad character'],
    ['/x\u007fy', 'bad character'],
    ['/caf\u00e9', 'bad character'],
    // Tomcat/Spring cut `;` parameters before resolving dot segments: `/api/..;/admin` is their `/admin`.
    ['/api/..;/admin', 'dot segment parameters'],
    ['/api/..;x/admin', 'dot segment parameters'],
    ['/api/.;x/admin', 'dot segment parameters'],
    ['/api/.;/admin', 'dot segment parameters'],
    ['/api/;x/admin', 'dot segment parameters'],
    ['/;', 'dot segment parameters'],
    ['/api/x/..;', 'dot segment parameters'],
    ['/api/x/..;x?q=1', 'dot segment parameters'],
    ['/api/%2e%2e;/admin', 'dot segment parameters'],
    ['/api/%2E.;x/admin', 'dot segment parameters'],
    ['/api/..%3b/admin', 'dot segment parameters'],
    ['/api/..%3Bx/admin', 'dot segment parameters'],
    ['/api/.%3B/admin', 'dot segment parameters'],
    ['/api/%3Bx/admin', 'dot segment parameters'],
    ['/api//..;/admin', 'dot segment parameters'],
    ['/..', 'above root'],
    ['/%2e%2e/x', 'above root'],
    ['/../x', 'above root'],
    ['/a/../../x', 'above root'],
    ['*', 'not origin-form'],
    ['http://evil/x', 'not origin-form'],
    ['', 'not origin-form'],
  ])('%j is rejected: %s', (target, reason) => {
    expect(error(target)).toBe(reason);
  });

  it('keeps ; in ordinary segments, on the fast path too', () => {
    for (const p of ['/a;v=1/b', '/file;jsessionid=ABC', '/a.;b', '/...;x', '/a/..b;c', '/a;/b', '/x/a%3Bb']) {
      expect(path(p)).toBe(p);
    }
    const target = '/a;v=1/b';
    const r = normalizePath(target);
    expect('error' in r ? null : r.path).toBe(target);
    expect(path('/a/./b;x/../c;y')).toBe('/a/c;y');
  });

  it('does not decode escapes in the query', () => {
    expect(normalizePath('/%2e/a?b=%2e%2e%2F%zz')).toEqual({ path: '/a', query: 'b=%2e%2e%2F%zz' });
  });
});
