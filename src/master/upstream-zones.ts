import type { UpstreamConf } from '../config/types.ts';
import { createUpstreamZone } from '../contracts/upstream-zone.ts';

/**
 * The upstreams' balancing zones (upstream-zone.ts) live in the master, so
 * they outlive worker generations as nginx's `upstream zone` outlives a HUP:
 * an upstream whose targets are unchanged keeps its health verdicts, passive
 * down marks, in-flight counts (the old workers' requests still count while
 * they drain) and round-robin position. Any change to the list (an address,
 * a weight, a backup flag, the order) gives a fresh zone: slots are by target
 * index and the weights are the round-robin state's meaning.
 */
export interface UpstreamZone {
  /** Identity of the target list the zone was made for. */
  readonly key: string;
  readonly buffer: SharedArrayBuffer;
}

const targetsKey = (u: UpstreamConf): string => JSON.stringify(u.targets.map((t) => [t.address, t.weight, t.backup]));

/** The zones for `upstreams`: `previous`'s where the targets are unchanged, fresh ones elsewhere. `previous` is left as is (a failed reload goes back to it). */
export function reconcileUpstreamZones(
  previous: ReadonlyMap<string, UpstreamZone>,
  upstreams: Readonly<Record<string, UpstreamConf>>,
): Map<string, UpstreamZone> {
  const zones = new Map<string, UpstreamZone>();
  for (const [name, u] of Object.entries(upstreams)) {
    const key = targetsKey(u);
    const old = previous.get(name);
    zones.set(name, old?.key === key ? old : { key, buffer: createUpstreamZone(u.targets.length) });
  }
  return zones;
}

export const upstreamZoneBuffers = (zones: ReadonlyMap<string, UpstreamZone>): Record<string, SharedArrayBuffer> =>
  Object.fromEntries([...zones].map(([name, z]) => [name, z.buffer]));
