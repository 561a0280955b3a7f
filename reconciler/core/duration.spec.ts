import { describe, expect, it } from 'vitest';
import { durationMs, parseDuration, parseWait } from './duration.js';

describe('reconciler/core/duration', () => {
  it.each([
    ['60s', 60_000],
    ['3s', 3_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0s', undefined],
    ['5 s', undefined],
    ['1d', undefined],
    ['0x10s', undefined],
  ])('parseDuration(%j) = %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('a wait may be zero; a checked duration that is not one is a bug', () => {
    expect(parseWait('0')).toBe(0);
    expect(parseWait('0s')).toBe(0);
    expect(parseWait('90s')).toBe(90_000);
    expect(parseWait('soon')).toBeUndefined();
    expect(() => durationMs('later')).toThrow('not a duration: later');
  });
});
