import { describe, expect, it } from 'vitest';
import { toOnCalendar } from './schedule.js';

describe('reconciler/manifests/schedule', () => {
  it.each([
    ['@daily', 'daily'],
    ['@hourly', 'hourly'],
    ['@annually', 'yearly'],
    ['0 3 * * *', '*-*-* 03:00:00'],
    ['*/15 * * * *', '*-*-* *:00/15:00'],
    ['*/15 8-18 * * 1-5', 'Mon..Fri *-*-* 08..18:00/15:00'],
    ['30 2 1 */2 *', '*-01/2-01 02:30:00'],
    ['0 0 * * 0', 'Sun *-*-* 00:00:00'],
    ['0 0 * * 7', 'Sun *-*-* 00:00:00'],
    ['5,35 * * * 1,3', 'Mon,Wed *-*-* *:05,35:00'],
    ['0 10-20/5 * * *', '*-*-* 10,15,20:00:00'],
    ['Mon *-*-* 04:00:00', 'Mon *-*-* 04:00:00'],
  ])('%s -> %s', (schedule, onCalendar) => {
    expect(toOnCalendar(schedule)).toEqual({ onCalendar });
  });

  it.each([
    ['61 * * * *', 'minute 61 is outside 0-59'],
    ['* 24 * * *', 'hour 24 is outside 0-23'],
    ['* * 0 * *', 'day of month 0 is outside 1-31'],
    ['* * * 13 *', 'month 13 is outside 1-12'],
    ['* * * * 8', 'day of week 8 is outside 0-7'],
    ['5-1 * * * *', 'minute range 5-1 runs backwards'],
    ['*/0 * * * *', 'minute step must be at least 1'],
    ['@sometimes', 'unknown shortcut @sometimes'],
  ])('%s is refused', (schedule, message) => {
    const result = toOnCalendar(schedule);
    expect('error' in result && result.error).toContain(message);
  });
});
