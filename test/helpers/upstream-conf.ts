import type { Algorithm, PassiveHealthcheckConf, UpstreamConf } from '../../src/config/types.ts';

/**
 * A resolved upstream conf as the loader would produce it, for balancer tests
 * and benches: targets as `[address, weight, 'backup'?]`, every other key at
 * its default.
 */
export function upstreamConf(
  targets: readonly (readonly [address: string, weight: number, backup?: 'backup' | undefined])[],
  algorithm: Algorithm = 'round-robin',
  passive: PassiveHealthcheckConf | null = null,
): UpstreamConf {
  return {
    name: 'u',
    algorithm,
    hash_on: 'ip',
    targets: targets.map(([address, weight, backup]) => {
      const colon = address.lastIndexOf(':');
      return { address, host: address.slice(0, colon), port: Number(address.slice(colon + 1)), weight, backup: backup === 'backup' };
    }),
    keepalive: 64,
    connect_timeout: 5000,
    send_timeout: 60000,
    read_timeout: 60000,
    retries: 1,
    host_header: null,
    tls: null,
    healthcheck: { active: null, passive },
  };
}
