import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import type { SluiceConf } from '../config/types.ts';
import { TLS_SESSION_DICT } from '../contracts/tls.ts';
import type { SharedDict } from '../shdict/index.ts';

/**
 * Shared-dict zones live in the master so they outlive worker generations
 * (nginx/OpenResty: lua_shared_dict survives HUP). On reload a zone whose name
 * and size are unchanged is handed to the new workers as is; a resized or new
 * zone starts empty; a zone no longer named is dropped once the old workers exit.
 *
 * Upgrade in place: the master keeps running the code it started with, but
 * each new worker loads src/shdict from disk, which may now read zones with
 * another layout. So the master never touches a zone with the code it started
 * with: at start and at each reload it loads the shdict code on disk afresh
 * (`loadShdictCode`) and uses that code to create zones, to read their stats
 * and to release dead workers' locks. A kept zone whose stamped layout identity
 * (src/shdict/identity.ts) differs from that code's is recreated empty, with a
 * warning naming it: never handed to workers that would misread it. Workers
 * check the stamp on attach too (SHDICT_ERR_BAD_ZONE), so a file changed
 * between the master's load and a worker's fails that reload rather than
 * misreading. Old workers still draining keep the old zone until they exit.
 */
export interface Zone {
  readonly name: string;
  readonly size: number;
  readonly dict: SharedDict;
}

/** The shdict code as loaded from disk: what the next workers will run. */
export interface ShdictCode {
  readonly SharedDict: typeof SharedDict;
  /** The layout identity of this code (identity.ts LAYOUT_ID). */
  readonly layoutId: number;
  /** The identity stamped in a zone, undefined when the buffer is no zone. */
  readonly stampedIdentity: (buffer: SharedArrayBuffer) => number | undefined;
}

/** Where reconcileZones reports a zone it had to recreate (the master's error log). */
export interface ZoneLog {
  warn(obj: object, msg: string): void;
}

/** The zones a conf needs: its shared_dicts, and the TLS session cache when a tls listener has one. */
export function wantedZones(conf: SluiceConf): Record<string, number> {
  const tls = conf.server.tls.session_cache > 0 && conf.server.listen.some((l) => l.tls);
  return tls ? { ...conf.shared_dicts, [TLS_SESSION_DICT]: conf.server.tls.session_cache } : { ...conf.shared_dicts };
}

export async function reconcileZones(
  previous: ReadonlyMap<string, Zone>,
  wanted: Readonly<Record<string, number>>,
  log: ZoneLog,
  code?: ShdictCode,
): Promise<Map<string, Zone>> {
  const c = code ?? (await loadShdictCode());
  const zones = new Map<string, Zone>();
  for (const [name, size] of Object.entries(wanted)) {
    const old = previous.get(name);
    if (old !== undefined && old.size === size) {
      const { buffer } = old.dict;
      const stamped = c.stampedIdentity(buffer);
      if (stamped === c.layoutId) {
        // Same layout: keep the data; read it through the code on disk from now on.
        zones.set(name, old.dict instanceof c.SharedDict ? old : { name, size, dict: c.SharedDict.attach(buffer) });
        continue;
      }
      log.warn(
        { zone: name, size, zone_layout: hex(stamped), code_layout: hex(c.layoutId) },
        `shared dict "${name}" was written with another memory layout than the code on disk (upgraded in place?): recreated empty`,
      );
    }
    zones.set(name, { name, size, dict: c.SharedDict.create(size) });
  }
  return zones;
}

export const zoneBuffers = (zones: ReadonlyMap<string, Zone>): Record<string, SharedArrayBuffer> =>
  Object.fromEntries([...zones].map(([name, z]) => [name, z.dict.buffer]));

const hex = (id: number | undefined): string => (id === undefined ? 'none' : (id >>> 0).toString(16).padStart(8, '0'));

// ---- loading the shdict code on disk ---------------------------------------------------

const SHDICT_DIR = new URL('../shdict/', import.meta.url);
const PARAM = 'sluice-code';
let hooked = false;

/**
 * The shdict code now on disk in `dir`, as a module graph of its own: its files are
 * imported with `?sluice-code=<digest of the files>`, a query that a resolve hook passes
 * on to their relative imports. Unchanged files give the same URLs, which Node's module
 * cache answers (nothing is loaded twice); changed files give a fresh graph. src/shdict
 * imports only itself, node: builtins and msgpackr (test/unit/shdict/layout.test.ts), so
 * the digest of its own files covers everything that decides the layout.
 */
export async function loadShdictCode(dir: URL = SHDICT_DIR): Promise<ShdictCode> {
  if (!hooked) {
    registerHooks({ resolve: carryCodeQuery });
    hooked = true;
  }
  const q = `?${PARAM}=${digestOf(dir)}`;
  const [dict, identity] = (await Promise.all([import(new URL(`index.ts${q}`, dir).href), import(new URL(`identity.ts${q}`, dir).href)])) as [
    typeof import('../shdict/index.ts'),
    typeof import('../shdict/identity.ts'),
  ];
  return { SharedDict: dict.SharedDict, layoutId: identity.LAYOUT_ID, stampedIdentity: identity.stampedIdentity };
}

/** sha256 of the .ts files in `dir` (names and contents), 16 hex digits. */
function digestOf(dir: URL): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()) {
    h.update(f).update('\0').update(readFileSync(new URL(f, dir))).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

type Resolve = Parameters<typeof registerHooks>[0]['resolve'] & {};

/** A relative import from a module loaded with ?sluice-code=X is loaded with it too. */
const carryCodeQuery: Resolve = (specifier, context, next) => {
  const resolved = next(specifier, context);
  const parent = context.parentURL;
  if (parent === undefined || !specifier.startsWith('.') || !parent.includes(`${PARAM}=`) || !resolved.url.startsWith('file:')) return resolved;
  const tag = new URL(parent).searchParams.get(PARAM);
  if (tag === null) return resolved;
  const url = new URL(resolved.url);
  url.searchParams.set(PARAM, tag);
  return { ...resolved, url: url.href };
};
