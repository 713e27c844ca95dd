import { describe, expect, it } from 'vitest';
import { HeaderList } from '../../../src/plugins/pdk/headers.ts';
import { askIfChanged, hasValidator, refreshedHeaders, takePreconditions } from '../../../src/plugins/proxy-cache/revalidate.ts';

describe('proxy-cache revalidation headers', () => {
  it('takes every precondition and Range out of the upstream request, repeats included, and leaves the rest', () => {
    const h = new HeaderList(['Host', 'a', 'If-None-Match', '"x"', 'if-none-match', '"y"', 'Range', 'bytes=0-1', 'If-Modified-Since', 'Mon, 30 Nov 2026 00:00:00 GMT', 'accept', '*/*']);
    const taken = takePreconditions(h);
    expect(taken).toEqual(['if-none-match', '"x"', 'if-none-match', '"y"', 'if-modified-since', 'Mon, 30 Nov 2026 00:00:00 GMT', 'range', 'bytes=0-1']);
    expect(h.list).toEqual(['Host', 'a', 'accept', '*/*']);
    expect(takePreconditions(h)).toEqual([]);
  });

  it('asks with the entry\'s ETag and Last-Modified, only when it has one', () => {
    const entry = new HeaderList(['etag', '"v1"', 'last-modified', 'Sun, 29 Nov 2026 10:00:00 GMT']);
    const h = new HeaderList(['host', 'a']);
    askIfChanged(h, entry);
    expect(h.get('if-none-match')).toBe('"v1"');
    expect(h.get('if-modified-since')).toBe('Sun, 29 Nov 2026 10:00:00 GMT');
    expect(hasValidator(entry)).toBe(true);
    expect(hasValidator(new HeaderList(['content-type', 'text/plain']))).toBe(false);
  });

  it('a 304 replaces the fields it carries (RFC 9111 §4.3.4), never the body\'s framing nor what is never stored', () => {
    const stored = ['content-type', 'text/plain', 'etag', '"v1"', 'cache-control', 'max-age=1', 'x-a', '1', 'x-a', '2', 'content-encoding', 'gzip'];
    const notModified = new HeaderList(['ETag', '"v1"', 'Cache-Control', 'max-age=60', 'X-A', '3', 'Content-Length', '0', 'Content-Encoding', 'br', 'Age', '5']);
    expect(refreshedHeaders(stored, notModified, new Set(['age', 'content-length']))).toEqual([
      'content-type', 'text/plain', 'content-encoding', 'gzip', 'etag', '"v1"', 'cache-control', 'max-age=60', 'x-a', '3',
    ]);
  });
});
