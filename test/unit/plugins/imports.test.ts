import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

/**
 * DESIGN.md §5: plugins import only the pdk. A plugin folder may use its own
 * files, node: builtins and npm packages, and reach the gateway only through
 * `../pdk/index.ts` — never src/worker, src/master, src/config or src/shdict.
 */
const PLUGINS = new URL('../../../src/plugins/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const folders = readdirSync(PLUGINS).filter((f) => f !== 'pdk' && statSync(join(PLUGINS, f)).isDirectory());

test.each(folders)('%s imports only its own files, the pdk, builtins and packages', (folder) => {
  for (const file of files(join(PLUGINS, folder))) {
    const specs = [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
    for (const spec of specs) {
      const ok = !spec.startsWith('.') || spec === '../pdk/index.ts' || spec.startsWith('./');
      expect(ok, `${file}: ${spec}`).toBe(true);
    }
  }
});
