import { Redis } from 'ioredis';

/**
 * Checks every counter of a request and, only if all pass, counts them: one
 * script, run atomically by the Redis server, so gateways on several hosts
 * share one exact limit. KEYS: per counter, its current then its previous
 * window key. ARGV: per counter, its limit, the previous window's weight (0
 * for fixed windows) and its ttl in ms. Returns 0 and per counter its current
 * and previous counts; or, refused, -1 and for every counter that refuses its
 * 1-based index and its current and previous counts (Retry-After waits for
 * all of them).
 */
const SCRIPT = `
local n = #KEYS / 2
local prev = {}
local refused = { -1 }
for i = 1, n do
  local limit = tonumber(ARGV[3 * i - 2])
  local weight = tonumber(ARGV[3 * i - 1])
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local p = 0
  if weight > 0 then p = tonumber(redis.call('GET', KEYS[2 * i]) or '0') end
  prev[i] = p
  if p * weight + cur + 1 > limit then
    refused[#refused + 1] = i
    refused[#refused + 1] = cur
    refused[#refused + 1] = p
  end
end
if #refused > 1 then return refused end
local out = { 0 }
for i = 1, n do
  local c = redis.call('INCR', KEYS[2 * i - 1])
  if c == 1 then redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[3 * i]) end
  out[2 * i] = c
  out[2 * i + 1] = prev[i]
end
return out
`;

interface LimitClient extends Redis {
  sluiceRateLimit(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
}

export interface RedisOptions {
  readonly url: string;
  readonly timeout: number;
}

/**
 * A client that fails fast while Redis is away (no offline queue) and keeps
 * reconnecting. Resolves once it is ready or its first attempt failed, so the
 * first requests are counted in Redis rather than failed over while it connects.
 */
export function connectRedis(opts: RedisOptions): Promise<LimitClient> {
  const client = new Redis(opts.url, {
    connectTimeout: opts.timeout,
    commandTimeout: opts.timeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect forever, backing off to 1 s: the limiter must notice Redis coming back.
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  }) as LimitClient;
  client.defineCommand('sluiceRateLimit', { lua: SCRIPT });
  // Connection errors surface as failed commands, which the plugin logs once per outage.
  client.on('error', () => {});
  return new Promise((resolve) => {
    const settled = (): void => {
      client.off('ready', settled);
      client.off('error', settled);
      resolve(client);
    };
    client.once('ready', settled);
    client.once('error', settled);
  });
}

/**
 * QUIT when connected: Redis answers, then frees the connection at once.
 * Otherwise (down, reconnecting) just stop: drop the socket and the retries.
 */
export async function closeRedis(client: LimitClient): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // No answer within `timeout`: fall through and drop it.
    }
  }
  client.disconnect();
}

export type { LimitClient };
