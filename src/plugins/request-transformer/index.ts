import { definePlugin, s, splitPair, Type } from '../pdk/index.ts';
import type { MutableHeaders, MutableQuery, RequestCtx } from '../pdk/index.ts';

const names = (description: string) => Type.Array(Type.String({ minLength: 1 }), { default: [], description });
const headerPairs = (description: string) => Type.Array(s.headerPair({ description: 'Name:value' }), { default: [], description });
const queryPairs = (description: string) => Type.Array(s.queryPair({ description: 'name:value' }), { default: [], description });
const renames = (description: string) => Type.Array(s.queryPair({ description: 'old:new' }), { default: [], description });

const Schema = s.object({
  remove: s.object({
    headers: names('Headers to remove'),
    querystring: names('Query arguments to remove'),
  }, { description: 'Removed first' }),
  rename: s.object({
    headers: headerPairs('old:new header names'),
    querystring: renames('old:new argument names'),
  }, { description: 'Then renamed (values kept)' }),
  replace: s.object({
    headers: headerPairs('Set only where already present'),
    querystring: queryPairs('Set only where already present'),
    uri: Type.Union([Type.String({ pattern: '^/' }), Type.Null()], { default: null, description: 'New upstream path' }),
  }, { description: 'Then replaced' }),
  add: s.object({
    headers: headerPairs('Set only where absent'),
    querystring: queryPairs('Set only where absent'),
  }, { description: 'Then added' }),
  append: s.object({
    headers: headerPairs('Always added, after any existing value'),
    querystring: queryPairs('Always added, after any existing value'),
  }, { description: 'Then appended' }),
}, { description: 'Change the request before it goes upstream (Kong request-transformer)' });

type Pair = readonly [string, string];
type Op = (ctx: RequestCtx) => void;

/** The same five operations apply to headers and to query arguments. */
interface Fields { get(n: string): string | null | undefined; getAll(n: string): string[]; set(n: string, v: string): void; add(n: string, v: string): void; remove(n: string): unknown }

const present = (f: Fields, n: string): boolean => { const v = f.get(n); return v !== undefined && v !== null; };

function ops(pick: (ctx: RequestCtx) => Fields, c: { remove: readonly string[]; rename: readonly Pair[]; replace: readonly Pair[]; add: readonly Pair[]; append: readonly Pair[] }): Op[] {
  const out: Op[] = [];
  if (c.remove.length > 0) out.push((ctx) => { const f = pick(ctx); for (const n of c.remove) f.remove(n); });
  if (c.rename.length > 0) out.push((ctx) => {
    const f = pick(ctx);
    for (const [from, to] of c.rename) {
      const values = f.getAll(from);
      if (values.length === 0) continue;
      f.remove(from);
      for (const v of values) f.add(to, v);
    }
  });
  if (c.replace.length > 0) out.push((ctx) => { const f = pick(ctx); for (const [n, v] of c.replace) if (present(f, n)) f.set(n, v); });
  if (c.add.length > 0) out.push((ctx) => { const f = pick(ctx); for (const [n, v] of c.add) if (!present(f, n)) f.set(n, v); });
  if (c.append.length > 0) out.push((ctx) => { const f = pick(ctx); for (const [n, v] of c.append) f.add(n, v); });
  return out;
}

const headersOf = (ctx: RequestCtx): MutableHeaders => ctx.req.headers;
const queryOf = (ctx: RequestCtx): MutableQuery => ctx.req.query;

/**
 * Kong's request-transformer for headers, query string and path, in Kong's
 * order: remove, rename, replace, add, append. Only the operations the conf
 * uses are built, once; a request runs that short list and nothing else.
 */
export const requestTransformer = definePlugin({
  name: 'request-transformer',
  version: '1.0.0',
  priority: 801, // Kong's
  schema: Schema,
  create(conf) {
    const list: Op[] = [
      ...ops(headersOf, {
        remove: conf.remove.headers, rename: conf.rename.headers.map(splitPair), replace: conf.replace.headers.map(splitPair),
        add: conf.add.headers.map(splitPair), append: conf.append.headers.map(splitPair),
      }),
      ...ops(queryOf, {
        remove: conf.remove.querystring, rename: conf.rename.querystring.map(splitPair), replace: conf.replace.querystring.map(splitPair),
        add: conf.add.querystring.map(splitPair), append: conf.append.querystring.map(splitPair),
      }),
    ];
    const uri = conf.replace.uri;
    if (uri !== null) list.push((ctx) => { ctx.req.path = uri; });
    if (list.length === 0) return {};
    return {
      access(ctx) {
        for (const op of list) op(ctx);
      },
    };
  },
});
