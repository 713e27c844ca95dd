import type { ReadonlyHeaders } from '../pdk/index.ts';

/** A stored header list read like a request's or response's. */
export function headerView(list: readonly string[]): ReadonlyHeaders {
  const get = (name: string): string | undefined => {
    const n = name.toLowerCase();
    for (let i = 0; i < list.length; i += 2) if (list[i] === n) return list[i + 1];
    return undefined;
  };
  return {
    get,
    getAll(name) {
      const n = name.toLowerCase();
      const out: string[] = [];
      for (let i = 0; i < list.length; i += 2) if (list[i] === n) out.push(list[i + 1]!);
      return out;
    },
    has: (name) => get(name) !== undefined,
    forEach(fn) {
      for (let i = 0; i < list.length; i += 2) fn(list[i + 1]!, list[i]!);
    },
  };
}
