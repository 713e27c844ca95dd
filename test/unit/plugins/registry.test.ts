import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { BUILTIN_PLUGINS, loadPluginRegistry } from '../../../src/plugins/index.ts';

const PLUGINS_DIR = fileURLToPath(new URL('../../../src/plugins/', import.meta.url));
const PDK = fileURLToPath(new URL('../../../src/plugins/pdk/index.ts', import.meta.url));

describe('built-in registry', () => {
  test('every built-in lives in the folder named as it, and every plugin folder is registered', () => {
    for (const def of BUILTIN_PLUGINS) expect(readdirSync(join(PLUGINS_DIR, def.name))).toContain('index.ts');
    const folders = readdirSync(PLUGINS_DIR, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'pdk' && d.name !== 'example').map((d) => d.name).sort();
    expect(BUILTIN_PLUGINS.map((d) => d.name).sort()).toEqual(folders);
  });

  test('the YAML key is the name: the schema map is keyed by it', async () => {
    const reg = await loadPluginRegistry([]);
    for (const def of BUILTIN_PLUGINS) expect(reg.schemas.get(def.name)).toBe(def.schema);
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
      const reg = await loadPluginRegistry([dir]);
      expect(reg.plugins.get('my-plugin')?.priority).toBe(5);
      expect(reg.plugins.has('correlation-id')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a name that differs from the folder is refused', async () => {
    const dir = dirWith({ 'folder-a/index.ts': plugin('other-name') });
    try {
      await expect(loadPluginRegistry([dir])).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD', message: expect.stringContaining('must equal its folder name') });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a custom plugin cannot shadow a built-in', async () => {
    const dir = dirWith({ 'correlation-id/index.ts': plugin('correlation-id') });
    try {
      await expect(loadPluginRegistry([dir])).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD' });
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a missing directory is a load error, not a crash', async () => {
    await expect(loadPluginRegistry(['/nonexistent/sluice-plugins'])).rejects.toMatchObject({ code: 'GW_ERR_PLUGIN_LOAD' });
  });
});
