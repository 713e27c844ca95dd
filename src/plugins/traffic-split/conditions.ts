import { addressSet, requestValue, valueMatcher } from '../pdk/index.ts';
import type { RequestCtx } from '../pdk/index.ts';
import type { When, WhenValues } from './schema.ts';

/** One `when` key's test, compiled once per conf. */
export type Cond = (ctx: RequestCtx) => boolean;

/** A `when` value as the list of strings it accepts (integers as written in decimal). */
export const valuesOf = (v: WhenValues): string[] => (Array.isArray(v) ? v : [v]).map(String);

/**
 * A value the request does not have never matches, not even `~ .*`: a rule
 * on company_id is for requests whose auth plugin verified one.
 */
function valueCond(key: string, values: WhenValues): Cond {
  const read = requestValue(key);
  const accepts = valueMatcher(valuesOf(values));
  return (ctx) => {
    const v = read(ctx);
    return v !== undefined && v !== null && v !== '' && accepts(v);
  };
}

/** `ip`: the client address after server.real_ip, in one of the CIDRs. */
function ipCond(values: WhenValues): Cond {
  const set = addressSet(valuesOf(values))!;
  return (ctx) => set.has(ctx.client);
}

/** The tests of a `when`, one per key; all must pass. */
export const compileWhen = (when: When): Cond[] =>
  Object.entries(when).map(([key, values]) => (key === 'ip' ? ipCond(values) : valueCond(key, values)));
