import { expect, test } from 'vitest';
import { definePlugin, s } from '../../../src/plugins/pdk/index.ts';
import { harness, startHarness } from '../../helpers/plugin-harness.ts';

/** Records each hook with the env it got, so order and env identity can be checked. */
function recorder() {
  const calls: string[] = [];
  const envs = new Set<object>();
  const def = definePlugin({
    name: 'recorder', version: '1.0.0', priority: 1,
    schema: s.object({ tag: s.oneOf(['global', 'route'], { default: 'route', description: 'which instance' }) }),
    init: (env) => { calls.push('init'); envs.add(env); },
    create: (conf, env) => {
      calls.push(`create ${conf.tag}`);
      envs.add(env);
      return { dispose: async () => { await Promise.resolve(); calls.push(`dispose ${conf.tag}`); } };
    },
    dispose: (env) => { calls.push('plugin dispose'); envs.add(env); },
  });
  return { def, calls, envs };
}

test('the harness runs the hooks as a worker does: init before any create; every instance disposed, then the plugin, with one env', async () => {
  const { def, calls, envs } = recorder();
  const h = await startHarness([def], { recorder: { tag: 'route' } }, { globals: { recorder: { tag: 'global' } } });
  expect(calls).toEqual(['init', 'create global', 'create route']);
  await h.dispose();
  // Instances at once (either may finish first), the plugin after both.
  expect(calls.slice(3, 5).sort()).toEqual(['dispose global', 'dispose route']);
  expect(calls.slice(5)).toEqual(['plugin dispose']);
  expect(envs.size).toBe(1);
});

test('harness() refuses a plugin with an init rather than skip it', () => {
  expect(() => harness([recorder().def], { recorder: {} })).toThrow('plugin recorder has an init: use startHarness');
});
