import { describe, expect, it } from 'vitest';
import { CRON_TABLE, ONCALENDAR_EXAMPLES, REFUSED_SCHEDULES } from '../../test/support/schedules.js';
import { calendarProblem } from './calendar.js';
import { toOnCalendar } from './schedule.js';

// The tables are shared with test/host/schedules.test.ts, which holds the same rows against
// systemd-analyze on a real host and against a cron library.
describe('reconciler/manifests/schedule', () => {
  it.each(CRON_TABLE.map((r) => [r.cron, r.form, r.onCalendar] as const))('%s (%s) -> %j', (cron, _form, onCalendar) => {
    expect(toOnCalendar(cron)).toEqual({ onCalendar });
  });

  it.each(CRON_TABLE.flatMap((r) => r.onCalendar).map((e) => [e]))('what a cron line becomes passes the OnCalendar rules: %s', (expression) => {
    expect(calendarProblem(expression)).toBeUndefined();
  });

  it.each(ONCALENDAR_EXAMPLES.map(([e]) => [e]))('an OnCalendar expression is taken as written: %s', (expression) => {
    expect(toOnCalendar(expression)).toEqual({ onCalendar: [expression] });
  });

  it('extra spaces between the parts of an OnCalendar expression are dropped', () => {
    expect(toOnCalendar('  Mon..Fri   *-*-*  09:00 ')).toEqual({ onCalendar: ['Mon..Fri *-*-* 09:00'] });
  });

  it.each(REFUSED_SCHEDULES.map(([s, m]) => [s, m]))('%s is refused: %s', (schedule, message) => {
    const result = toOnCalendar(schedule);
    expect('error' in result && result.error).toContain(message);
  });
});
