/**
 * Durations and sizes as nginx writes them. The loader calls these on every
 * duration/size field and reports the thrown message at the offending node.
 */

/** Thrown for a duration or size that cannot be read; `message` says why, for the conf issue. */
export class UnitError extends Error {
  readonly code: 'ERR_CONF_DURATION' | 'ERR_CONF_SIZE';
  constructor(code: 'ERR_CONF_DURATION' | 'ERR_CONF_SIZE', message: string) {
    super(message);
    this.name = 'UnitError';
    this.code = code;
  }
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// Largest unit first, each at most once, as nginx's ngx_parse_time accepts `1h30m` but not `30m1h`.
const DURATION_ORDER = ['d', 'h', 'm', 's', 'ms'];
const DURATION_PART = /(\d+)(ms|s|m|h|d)/y;

/**
 * Milliseconds from `500ms`, `10s`, `5m`, `1h`, `1d` or a combination such as `1m30s`.
 * A bare number is refused (is `30` seconds or milliseconds?) except 0, which is 0 in any unit.
 */
export function parseDuration(s: string | number): number {
  if (s === 0) return 0;
  if (typeof s !== 'string') {
    throw new UnitError('ERR_CONF_DURATION', `duration must be a string with a unit (ms, s, m, h, d), got ${JSON.stringify(s)}`);
  }
  const text = s.trim();
  if (text === '') throw new UnitError('ERR_CONF_DURATION', 'duration is empty');
  let total = 0;
  let lastRank = -1;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const at = DURATION_PART.lastIndex;
    const m = DURATION_PART.exec(text);
    if (m === null) {
      throw new UnitError('ERR_CONF_DURATION', `invalid duration "${s}": expected a number and a unit (ms, s, m, h, d) at "${text.slice(at)}"`);
    }
    const unit = m[2] as string;
    const rank = DURATION_ORDER.indexOf(unit);
    if (rank <= lastRank) {
      throw new UnitError('ERR_CONF_DURATION', `invalid duration "${s}": units must go from largest to smallest, each once`);
    }
    lastRank = rank;
    total += Number(m[1]) * (DURATION_UNITS[unit] as number);
  }
  if (!Number.isSafeInteger(total)) throw new UnitError('ERR_CONF_DURATION', `duration "${s}" is too large`);
  return total;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes from `512k`, `10m`, `1g` (case-insensitive, powers of 1024 as nginx) or a bare integer of bytes. */
export function parseSize(s: string | number): number {
  if (typeof s === 'number') {
    if (Number.isSafeInteger(s) && s >= 0) return s;
    throw new UnitError('ERR_CONF_SIZE', `size must be a non-negative integer of bytes or a string like 512k, 10m, 1g, got ${s}`);
  }
  if (typeof s !== 'string') {
    throw new UnitError('ERR_CONF_SIZE', `size must be a string like 512k, 10m, 1g, got ${JSON.stringify(s)}`);
  }
  const m = /^(\d+)([kmg]?)$/i.exec(s.trim());
  if (m === null) throw new UnitError('ERR_CONF_SIZE', `invalid size "${s}": expected an integer with an optional unit k, m or g`);
  const bytes = Number(m[1]) * (SIZE_UNITS[(m[2] as string).toLowerCase()] as number);
  if (!Number.isSafeInteger(bytes)) throw new UnitError('ERR_CONF_SIZE', `size "${s}" is too large`);
  return bytes;
}
