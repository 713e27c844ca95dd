import type { ConsumerConf } from '../../config/types.ts';
import type { Consumer, ConsumerCredential, Consumers, Identity } from '../../plugins/pdk/types.ts';

/**
 * The conf's consumers, indexed once per conf: by username, and their
 * credentials grouped by auth plugin. Auth plugins build their own O(1)
 * lookup (key → consumer) from `credentials(plugin)` in `create`.
 */
export function compileConsumers(confs: readonly ConsumerConf[]): Consumers {
  const byName = new Map<string, Consumer>();
  const byPlugin = new Map<string, ConsumerCredential[]>();
  const anonymous = new Map<string, Identity>();
  for (const c of confs) {
    const identity: Identity = Object.freeze({
      consumer: c.username,
      user_id: c.attributes['user_id'] ?? null,
      company_id: c.attributes['company_id'] ?? null,
      anonymous: false,
      attributes: c.attributes,
    });
    const consumer: Consumer = Object.freeze({ username: c.username, attributes: c.attributes, identity });
    byName.set(c.username, consumer);
    anonymous.set(c.username, Object.freeze({ ...identity, anonymous: true }));
    for (const [plugin, list] of Object.entries(c.credentials)) {
      let creds = byPlugin.get(plugin);
      if (creds === undefined) byPlugin.set(plugin, (creds = []));
      for (const credential of list) creds.push(Object.freeze({ consumer, credential }));
    }
  }
  const none: readonly ConsumerCredential[] = Object.freeze([]);
  return {
    byUsername: (username) => byName.get(username),
    credentials: (plugin) => byPlugin.get(plugin) ?? none,
    anonymous: (username) => anonymous.get(username),
  };
}
