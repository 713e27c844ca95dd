import { describe, expect, it } from 'vitest';
import { UnitError, parseDuration, parseSize } from '../../../src/config/units.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1m30s', 90_000],
    ['1h30m15s250ms', 5_415_250],
    [' 2s ', 2_000],
    ['0s', 0],
    [0, 0],
  ] as const)('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    [10, 'duration must be a string with a unit (ms, s, m, h, d), got 10'],
    ['10', 'invalid duration "10": expected a number and a unit (ms, s, m, h, d) at "10"'],
    ['', 'duration is empty'],
    ['5 minutes', 'invalid duration "5 minutes": expected a number and a unit (ms, s, m, h, d) at "5 minutes"'],
    ['1.5s', 'invalid duration "1.5s": expected a number and a unit (ms, s, m, h, d) at "1.5s"'],
    ['-1s', 'invalid duration "-1s": expected a number and a unit (ms, s, m, h, d) at "-1s"'],
    ['30s1m', 'invalid duration "30s1m": units must go from largest to smallest, each once'],
    ['1s1s', 'invalid duration "1s1s": units must go from largest to smallest, each once'],
  ] as const)('%j is refused', (input, message) => {
    expect(() => parseDuration(input)).toThrow(message);
    try {
      parseDuration(input);
    } catch (err) {
      expect(err).toBeInstanceOf(UnitError);
      expect((err as UnitError).code).toBe('ERR_CONF_DURATION');
    }
  });
});

describe('parseSize', () => {
  it.each([
    ['512k', 524_288],
    ['512K', 524_288],
    ['10m', 10_485_760],
    ['1g', 1_073_741_824],
    ['1G', 1_073_741_824],
    ['100', 100],
    [0, 0],
    [4096, 4096],
  ] as const)('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([
    ['1x', 'invalid size "1x": expected an integer with an optional unit k, m or g'],
    ['1.5m', 'invalid size "1.5m": expected an integer with an optional unit k, m or g'],
    ['m', 'invalid size "m": expected an integer with an optional unit k, m or g'],
    ['10 mb', 'invalid size "10 mb": expected an integer with an optional unit k, m or g'],
    [-1, 'size must be a non-negative integer of bytes or a string like 512k, 10m, 1g, got -1'],
    [1.5, 'size must be a non-negative integer of bytes or a string like 512k, 10m, 1g, got 1.5'],
  ] as const)('%j is refused', (input, message) => {
    expect(() => parseSize(input)).toThrow(message);
  });
});
