import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { BUILTIN_PLUGINS, loadAllBuiltins, loadPluginRegistry, pluginNamesIn } from '../../../src/plugins/index.ts';

const PLUGINS_DIR = fileURLToPath(new URL('../../../src/plugins/', import.meta.url));
const PDK = fileURLToPath(new URL('../../../src/plugins/pdk/index.ts', import.meta.url));

describe('built-in registry', () => {
  test('every built-in lives in the folder named as it, and every plugin folder is registered', async () => {
    for (const def of await loadAllBuiltins()) expect(readdirSync(join(PLUGINS_DIR, def.name))).toContain('index.ts');
    const folders = readdirSync(PLUGINS_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'pdk' && d.name !== 'example').map((d) => d.name).sort();
    expect([...BUILTIN_PLUGINS.keys()].sort()).toEqual(folders);
    expect((await loadAllBuiltins()).map((d) => d.name).sort()).toEqual(folders);
  });

  test('the YAML key is the name: the schema map is keyed by it', async () => {
    const all = await loadAllBuiltins();
    const reg = await loadPluginRegistry([], new Set(all.map((d) => d.name)));
    for (const def of all) expect(reg.schemas.get(def.name)).toBe(def.schema);
  });

  test('only the plugins a conf names are loaded: routes, global, and the auth plugins of consumers\' credentials', async () => {
    const names = pluginNamesIn({
      plugins: { cors: {} },
      routes: [{ plugins: { 'key-auth': {} } }, { return: { status: 200 } }],
      consumers: [{ username: 'a', credentials: { jwt: [] } }],
    });
    expect([...names].sort()).toEqual(['cors', 'jwt', 'key-auth']);
    const reg = await loadPluginRegistry([], new Set([...names, 'no-such-plugin']));
    expect([...reg.plugins.keys()].sort()).toEqual(['cors', 'jwt', 'key-auth']);
  });

  test('a conf that names no plugin loads none of their modules (no jose, ioredis, ajv in a plain proxy)', async () => {
    // A fresh process, as the master and every worker are: the module graph there is the proof.
    const { execFileSync } = await import('node:child_process');
    const code = `import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve: (specifier, context, next) => { const r = next(specifier, context); seen.push(r.url); return r; } });
const { loadPluginRegistry } = await import(${JSON.stringify(join(PLUGINS_DIR, 'index.ts'))});
await loadPluginRegistry([], new Set(process.argv.slice(1)));
process.stdout.write(JSON.stringify([...new Set(seen.flatMap((u) => /node_modules\\/(jose|ioredis|ajv|@node-rs\\/argon2|piscina)\\//.exec(u)?.[1] ?? []))].sort()));`;
    const loaded = (...names: string[]): string[] =>
      JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code, ...names], { encoding: 'utf8' })) as string[];
    expect(loaded()).toEqual([]);
    // The check can fail: the plugins that use them do load them.
    expect(loaded('jwt', 'request-validation', 'basic-auth')).toEqual(expect.arrayContaining(['ajv', 'jose']));
  });
});

describe('custom plugins from plugin_paths', () => {
  const plugin = (name: string) => `import { definePlugin, s } from ${JSON.stringify(PDK)};
export const p = definePlugin({ name: ${JSON.stringify(name)}, version: '1.0.0', priority: 5, schema: s.object({}), create: () => ({}) });\n`;

  function dirWith(files: Record<string, string>): string {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-plugins-'));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  }

  test('one plugin per subfolder is added next to the built-ins', async () => {
    const dir = dirWith({ 'my-plugin/index.ts': plugin('my-plugin') });
    try {
      const reg = await loadPluginRegistry([dir], new Set(['correlation-id']));
      expect(reg.plugins.get('my-plugin')?.priority).toBe(5);
      expect(reg.plugins.has('correlation-id')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a name that differs from the folder is refused', async () => {
    const dir = dirWith({ 'folder-a/index.ts': plugin('other-name') });
    try {
      await expect(loadPluginRegistry([dir], new Set(['correlation-id']))).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD', message: expect.stringContaining('must equal its folder name') });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a custom plugin cannot shadow a built-in', async () => {
    const dir = dirWith({ 'correlation-id/index.ts': plugin('correlation-id') });
    try {
      await expect(loadPluginRegistry([dir], new Set(['correlation-id']))).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD' });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a missing directory is a load error, not a crash', async () => {
    await expect(loadPluginRegistry(['/nonexistent/sluice-plugins'], new Set())).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD' });
  });
});
