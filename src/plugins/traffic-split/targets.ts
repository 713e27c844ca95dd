import { murmur3, requestValue } from '../pdk/index.ts';
import type { RequestCtx, ValueFn } from '../pdk/index.ts';
import type { RuleConf } from './schema.ts';

/**
 * Where a rule sends a request, compiled once per conf: true when it did,
 * false when the upstream it names is not defined (a template filled with a
 * tenant that has no upstream of its own), so the next rule is tried. The
 * per-request cost is filling a template (one concatenation per field) and
 * `ctx.useUpstream`, one map lookup.
 */
export type Send = (ctx: RequestCtx) => boolean;

const FIELD = /\{([^{}]+)\}/g;

/** An upstream name, or a template like `tenant-{company_id}` (fields checked by the schema). */
export function compileUpstream(name: string): Send {
  const texts = name.split(FIELD).filter((_, i) => i % 2 === 0);
  const fields = [...name.matchAll(FIELD)].map((m) => requestValue(m[1]!));
  if (fields.length === 0) return (ctx) => ctx.useUpstream(name);
  return (ctx) => {
    let filled = texts[0]!;
    for (let i = 0; i < fields.length; i++) {
      const v = fields[i]!(ctx);
      // No such identity field: the template names nothing, on to the next rule.
      if (v === undefined || v === null || v === '') return false;
      filled += v + texts[i + 1]!;
    }
    return ctx.useUpstream(filled);
  };
}

/** 2^32: murmur3's range, so that hash / 2^32 is a point in [0, 1). */
const HASH_RANGE = 4294967296;

/**
 * A weighted choice: a point in [0, total) picks the entry whose share holds
 * it. With `sticky`, the point comes from murmur3 of the key's value, so a
 * tenant always lands on one side and sequential ids spread like random ones
 * (its avalanche); without it, or for a request without the key, from
 * `random` (env.random) per request.
 */
export function compileWeighted(entries: NonNullable<RuleConf['weighted']>, sticky: ValueFn | null, random: () => number): Send {
  const live = entries.filter((e) => e.weight > 0);
  const sends = live.map((e) => compileUpstream(e.upstream));
  const bounds = new Float64Array(live.length);
  let total = 0;
  live.forEach((e, i) => (bounds[i] = total += e.weight));
  const last = live.length - 1;
  return (ctx) => {
    const key = sticky === null ? undefined : sticky(ctx);
    const point = (key === undefined || key === null || key === '' ? random() : murmur3(key) / HASH_RANGE) * total;
    let i = 0;
    while (i < last && point >= bounds[i]!) i++;
    return sends[i]!(ctx);
  };
}
