import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { loadConfWithPlugins } from '../../../src/plugins/load-conf.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-plugconf-'));
afterAll(() => rmSync(dir, { recursive: true }));

const conf = (yaml: string) => {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return file;
};

test('plugin confs get their defaults and faults carry the YAML position and path', async () => {
  const ok = await loadConfWithPlugins(conf('plugins:\n  correlation-id: {}\nroutes:\n  - name: r\n    paths: [/]\n    return: { status: 200 }\n'));
  expect(ok.ok && ok.conf.plugins['correlation-id']).toEqual({ header_name: 'X-Request-Id', generator: 'uuid#counter', echo_downstream: false });
  const bad = await loadConfWithPlugins(conf('routes:\n  - name: r\n    paths: [/]\n    return: { status: 200 }\n    plugins:\n      ip-restriction: { allow: ["10.0.0.0/33"] }\n      nope: {}\n'));
  expect(bad.ok).toBe(false);
  const lines = bad.ok ? [] : bad.issues.map((i) => `${i.line}:${i.col}: ${i.path}: ${i.message}`);
  expect(lines).toEqual(expect.arrayContaining([
    expect.stringMatching(/^6:\d+: routes\[0\]\.plugins\.ip-restriction\.allow\[0\]: invalid IP or CIDR/),
    expect.stringMatching(/^7:\d+: routes\[0\]\.plugins\.nope: unknown plugin "nope"/),
  ]));
});
