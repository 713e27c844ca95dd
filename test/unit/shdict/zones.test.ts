import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { reconcileZones, type ShdictCode, type Zone } from '../../../src/master/zones.ts';
import { LAYOUT_ID, stampedIdentity } from '../../../src/shdict/identity.ts';
import { SharedDict, type ShdictError } from '../../../src/shdict/index.ts';
import { H_LAYOUT } from '../../../src/shdict/layout.ts';

/** The code under test, as the master would load it from disk. */
const code: ShdictCode = { SharedDict, layoutId: LAYOUT_ID, stampedIdentity };

function recordingLog(): { warn: (obj: object, msg: string) => void; lines: { obj: Record<string, unknown>; msg: string }[] } {
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  return { lines, warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) };
}

/** Stamps `buffer` as if another layout had formatted it (an older or newer build). */
function restamp(buffer: SharedArrayBuffer): void {
  new Int32Array(buffer)[H_LAYOUT] = LAYOUT_ID ^ 0x1000;
}

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (e) {
    return (e as ShdictError).code;
  }
  return undefined;
};

describe('shdict layout identity', () => {
  it('a zone is stamped with the layout identity of the code that formatted it', () => {
    const d = SharedDict.create(65536);
    expect(stampedIdentity(d.buffer)).toBe(LAYOUT_ID);
    expect(stampedIdentity(new SharedArrayBuffer(65536))).toBeUndefined();
  });

  it('attach refuses a zone stamped with another layout identity, never reading it', () => {
    const d = SharedDict.create(65536);
    d.set('k', 'v');
    restamp(d.buffer);
    expect(codeOf(() => SharedDict.attach(d.buffer))).toBe('SHDICT_ERR_BAD_ZONE');
    expect(() => SharedDict.attach(d.buffer)).toThrow(/layout [0-9a-f]{8} but this code reads layout [0-9a-f]{8}/);
    expect(codeOf(() => SharedDict.releaseLocksOwnedBy(d.buffer, 3))).toBe('SHDICT_ERR_BAD_ZONE');
  });
});

describe('reconcileZones', () => {
  it('keeps a zone of unchanged name, size and layout with its data; resizes and new names start empty', async () => {
    const log = recordingLog();
    const first = await reconcileZones(new Map(), { limits: 65536, cache: 65536, gone: 65536 }, log, code);
    first.get('limits')!.dict.incr('hits', 1, 0);
    first.get('cache')!.dict.set('page', 'body');
    const second = await reconcileZones(first, { limits: 65536, cache: 131072, fresh: 65536 }, log, code);
    expect(second.get('limits')).toBe(first.get('limits'));
    expect(second.get('limits')!.dict.get('hits')).toBe(1);
    expect(second.get('cache')!.dict.buffer).not.toBe(first.get('cache')!.dict.buffer);
    expect(second.get('cache')!.dict.count()).toBe(0);
    expect(second.get('fresh')!.dict.count()).toBe(0);
    expect(second.has('gone')).toBe(false);
    expect(log.lines).toEqual([]);
  });

  it('recreates empty, with a warning naming it, a zone stamped with another layout identity', async () => {
    const log = recordingLog();
    const first = await reconcileZones(new Map(), { limits: 65536, cache: 65536 }, log, code);
    first.get('limits')!.dict.incr('hits', 1, 0);
    first.get('cache')!.dict.set('page', 'body');
    const old = first.get('cache')!.dict.buffer;
    restamp(old);
    const second = await reconcileZones(first, { limits: 65536, cache: 65536 }, log, code);
    const cache = second.get('cache')!;
    expect(cache.dict.buffer).not.toBe(old);
    expect(stampedIdentity(cache.dict.buffer)).toBe(LAYOUT_ID);
    expect(cache.dict.count()).toBe(0);
    expect(cache.dict.get('page')).toBeUndefined();
    expect(second.get('limits')!.dict.get('hits')).toBe(1);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.obj).toMatchObject({ zone: 'cache', size: 65536, code_layout: (LAYOUT_ID >>> 0).toString(16).padStart(8, '0') });
    expect(log.lines[0]!.msg).toMatch(/shared dict "cache" .*recreated empty/);
  });

  it('recreates a zone whose buffer holds no zone at all', async () => {
    const log = recordingLog();
    const broken: Zone = { name: 'x', size: 65536, dict: { buffer: new SharedArrayBuffer(65536) } as SharedDict };
    const zones = await reconcileZones(new Map([['x', broken]]), { x: 65536 }, log, code);
    expect(zones.get('x')!.dict.buffer).not.toBe(broken.dict.buffer);
    expect(log.lines[0]!.obj).toMatchObject({ zone: 'x', zone_layout: 'none' });
  });
});

describe('upgrade in place (real Node, the loader the master uses)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('loads the shdict code on disk afresh only when it changed, and recreates a zone whose layout changed', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    dir = mkdtempSync(join(tmpdir(), 'sluice-shdict-upgrade-'));
    cpSync(join(root, 'src/shdict'), join(dir, 'shdict'), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules')); // msgpackr, as beside src/
    const script = join(dir, 'upgrade.mjs');
    writeFileSync(
      script,
      `
import { readFileSync, writeFileSync } from 'node:fs';
import { loadShdictCode, reconcileZones } from ${JSON.stringify(join(root, 'src/master/zones.ts'))};
const dir = new URL(${JSON.stringify(`file://${dir}/shdict/`)});
const warnings = [];
const log = { warn: (obj, msg) => warnings.push({ obj, msg }) };
const edit = (file, from, to) => {
  const path = new URL(file, dir);
  const src = readFileSync(path, 'utf8');
  if (!src.includes(from)) throw new Error('no ' + from + ' in ' + file);
  writeFileSync(path, src.replace(from, to));
};
const out = {};

const v1 = await loadShdictCode(dir);
let zones = await reconcileZones(new Map(), { limits: 65536 }, log, v1);
zones.get('limits').dict.set('k', 'v');
const buffer1 = zones.get('limits').dict.buffer;
out.sameCodeSameModule = (await loadShdictCode(dir)).SharedDict === v1.SharedDict;

// A change that leaves the layout alone: new code, same identity, data kept.
edit('reads.ts', 'Keyed reads.', 'Keyed reads (v2).');
const v2 = await loadShdictCode(dir);
out.refactorNewModule = v2.SharedDict !== v1.SharedDict;
out.refactorSameLayout = v2.layoutId === v1.layoutId;
zones = await reconcileZones(zones, { limits: 65536 }, log, v2);
out.refactorKeptBuffer = zones.get('limits').dict.buffer === buffer1;
out.refactorKeptData = zones.get('limits').dict.get('k');
out.refactorRewrapped = zones.get('limits').dict instanceof v2.SharedDict;

// The upgrade: one more item field moves every offset after it.
edit('layout.ts', "['stamp', i32],", "['stamp', i32],\\n  ['extra', i32],");
const v3 = await loadShdictCode(dir);
out.upgradeNewLayout = v3.layoutId !== v1.layoutId;
zones = await reconcileZones(zones, { limits: 65536 }, log, v3);
const d3 = zones.get('limits').dict;
out.upgradeNewBuffer = d3.buffer !== buffer1;
out.upgradeEmpty = d3.count();
out.upgradeStamp = v3.stampedIdentity(d3.buffer) === v3.layoutId;
d3.set('k2', 'v2');
d3.checkInvariants();
out.upgradeWorks = d3.get('k2');
const refuse = (C, b) => { try { C.attach(b); return 'attached'; } catch (e) { return e.code; } };
out.oldCodeOnNewZone = refuse(v1.SharedDict, d3.buffer);
out.newCodeOnOldZone = refuse(v3.SharedDict, buffer1);
out.warnings = warnings.map((w) => [w.obj.zone, w.msg]);
console.log(JSON.stringify(out));
`,
    );
    const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr.replace(/.*ExperimentalWarning.*\n|.*--trace-warnings.*\n/g, '')).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({
      sameCodeSameModule: true,
      refactorNewModule: true,
      refactorSameLayout: true,
      refactorKeptBuffer: true,
      refactorKeptData: 'v',
      refactorRewrapped: true,
      upgradeNewLayout: true,
      upgradeNewBuffer: true,
      upgradeEmpty: 0,
      upgradeStamp: true,
      upgradeWorks: 'v2',
      oldCodeOnNewZone: 'SHDICT_ERR_BAD_ZONE',
      newCodeOnOldZone: 'SHDICT_ERR_BAD_ZONE',
      warnings: [['limits', expect.stringMatching(/shared dict "limits" .*recreated empty/)]],
    });
  });
});
