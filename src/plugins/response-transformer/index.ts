import { definePlugin, s, splitPair, Type } from '../pdk/index.ts';
import type { ResponseCtx } from '../pdk/index.ts';

const names = (description: string) => Type.Array(s.headerName({ description: 'A header name' }), { default: [], description });
const pairs = (description: string) => Type.Array(s.headerPair({ description: 'Name:value' }), { default: [], description });

const Schema = s.object({
  remove: s.object({ headers: names('Headers to remove') }, { description: 'Removed first' }),
  rename: s.object({ headers: Type.Array(s.headerPair({ description: 'Old:New' }), { default: [], description: 'Old:New header names' }) }, { description: 'Then renamed' }),
  replace: s.object({ headers: pairs('Set only where already present') }, { description: 'Then replaced' }),
  add: s.object({ headers: pairs('Set only where absent') }, { description: 'Then added' }),
  append: s.object({ headers: pairs('Always added') }, { description: 'Then appended' }),
}, { description: 'Change response headers before they go to the client (Kong response-transformer)' });

/** Kong's response-transformer for headers: remove, rename, replace, add, append, in that order. */
export const responseTransformer = definePlugin({
  name: 'response-transformer',
  version: '1.0.0',
  priority: 800, // Kong's
  schema: Schema,
  create(conf) {
    const remove = conf.remove.headers;
    const rename = conf.rename.headers.map(splitPair);
    const replace = conf.replace.headers.map(splitPair);
    const add = conf.add.headers.map(splitPair);
    const append = conf.append.headers.map(splitPair);
    if (remove.length + rename.length + replace.length + add.length + append.length === 0) return {};
    return {
      headerFilter(ctx: ResponseCtx) {
        const h = ctx.res.headers;
        for (const n of remove) h.remove(n);
        for (const [from, to] of rename) {
          const values = h.getAll(from);
          if (values.length === 0) continue;
          h.remove(from);
          for (const v of values) h.add(to, v);
        }
        for (const [n, v] of replace) if (h.has(n)) h.set(n, v);
        for (const [n, v] of add) if (!h.has(n)) h.set(n, v);
        for (const [n, v] of append) h.add(n, v);
      },
    };
  },
});
