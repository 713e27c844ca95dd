/** The benches' BENCH_* settings: read once at start, refused with the variable's name when malformed. */

export function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v}: expected a whole number`);
  return n;
}

/** A CPU list as `taskset -c` takes it (2, 2-3, 2,5), or null when unset. */
export function envCpu(name: string): string | null {
  const v = process.env[name] ?? '';
  if (v === '') return null;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw new Error(`${name}=${v}: expected a CPU list as taskset -c takes (2, 2-3, 2,5)`);
  return v;
}
