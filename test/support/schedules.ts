// The schedules the README accepts, as tables shared by the unit spec
// (reconciler/manifests/schedule.spec.ts: what HostKit writes) and the real-host
// test (test/host/schedules.test.ts: what systemd makes of it, next to what a
// cron library makes of the cron line).

export interface CronRow {
  /** The cron form the row stands for (README, "Schedules"). */
  form: string;
  cron: string;
  /** The OnCalendar= lines HostKit writes for it. */
  onCalendar: string[];
  /** The line the cron library reads, where its syntax differs (it has no @midnight). */
  library?: string;
  /**
   * Debian's cron (Vixie) reads a day-of-month field that starts with `*` (`*\/2`) as
   * unrestricted, so it ANDs it with the weekdays; cron-parser ORs them. For such a row the
   * library is asked for the line with weekday `*`, and its times are kept on these weekdays
   * (0 is Sunday).
   */
  andWeekdays?: number[];
}

export const CRON_TABLE: readonly CronRow[] = [
  { form: 'every minute', cron: '* * * * *', onCalendar: ['*-*-* *:*:00'] },
  { form: 'one value per field', cron: '0 3 * * *', onCalendar: ['*-*-* 03:00:00'] },
  { form: 'list', cron: '5,35 * * * *', onCalendar: ['*-*-* *:05,35:00'] },
  { form: 'range', cron: '0 8-18 * * *', onCalendar: ['*-*-* 08..18:00:00'] },
  { form: '*/n', cron: '*/15 * * * *', onCalendar: ['*-*-* *:00/15:00'] },
  { form: 'start/step', cron: '5/20 * * * *', onCalendar: ['*-*-* *:05/20:00'] },
  { form: 'range with a step', cron: '0 10-20/5 * * *', onCalendar: ['*-*-* 10,15,20:00:00'] },
  { form: 'range with a step from 0', cron: '0-30/10 * * * *', onCalendar: ['*-*-* *:00,10,20,30:00'] },
  { form: '*/n as long as the field (fires once)', cron: '*/60 * * * *', onCalendar: ['*-*-* *:00:00'] },
  { form: 'start/step past the field (fires once)', cron: '50/20 * * * *', onCalendar: ['*-*-* *:50:00'] },
  { form: 'hour list with a minute list', cron: '15,45 6,18 * * *', onCalendar: ['*-*-* 06,18:15,45:00'] },
  { form: 'day of month list', cron: '0 0 1,15 * *', onCalendar: ['*-*-01,15 00:00:00'] },
  { form: 'day of month */n', cron: '0 0 */2 * *', onCalendar: ['*-*-01/2 00:00:00'] },
  { form: 'day of month range', cron: '0 2 1-7 * *', onCalendar: ['*-*-01..07 02:00:00'] },
  { form: 'month */n', cron: '30 2 1 */2 *', onCalendar: ['*-01/2-01 02:30:00'] },
  { form: 'month range', cron: '0 0 1 1-6 *', onCalendar: ['*-01..06-01 00:00:00'] },
  { form: 'last minute of the year', cron: '59 23 31 12 *', onCalendar: ['*-12-31 23:59:00'] },
  { form: 'leap day', cron: '0 6 29 2 *', onCalendar: ['*-02-29 06:00:00'] },
  { form: 'day of week 0 (Sunday)', cron: '0 0 * * 0', onCalendar: ['Sun *-*-* 00:00:00'] },
  { form: 'day of week 7 (Sunday)', cron: '0 0 * * 7', onCalendar: ['Sun *-*-* 00:00:00'] },
  { form: 'day of week 0-7 (every day)', cron: '0 0 * * 0-7', onCalendar: ['Mon..Sun *-*-* 00:00:00'] },
  { form: 'day of week 5-7 (through Sunday)', cron: '0 0 * * 5-7', onCalendar: ['Fri..Sun *-*-* 00:00:00'] },
  { form: 'day of week 0-3 (from Sunday)', cron: '0 0 * * 0-3', onCalendar: ['Mon..Wed,Sun *-*-* 00:00:00'] },
  { form: 'day of week list through Sunday', cron: '0 0 * * 6,0', onCalendar: ['Sat,Sun *-*-* 00:00:00'] },
  { form: 'day of week range and list', cron: '0 0 * * 1-2,4', onCalendar: ['Mon,Tue,Thu *-*-* 00:00:00'] },
  { form: 'working days', cron: '*/15 8-18 * * 1-5', onCalendar: ['Mon..Fri *-*-* 08..18:00/15:00'] },
  { form: 'both day fields: either matches', cron: '0 0 1 * 1', onCalendar: ['Mon *-*-* 00:00:00', '*-*-01 00:00:00'] },
  { form: 'both day fields, lists', cron: '30 2 1,15 * 5', onCalendar: ['Fri *-*-* 02:30:00', '*-*-01,15 02:30:00'] },
  { form: 'both day fields and a month', cron: '0 0 13 6 5', onCalendar: ['Fri *-06-* 00:00:00', '*-06-13 00:00:00'] },
  { form: 'both day fields, a day no month has', cron: '0 0 30 2 1', onCalendar: ['Mon *-02-* 00:00:00'] },
  { form: 'day of month */n with weekdays: both must match', cron: '0 0 */2 * 1', onCalendar: ['Mon *-*-01/2 00:00:00'], andWeekdays: [1] },
  { form: '@yearly', cron: '@yearly', onCalendar: ['yearly'] },
  { form: '@annually', cron: '@annually', onCalendar: ['yearly'] },
  { form: '@monthly', cron: '@monthly', onCalendar: ['monthly'] },
  { form: '@weekly (Sunday, as in cron)', cron: '@weekly', onCalendar: ['Sun *-*-* 00:00:00'] },
  { form: '@daily', cron: '@daily', onCalendar: ['daily'] },
  { form: '@midnight', cron: '@midnight', onCalendar: ['daily'], library: '@daily' },
  { form: '@hourly', cron: '@hourly', onCalendar: ['hourly'] },
];

/** OnCalendar expressions HostKit accepts as written, and systemd's normalized form of each (systemd 252, Debian bookworm). */
export const ONCALENDAR_EXAMPLES: readonly [expression: string, normalized: string][] = [
  ['minutely', '*-*-* *:*:00'],
  ['hourly', '*-*-* *:00:00'],
  ['daily', '*-*-* 00:00:00'],
  ['weekly', 'Mon *-*-* 00:00:00'],
  ['monthly', '*-*-01 00:00:00'],
  ['quarterly', '*-01,04,07,10-01 00:00:00'],
  ['semiannually', '*-01,07-01 00:00:00'],
  ['yearly', '*-01-01 00:00:00'],
  ['annually', '*-01-01 00:00:00'],
  ['daily UTC', '*-*-* 00:00:00 UTC'],
  ['Mon..Fri *-*-* 09:00:00', 'Mon..Fri *-*-* 09:00:00'],
  ['Mon..Fri 09:00', 'Mon..Fri *-*-* 09:00:00'],
  ['Sat,Sun 10:30', 'Sat,Sun *-*-* 10:30:00'],
  ['Monday 08:00', 'Mon *-*-* 08:00:00'],
  ['Mon-Fri 18:00', 'Mon..Fri *-*-* 18:00:00'],
  ['Mon,Wed..Fri *-*-* 07:15', 'Mon,Wed..Fri *-*-* 07:15:00'],
  ['Sun', 'Sun *-*-* 00:00:00'],
  ['*-*-01 04:00', '*-*-01 04:00:00'],
  ['*-*-01,15 00:00:00', '*-*-01,15 00:00:00'],
  ['*-01,07-01 00:00', '*-01,07-01 00:00:00'],
  ['*-*~01 23:00', '*-*~01 23:00:00'],
  ['*-02~03', '*-02~03 00:00:00'],
  ['Mon *-05~07/1 12:00', 'Mon *-05~07/1 12:00:00'],
  ['*-12-25', '*-12-25 00:00:00'],
  ['*-02-29 06:00', '*-02-29 06:00:00'],
  ['*-*-* *:00/15:00', '*-*-* *:00/15:00'],
  ['*-*-* 08..18:00/30:00', '*-*-* 08..18:00/30:00'],
  ['*-*-* 10..20/5:00', '*-*-* 10..20/5:00:00'],
  ['*-*-* 21/2:00', '*-*-* 21/2:00:00'],
  ['*-*-* 00:00:30', '*-*-* 00:00:30'],
  ['04:00', '*-*-* 04:00:00'],
  ['*:05', '*-*-* *:05:00'],
  ['*-*-* 9:5', '*-*-* 09:05:00'],
  ['*-*-01/2 00:00', '*-*-01/2 00:00:00'],
  ['*-01/3-01 00:00', '*-01/3-01 00:00:00'],
  ['*-*-* 00/6:00', '*-*-* 00/6:00:00'],
  ['Mon *-*-* 12:00:00 UTC', 'Mon *-*-* 12:00:00 UTC'],
  ['*-*-* 06:00 utc', '*-*-* 06:00:00 UTC'],
  ['*-*-* 23:59:59', '*-*-* 23:59:59'],
  ['Fri *-*-13 00:00', 'Fri *-*-13 00:00:00'],
  ['Sat *-*-1..7 18:00', 'Sat *-*-01..07 18:00:00'],
];

/** Schedules HostKit refuses, and a part of why (each with a systemd-analyze verdict of its own: some systemd takes, with a guess). */
export const REFUSED_SCHEDULES: readonly [schedule: string, because: string][] = [
  ['0 30 2 * * *', 'cron with seconds is not supported; drop the first field (seconds): "30 2 * * *"'],
  ['0 0 2 * * * 2030', 'cron with seconds and a year is not supported'],
  ['0 3 * *', 'a cron line has five fields'],
  ['0 3 * * MON', 'cron field "MON" is not supported'],
  ['0 0 * JAN *', 'cron field "JAN" is not supported'],
  ['0 0 L * *', 'cron field "L" is not supported'],
  ['61 * * * *', 'minute 61 is outside 0-59'],
  ['* 24 * * *', 'hour 24 is outside 0-23'],
  ['* * 0 * *', 'day of month 0 is outside 1-31'],
  ['* * * 13 *', 'month 13 is outside 1-12'],
  ['* * * * 8', 'day of week 8 is outside 0-7'],
  ['5-1 * * * *', 'minute range 5-1 runs backwards'],
  ['*/0 * * * *', 'minute step must be at least 1'],
  ['0 0 * * */2', 'day of week steps are not supported'],
  ['0 0 30 2 *', 'it never runs: February has no day 30'],
  ['0 0 31 4,6 *', 'it never runs: April, June have no day 31'],
  ['@sometimes', 'unknown shortcut @sometimes'],
  ['sometimes', '"sometimes" is not a day of the week'],
  ['every day', '"every" is not a day of the week'],
  ['Tues 10:00', '"Tues" is not a day of the week'],
  ['Sat..Mon 10:00', 'weekday range Sat..Mon runs backwards: a week runs Monday to Sunday, so list the days: Mon,Sat,Sun'],
  ['Mon, 10:00', 'weekdays "Mon," have an empty item'],
  ['*-*-* 03:00 Europe/Berlin', 'time zone "Europe/Berlin" is not supported'],
  ['daily CET', 'time zone "CET" is not supported'],
  ['2030-01-01 00:00', 'names a year (2030)'],
  ['12-25', 'date "12-25" is not *-MONTH-DAY'],
  ['*-02-30', 'it never runs: February has no day 30'],
  ['*-*-* *:*/15', 'minute "*/15" is cron\'s form; in OnCalendar write 00/15'],
  ['*-*-* 22/2:00', 'hour 22/2 never repeats (22 + 2 is past 23); write 22 alone'],
  ['*-*-* 10..20/30:00', 'hour 10..20/30 never repeats (10 + 30 is past 20); write 10..20 alone'],
  ['*-*-31/2', 'day 31/2 never repeats'],
  ['*-*~01/1', 'never repeats'],
  ['*-*~29', 'day from the end of the month 29 is outside 1-28'],
  ['*-*-* 24:00', 'hour 24 is outside 0-23'],
  ['*-*-* 3..1:00', 'hour range 3..1 runs backwards'],
  ['*-*-* 00:00:00.5', 'has a fraction of a second'],
  ['*-*-* 00:00:60', 'second 60 is outside 0-59'],
  ['*-*-* 009:00', 'hour "009" is not a number'],
  ['*-*-* 0/0:00', 'hour step in 0/0 must be at least 1'],
  ['*-*-1,,2', 'has an empty item'],
  ['UTC', '"UTC" is not a day of the week'],
];
