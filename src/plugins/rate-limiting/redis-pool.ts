import type { PluginEnv } from '../pdk/index.ts';
import type { LimitClient, RedisOptions } from './redis.ts';

type RedisModule = typeof import('./redis.ts');

/**
 * The Redis clients of one worker, one per server: every rate-limiting
 * instance naming the same `url` (with the same `timeout`, a client option)
 * shares one connection, however many routes use it. ioredis is imported
 * with the first redis policy, so a conf without one never loads it.
 */
class RedisPool {
  private module: Promise<RedisModule> | null = null;
  private readonly clients = new Map<string, Promise<LimitClient>>();

  client(opts: RedisOptions): Promise<LimitClient> {
    const key = `${opts.timeout} ${opts.url}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      this.module ??= import('./redis.ts');
      client = this.module.then((m) => m.connectRedis(opts));
      // A failed import surfaces in each request's check (logged there); never as an unhandled rejection.
      client.catch(() => {});
      this.clients.set(key, client);
    }
    return client;
  }

  async close(): Promise<void> {
    if (this.module === null) return;
    const m = await this.module;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map(async (p) => m.closeRedis(await p)));
  }
}

/**
 * Pools by worker: `env` is one object per plugin and worker, given to every
 * `create` and to `dispose`, so the pool lives exactly as long as the worker's
 * instances, and two workers (or two test harnesses in one process) never
 * share a client.
 */
const pools = new WeakMap<PluginEnv, RedisPool>();

export function redisPool(env: PluginEnv): RedisPool {
  let pool = pools.get(env);
  if (pool === undefined) {
    pool = new RedisPool();
    pools.set(env, pool);
  }
  return pool;
}

/** Closes the worker's clients; called by the plugin's `dispose`, after every instance's. */
export async function closeRedisPool(env: PluginEnv): Promise<void> {
  const pool = pools.get(env);
  pools.delete(env);
  await pool?.close();
}
