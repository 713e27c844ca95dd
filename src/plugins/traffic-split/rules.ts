import { allExact, requestValue } from '../pdk/index.ts';
import type { RequestCtx, ValueFn } from '../pdk/index.ts';
import { compileWhen, valuesOf } from './conditions.ts';
import type { Cond } from './conditions.ts';
import { compileUpstream, compileWeighted } from './targets.ts';
import type { Send } from './targets.ts';
import type { Conf, RuleConf } from './schema.ts';

/**
 * The rules of one conf, compiled so that hundreds of tenants cost one lookup.
 *
 * A rule whose `when` is a single identity field with exact values (the
 * tenant rule, `when: { company_id: ["42"] }`) is not tested one by one: each
 * such field has a map from value to the rules that value matches, in rule
 * order. Every other rule is "general" and keeps its tests. A request then
 * looks its identity up once per indexed field and walks the general rules
 * and the looked-up rules together by rule index, so the first rule that
 * matches (and sends) still wins exactly as if every rule were tried in
 * order: 900 tenant rules and a few templates cost a map lookup and a few
 * tests, not 900 comparisons.
 */

interface Rule {
  /** Position in `rules`: the order "first match wins" follows. */
  readonly index: number;
  /** Empty for an indexed rule, whose one test is its map lookup. */
  readonly conds: readonly Cond[];
  readonly send: Send;
}

/** One identity field's index: value -> the rules it matches, in rule order. */
interface FieldIndex {
  readonly read: ValueFn;
  readonly byValue: ReadonlyMap<string, readonly Rule[]>;
}

export interface RuleTable {
  readonly indexes: readonly FieldIndex[];
  /** Rules not in an index, in rule order. */
  readonly general: readonly Rule[];
  /** Per request scratch, one slot per index (the access phase is synchronous, so one per table is enough). */
  readonly found: (readonly Rule[])[];
  readonly cursors: Int32Array;
}

const INDEXABLE: readonly string[] = ['consumer', 'user_id', 'company_id'];
const NONE: readonly Rule[] = [];

/** The identity field and values a rule can be indexed by: a `when` of that one field, with exact values only; else null. */
function indexable(rule: RuleConf): { readonly field: string; readonly values: string[] } | null {
  const entries = rule.when === undefined ? [] : Object.entries(rule.when);
  if (entries.length !== 1) return null;
  const [field, raw] = entries[0]!;
  const values = valuesOf(raw);
  return INDEXABLE.includes(field) && allExact(values) ? { field, values } : null;
}

export function compileRules(conf: Conf, random: () => number): RuleTable {
  const sticky = conf.sticky === null ? null : requestValue(conf.sticky);
  const byField = new Map<string, Map<string, Rule[]>>();
  const general: Rule[] = [];
  conf.rules.forEach((r, index) => {
    const send = r.upstream !== undefined ? compileUpstream(r.upstream) : compileWeighted(r.weighted!, sticky, random);
    const by = indexable(r);
    if (by === null) {
      general.push({ index, conds: r.when === undefined ? [] : compileWhen(r.when), send });
      return;
    }
    let byValue = byField.get(by.field);
    if (byValue === undefined) byField.set(by.field, (byValue = new Map()));
    const rule: Rule = { index, conds: [], send };
    // A value listed twice in one rule must not enter its list twice.
    for (const v of new Set(by.values)) {
      const list = byValue.get(v);
      if (list === undefined) byValue.set(v, [rule]);
      else list.push(rule);
    }
  });
  const indexes = [...byField].map(([field, byValue]) => ({ read: requestValue(field), byValue }));
  return { indexes, general, found: indexes.map(() => NONE), cursors: new Int32Array(indexes.length) };
}

function matches(rule: Rule, ctx: RequestCtx): boolean {
  for (const c of rule.conds) if (!c(ctx)) return false;
  return true;
}

/**
 * Sends the request by the first rule that matches and names a defined
 * upstream; false when none does (the route's own upstream stays).
 */
export function chooseUpstream(t: RuleTable, ctx: RequestCtx): boolean {
  const { indexes, general, found, cursors } = t;
  for (let f = 0; f < indexes.length; f++) {
    const v = indexes[f]!.read(ctx);
    found[f] = v === undefined || v === null || v === '' ? NONE : indexes[f]!.byValue.get(v) ?? NONE;
    cursors[f] = 0;
  }
  let g = 0;
  for (;;) {
    // The next rule by index: the next general one, or the next one an index found.
    let next = g < general.length ? general[g]!.index : Infinity;
    let from = -1;
    for (let f = 0; f < found.length; f++) {
      const r = found[f]![cursors[f]!];
      if (r !== undefined && r.index < next) {
        next = r.index;
        from = f;
      }
    }
    let rule: Rule;
    if (from >= 0) rule = found[from]![cursors[from]!++]!;
    else if (g < general.length) {
      rule = general[g++]!;
      if (!matches(rule, ctx)) continue;
    } else return false;
    if (rule.send(ctx)) return true;
  }
}
