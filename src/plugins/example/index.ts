import { definePlugin, s, Type } from '../pdk/index.ts';

/**
 * The template to copy for a new plugin (see ../README.md, "Writing a
 * plugin"): adds a header to every response, and optionally one to the
 * request sent upstream.
 *
 * To start your own: copy this folder to `<plugin_paths dir>/<your-name>/`,
 * set `name` to the folder name, change the schema and handlers, and import
 * the pdk from wherever your checkout of Sluice lives.
 */
export const example = definePlugin({
  name: 'example',
  version: '1.0.0',
  priority: 1000, // between auth (1000+) and transformers (800); pick yours by what must run before it
  schema: s.object({
    header_name: s.headerName({ default: 'X-Example', description: 'Response header to add' }),
    value: Type.String({ default: 'hello', description: 'Its value' }),
    upstream_header: Type.Union([s.headerName({ description: 'Request header to add for the upstream' }), Type.Null()], {
      default: null,
      description: 'Also send this header upstream (null: do not)',
    }),
  }, { description: 'Adds a header: the template for new plugins' }),

  // No `init` or `dispose`: this plugin holds nothing. One that queues data
  // (a log shipper) or holds sockets returns a `dispose` with its handlers, and
  // may add `init(env)` / `dispose(env)` here for what its instances share in a
  // worker: see ../README.md, "Lifecycle".

  // create runs once per conf (per route using the plugin), never per request:
  // do the parsing and precomputing here, so the handlers only act.
  create(conf) {
    const { header_name: name, value, upstream_header: upstream } = conf;
    return {
      // A phase the plugin does not need is left out; this one is only there when configured.
      access: upstream === null ? undefined : (ctx) => {
        ctx.req.headers.set(upstream, value);
      },
      headerFilter(ctx) {
        ctx.res.headers.set(name, value);
      },
    };
  },
});
