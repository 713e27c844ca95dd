import { describe, expect, test } from 'vitest';
import { HeaderList } from '../../../src/plugins/pdk/headers.ts';

const codeOf = (fn: () => void): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('HeaderList', () => {
  test('names match case-insensitively, values keep their order', () => {
    const h = new HeaderList(['Content-Type', 'text/plain', 'set-cookie', 'a=1', 'X-Id', '7', 'Set-Cookie', 'b=2']);
    expect(h.get('content-type')).toBe('text/plain');
    expect(h.get('CONTENT-TYPE')).toBe('text/plain');
    expect(h.get('x-ie')).toBeUndefined(); // same length, different name
    expect(h.getAll('SET-COOKIE')).toEqual(['a=1', 'b=2']);
    expect(h.has('x-id')).toBe(true);
    expect(h.has('x-missing')).toBe(false);
  });

  test('changes copy the borrowed list first and leave it untouched', () => {
    const borrowed = ['a', '1', 'B', '2', 'b', '3', 'c', '4'];
    const h = new HeaderList(borrowed);
    expect(h.remove('x')).toBe(false);
    expect(h.owned).toBe(false);
    h.set('b', '9');
    expect(h.list).toEqual(['a', '1', 'c', '4', 'b', '9']);
    h.add('A', '5');
    expect(h.getAll('a')).toEqual(['1', '5']);
    expect(h.remove('a')).toBe(true);
    expect(h.list).toEqual(['c', '4', 'b', '9']);
    expect(borrowed).toEqual(['a', '1', 'B', '2', 'b', '3', 'c', '4']);
  });

  test('a bad name is refused every time; a good name is still checked for its value', () => {
    const h = new HeaderList([]);
    for (let i = 0; i < 2; i++) {
      expect(codeOf(() => h.set('bad name', 'v'))).toBe('GW_ERR_BAD_HEADER');
      expect(codeOf(() => h.add('x:y', 'v'))).toBe('GW_ERR_BAD_HEADER');
      expect(codeOf(() => h.set('', 'v'))).toBe('GW_ERR_BAD_HEADER');
    }
    h.set('X-Good', 'fine\tvalue é');
    expect(codeOf(() => h.set('X-Good', 'a\r\nX-Evil: 1'))).toBe('GW_ERR_BAD_HEADER');
    expect(codeOf(() => h.add('X-Good', 'nul\0'))).toBe('GW_ERR_BAD_HEADER');
    expect(codeOf(() => h.add('X-Good', 'wide \u0100'))).toBe('GW_ERR_BAD_HEADER');
    expect(h.getAll('x-good')).toEqual(['fine\tvalue é']);
  });

  test('a number is sent in decimal; a bad name is refused with a number too', () => {
    const h = new HeaderList(['RateLimit-Remaining', 'from upstream']);
    h.set('ratelimit-remaining', 0);
    h.add('X-Big', 2 ** 25);
    h.add('X-Odd', -1.5);
    expect(h.list).toEqual(['ratelimit-remaining', '0', 'X-Big', '33554432', 'X-Odd', '-1.5']);
    expect(codeOf(() => h.set('bad name', 1))).toBe('GW_ERR_BAD_HEADER');
  });
});
