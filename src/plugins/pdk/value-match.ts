/**
 * Accepted values as route `headers:` and traffic-split's `when` write them:
 * each one exact, or `~ regex` matched against the whole value (anchored at
 * both ends, so `~ acme` never accepts `acme-evil`). Checked by the conf
 * schema with {@link valuePatternFault}, compiled once per conf with
 * {@link valueMatcher}.
 */
const REGEX = /^~\s+(.*)$/;

/** Why `v` cannot be compiled (a bad regex), or null. */
export function valuePatternFault(v: string): string | null {
  const m = REGEX.exec(v);
  if (m === null) return null;
  try {
    new RegExp(m[1]!);
  } catch (err) {
    return `bad regex: ${(err as Error).message}`;
  }
  return null;
}

/** Whether `values` are all exact (no `~ regex`): such a list can be indexed by value. */
export const allExact = (values: readonly string[]): boolean => values.every((v) => !REGEX.test(v));

/**
 * A test for a value against the accepted `values`: a string comparison for
 * one exact value, a set lookup for several, then the regexes in order.
 */
export function valueMatcher(values: readonly string[]): (v: string) => boolean {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const v of values) {
    const m = REGEX.exec(v);
    if (m === null) exact.add(v);
    else patterns.push(new RegExp(`^(?:${m[1]!})$`));
  }
  if (patterns.length === 0) {
    if (exact.size === 1) {
      const only = values[0]!;
      return (v) => v === only;
    }
    return (v) => exact.has(v);
  }
  return (v) => exact.has(v) || patterns.some((re) => re.test(v));
}
