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
    // Day of week: 0 and 7 are Sunday, and systemd's week starts on Monday.
    ['0 0 * * 0-7', 'Mon..Sun *-*-* 00:00:00'],
    ['0 0 * * 0-3', 'Mon..Wed,Sun *-*-* 00:00:00'],
    ['0 0 * * 5-7', 'Fri..Sun *-*-* 00:00:00'],
    ['0 0 * * 6,0', 'Sat,Sun *-*-* 00:00:00'],
    ['0 0 * * 1-2,4', 'Mon,Tue,Thu *-*-* 00:00:00'],
    // A day-of-month step starts with *: cron then ANDs it with the weekdays.
    ['0 0 */2 * 1', 'Mon *-*-01/2 00:00:00'],
  ])('%s -> %s', (schedule, onCalendar) => {
    expect(toOnCalendar(schedule)).toEqual({ onCalendar: [onCalendar] });
  });

  it.each([
    ['0 0 1 * 1', ['Mon *-*-* 00:00:00', '*-*-01 00:00:00']],
    ['30 2 1,15 * 5', ['Fri *-*-* 02:30:00', '*-*-01,15 02:30:00']],
    ['0 0 13 6 5', ['Fri *-06-* 00:00:00', '*-06-13 00:00:00']],
  ])('%s: day of month OR day of week, as cron means it -> %j', (schedule, onCalendar) => {
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
