import { describe, expect, test } from 'vitest';
import { definePlugin, s } from '../../../src/plugins/pdk/index.ts';
import type { Handlers } from '../../../src/plugins/pdk/index.ts';
import pino from 'pino';
import type { SluiceConf } from '../../../src/config/types.ts';
import { compileChains } from '../../../src/worker/pipeline/chain.ts';
import { harness } from '../../helpers/plugin-harness.ts';

/** A plugin that records its phases into the request header `x-trace`. */
const tracer = (name: string, priority: number, extra: Handlers = {}) => definePlugin({
  name, version: '1.0.0', priority, schema: s.object({}),
  create: () => ({
    rewrite: (ctx) => ctx.req.headers.add('x-trace', `${name}:rewrite`),
    access: (ctx) => ctx.req.headers.add('x-trace', `${name}:access`),
    ...extra,
  }),
});

const traceOf = (list: readonly string[]) => list.flatMap((v, i) => (i % 2 === 1 && list[i - 1] === 'x-trace' ? [v] : []));

describe('order', () => {
  test('all rewrites before all accesses; global group before route group; higher priority first', async () => {
    const defs = [tracer('low-global', 1), tracer('high-route', 5000), tracer('mid-route', 50), tracer('high-global', 900)];
    const h = harness(defs, { 'high-route': {}, 'mid-route': {} }, { globals: { 'low-global': {}, 'high-global': {} } });
    const r = await h.run();
    expect(traceOf(r.upstream!.headers)).toEqual([
      'high-global:rewrite', 'low-global:rewrite', 'high-route:rewrite', 'mid-route:rewrite',
      'high-global:access', 'low-global:access', 'high-route:access', 'mid-route:access',
    ]);
  });

  test('a plugin set globally and on the route runs once, with the route conf', async () => {
    const p = definePlugin({
      name: 'tagger', version: '1', priority: 1,
      schema: s.object({ tag: s.headerName({ default: 'x-global', description: 'd' }) }),
      create: (conf) => ({ access: (ctx) => ctx.req.headers.add('x-tag', conf.tag) }),
    });
    const r = await harness([p], { tagger: { tag: 'x-route' } }, { globals: { tagger: {} } }).run();
    expect(r.upstream!.headers.filter((_, i, l) => l[i - 1] === 'x-tag')).toEqual(['x-route']);
  });
});

describe('ending the request', () => {
  test('a returned Exit skips later plugins and the upstream; response plugins still see it', async () => {
    const gate = definePlugin({
      name: 'gate', version: '1', priority: 10, schema: s.object({}),
      create: () => ({ access: (ctx) => ctx.exit(403, { message: 'no' }, { 'x-why': 'gate' }) }),
    });
    const after = tracer('after', 1, { headerFilter: (ctx) => ctx.res.headers.set('x-seen', 'yes') });
    const r = await harness([gate, after], { gate: {}, after: {} }).run();
    expect(r.status).toBe(403);
    expect(r.upstream).toBeNull();
    expect(r.header('x-why')).toBe('gate');
    expect(r.header('x-seen')).toBe('yes');
    expect(JSON.parse(r.body)).toEqual({ message: 'no' });
  });

  test('calling ctx.exit without returning it also ends the request', async () => {
    const gate = definePlugin({
      name: 'gate', version: '1', priority: 10, schema: s.object({}),
      create: () => ({ access: (ctx) => { ctx.exit(401); } }),
    });
    expect((await harness([gate], { gate: {} }).run()).status).toBe(401);
  });

  test('async handlers are awaited in order', async () => {
    const slow = definePlugin({
      name: 'slow', version: '1', priority: 10, schema: s.object({}),
      create: () => ({ access: async (ctx) => { await Promise.resolve(); ctx.req.headers.add('x-trace', 'slow'); } }),
    });
    const r = await harness([slow, tracer('next', 1)], { slow: {}, next: {} }).run();
    expect(traceOf(r.upstream!.headers)).toEqual(['next:rewrite', 'slow', 'next:access']);
  });
});

describe('failures', () => {
  const boom = (phase: keyof Handlers, async = false) => definePlugin({
    name: 'boom', version: '1', priority: 10, schema: s.object({}),
    create: () => ({ [phase]: async ? () => Promise.reject(new Error('kaput')) : () => { throw new Error('kaput'); } }),
  });

  test.each([['rewrite', false], ['access', false], ['access', true]] as const)('a throw in %s (async: %s) is a 500 GW_ERR_PLUGIN and one log line naming plugin and phase', async (phase, async) => {
    const r = await harness([boom(phase, async)], { boom: {} }).run();
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ code: 'GW_ERR_PLUGIN', message: 'plugin failed' });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ plugin: 'boom', phase, code: 'GW_ERR_PLUGIN' });
  });

  test.each(['headerFilter', 'log'] as const)('a throw in %s is only a log line', async (phase) => {
    const r = await harness([boom(phase)], { boom: {} }).run({ upstream: { status: 201 } });
    expect(r.status).toBe(201);
    expect(r.errors[0]).toMatchObject({ plugin: 'boom', phase });
  });

  test('a header value with CR/LF is refused (GW_ERR_BAD_HEADER) and fails the plugin, not the worker', async () => {
    const inject = definePlugin({
      name: 'inject', version: '1', priority: 1, schema: s.object({}),
      create: () => ({ rewrite: (ctx) => ctx.req.headers.set('x-a', 'a\r\nx-b: b') }),
    });
    const r = await harness([inject], { inject: {} }).run();
    expect(r.status).toBe(500);
    expect((r.errors[0]!['err'] as { code: string }).code).toBe('GW_ERR_BAD_HEADER');
  });

  test('an upstream path that is not origin-form is refused', async () => {
    const bad = definePlugin({
      name: 'bad-path', version: '1', priority: 1, schema: s.object({}),
      create: () => ({ rewrite: (ctx) => { ctx.req.path = '/a b?x#y'; } }),
    });
    const r = await harness([bad], { 'bad-path': {} }).run();
    expect((r.errors[0]!['err'] as { code: string }).code).toBe('GW_ERR_BAD_PATH');
  });

  test('the harness refuses an invalid plugin conf at its path, as the master does', () => {
    const p = definePlugin({ name: 'p', version: '1', priority: 1, schema: s.object({ n: s.headerName({ description: 'd' }) }), create: () => ({}) });
    expect(() => harness([p], { p: { n: 'bad name' } })).toThrow(/^routes\[0\]\.plugins\.p\.n: /);
  });

  test('a plugin the worker cannot find (gone from plugin_paths since the master checked) is refused when the chain is built', () => {
    const conf = { plugins: {}, routes: [{ name: 'r', plugins: { nope: {} } }] } as unknown as SluiceConf;
    const build = () => compileChains({ conf, plugins: new Map(), envFor: () => { throw new Error('not reached'); }, log: pino({ level: 'silent' }) });
    expect(build).toThrow(expect.objectContaining({ code: 'GW_ERR_UNKNOWN_PLUGIN', message: 'routes[0].plugins: unknown plugin "nope"' }));
  });
});

describe('request mutation', () => {
  test('path, query and headers changed by a plugin are what goes upstream; an untouched query is sent verbatim', async () => {
    const rw = definePlugin({
      name: 'rw', version: '1', priority: 1, schema: s.object({}),
      create: () => ({ rewrite: (ctx) => { ctx.req.path = '/v2' + ctx.req.path; ctx.req.query.set('b', '2'); ctx.req.headers.remove('x-drop'); } }),
    });
    const r = await harness([rw], { rw: {} }).run({ path: '/users', query: 'a=1', headers: { 'X-Drop': 'x', keep: 'y' } });
    expect(r.upstream!.target).toBe('/v2/users?a=1&b=2');
    expect(r.upstream!.headers).toEqual(['keep', 'y']);
    const noop = definePlugin({ name: 'noop', version: '1', priority: 1, schema: s.object({}), create: () => ({ access: () => {} }) });
    expect((await harness([noop], { noop: {} }).run({ path: '/p', query: 'x=%2F&y=a+b' })).upstream!.target).toBe('/p?x=%2F&y=a+b');
  });
});

describe('choosing the upstream', () => {
  /** Calls ctx.useUpstream with each name of the `x-use` header in turn; records each answer and ctx.upstream after it. */
  const chooser = definePlugin({
    name: 'chooser', version: '1.0.0', priority: 10, schema: s.object({}),
    create: () => ({
      access(ctx) {
        ctx.req.headers.set('x-seen', String(ctx.upstream));
        for (const name of (ctx.req.headers.get('x-use') ?? '').split(',').filter(Boolean)) {
          ctx.req.headers.add('x-chose', `${name}:${ctx.useUpstream(name)}:${ctx.upstream}`);
        }
      },
    }),
  });
  const valuesOf = (list: readonly string[], name: string) => list.flatMap((v, i) => (i % 2 === 1 && list[i - 1] === name ? [v] : []));

  test('ctx.upstream is the route\'s until a plugin chooses a defined one; undefined names change nothing; the last choice wins', async () => {
    const h = harness([chooser], { chooser: {} }, { upstreams: ['main', 'private', 'canary'] });
    const r = await h.run({ headers: { 'x-use': 'private,nope,canary' } });
    expect(valuesOf(r.upstream!.headers, 'x-seen')).toEqual(['main']);
    expect(valuesOf(r.upstream!.headers, 'x-chose')).toEqual(['private:true:private', 'nope:false:private', 'canary:true:canary']);
    expect(r.upstream!.name).toBe('canary');
    await h.close();
  });

  test('on a route that does not proxy there is no upstream to choose', async () => {
    const h = harness([chooser], { chooser: {} });
    const r = await h.run({ headers: { 'x-use': 'main' } });
    expect(valuesOf(r.upstream!.headers, 'x-seen')).toEqual(['null']);
    expect(valuesOf(r.upstream!.headers, 'x-chose')).toEqual(['main:false:null']);
  });
});
