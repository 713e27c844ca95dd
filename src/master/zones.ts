import { SharedDict } from '../shdict/index.ts';

/**
 * Shared-dict zones live in the master so they outlive worker generations
 * (nginx/OpenResty: lua_shared_dict survives HUP). On reload a zone whose name
 * and size are unchanged is handed to the new workers as is; a resized or new
 * zone starts empty; a zone no longer named is dropped once the old workers exit.
 */
export interface Zone {
  readonly name: string;
  readonly size: number;
  readonly dict: SharedDict;
}

export function reconcileZones(previous: ReadonlyMap<string, Zone>, wanted: Readonly<Record<string, number>>): Map<string, Zone> {
  const zones = new Map<string, Zone>();
  for (const [name, size] of Object.entries(wanted)) {
    const old = previous.get(name);
    zones.set(name, old !== undefined && old.size === size ? old : { name, size, dict: SharedDict.create(size) });
  }
  return zones;
}

export const zoneBuffers = (zones: ReadonlyMap<string, Zone>): Record<string, SharedArrayBuffer> =>
  Object.fromEntries([...zones].map(([name, z]) => [name, z.dict.buffer]));
