// The systemd OnCalendar expressions HostKit accepts, judged by rules in code so
// that `validate` gives the same answer on every machine and nothing it accepts
// fails later in `systemd-analyze calendar` on a host (systemd.time(7)). It is a
// strict subset of what systemd reads: systemd normalizes or guesses at more
// (two-digit years, `MM-DD`, fractions of seconds, time zones), HostKit refuses
// what it would have to guess at. The real-host tests (test/host/schedules.test.ts)
// hold every accepted example against systemd.
//
//   WORD [UTC]                          minutely hourly daily weekly monthly quarterly semiannually yearly annually
//   [WEEKDAYS] [DATE] [TIME] [UTC]      at least one of the three
//   WEEKDAYS  Mon,Wed..Fri              Mon..Sun or Monday..Sunday, lists and ranges (Monday first)
//   DATE      *-MONTH-DAY | *-MONTH~DAY  the year is *; ~ counts days back from the month's end (1-28)
//   TIME      HOUR:MINUTE[:SECOND]      whole seconds
// Each MONTH, DAY, HOUR, MINUTE and SECOND is `*` or a list of N, N..M, N/STEP,
// N..M/STEP (N below M; N + STEP must not pass the range's end: systemd refuses that).

export const CALENDAR_WORDS = ['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'semiannually', 'yearly', 'annually'] as const;

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY_NAMES = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
// Days in each month, February in a leap year: a date no month has never fires.
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const MONTH_NAMES = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

interface Range {
  name: string;
  min: number;
  max: number;
}

const MONTH: Range = { name: 'month', min: 1, max: 12 };
const DAY: Range = { name: 'day', min: 1, max: 31 };
// systemd counts at most 28 days back from the end of a month.
const DAY_FROM_END: Range = { name: 'day from the end of the month', min: 1, max: 28 };
const TIME: Range[] = [
  { name: 'hour', min: 0, max: 23 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'second', min: 0, max: 59 },
];

type Values = { values: Set<number> } | { error: string };

/** Why `expression` is not an OnCalendar expression HostKit accepts, or undefined when it is one. */
export function calendarProblem(expression: string): string | undefined {
  const tokens = expression.trim().split(/\s+/);
  if (tokens[0] === '') return 'the schedule is empty';
  if (tokens.length > 1 && tokens.at(-1)!.toUpperCase() === 'UTC') tokens.pop();
  if ((CALENDAR_WORDS as readonly string[]).includes(tokens[0]!.toLowerCase())) return tokens.length === 1 ? undefined : unexpected(tokens[1]!, false);
  if (tokens.length === 1 && /^[A-Za-z]+$/.test(tokens[0]!) && weekday(tokens[0]!) === undefined) return unexpected(tokens[0]!, true);
  let i = 0;
  let months: Set<number> | undefined;
  let days: Set<number> | undefined;
  if (/[A-Za-z]/.test(tokens[i] ?? '') && !/[:~]/.test(tokens[i]!) && !/^\*-/.test(tokens[i]!)) {
    const problem = weekdaysProblem(tokens[i]!);
    if (problem) return problem;
    i++;
  }
  if (i < tokens.length && /[-~]/.test(tokens[i]!) && !tokens[i]!.includes(':')) {
    const date = parseDate(tokens[i]!);
    if ('error' in date) return date.error;
    ({ months, days } = date);
    i++;
  }
  if (i < tokens.length && tokens[i]!.includes(':')) {
    const problem = timeProblem(tokens[i]!);
    if (problem) return problem;
    i++;
  }
  if (i < tokens.length) return unexpected(tokens[i]!, i === 0);
  if (months && days) return neverProblem(months, days);
  return undefined;
}

function unexpected(token: string, first: boolean): string {
  if (/^[A-Za-z]+\/[A-Za-z_/+-]+$/.test(token) || (/^[A-Za-z]{3,}$/.test(token) && !first))
    return `time zone "${token}" is not supported: a schedule runs in the host's local time, or in UTC with a trailing UTC`;
  if (first && /^[A-Za-z]+$/.test(token)) return `"${token}" is not a day of the week or one of ${CALENDAR_WORDS.join(', ')}`;
  return `"${token}" is not in place: write [WEEKDAYS] [*-MONTH-DAY] [HOUR:MINUTE[:SECOND]] [UTC], e.g. Mon..Fri *-*-* 09:00:00`;
}

function weekdaysProblem(text: string): string | undefined {
  for (const item of text.split(',')) {
    if (item === '') return `weekdays "${text}" have an empty item`;
    const [from, to, extra] = item.split(/\.\.|-/);
    const start = weekday(from!);
    const end = to === undefined ? start : weekday(to);
    if (extra !== undefined || start === undefined || end === undefined)
      return `"${item}" is not a day of the week or a range of them (Mon, Tue, Wed, Thu, Fri, Sat, Sun; ranges as Mon..Fri)`;
    if (end < start) {
      const days = [...WEEKDAYS.slice(0, end + 1), ...WEEKDAYS.slice(start)].map((d) => d[0]!.toUpperCase() + d.slice(1));
      return `weekday range ${item} runs backwards: a week runs Monday to Sunday, so list the days: ${days.join(',')}`;
    }
  }
  return undefined;
}

function weekday(name: string): number | undefined {
  const lower = name.toLowerCase();
  const i = WEEKDAYS.indexOf(lower);
  return i >= 0 ? i : WEEKDAY_NAMES.indexOf(lower) >= 0 ? WEEKDAY_NAMES.indexOf(lower) : undefined;
}

function parseDate(text: string): { months: Set<number>; days: Set<number> } | { error: string } {
  const m = /^([^-~]+)-([^-~]+)([-~])([^-~]+)$/.exec(text);
  if (!m) return { error: `date "${text}" is not *-MONTH-DAY: write e.g. *-*-01, *-12-25, or *-*~01 for the last day of the month` };
  const [, year, month, separator, day] = m as unknown as [string, string, string, string, string];
  if (year !== '*') return { error: `date "${text}" names a year (${year}): a timer would stop firing after it; write the year as *` };
  const months = values(month, MONTH);
  if ('error' in months) return months;
  if (separator === '~') {
    if (day.includes('..') || day.includes('*'))
      return { error: `day ${day} after ~ must be a number of days back from the month's end, or a list of them (e.g. ~01 or ~07/1)` };
    const fromEnd = values(day, DAY_FROM_END, true);
    return 'error' in fromEnd ? fromEnd : { months: months.values, days: new Set([1]) };
  }
  const days = values(day, DAY);
  return 'error' in days ? days : { months: months.values, days: days.values };
}

function timeProblem(text: string): string | undefined {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) return `time "${text}" is not HOUR:MINUTE or HOUR:MINUTE:SECOND`;
  if (parts.length === 3 && /(?<!\.)\.(?!\.)/.test(parts[2]!)) return `time "${text}" has a fraction of a second; write whole seconds`;
  for (let i = 0; i < parts.length; i++) {
    const result = values(parts[i]!, TIME[i]!);
    if ('error' in result) return result.error;
  }
  return undefined;
}

// One component: `*` or a list of N, N..M, N/STEP, N..M/STEP. `backwards`: counted from the month's end (~).
function values(text: string, range: Range, backwards = false): Values {
  const out = new Set<number>();
  if (text === '*') {
    for (let n = range.min; n <= range.max; n++) out.add(n);
    return { values: out };
  }
  for (const item of text.split(',')) {
    if (item === '') return { error: `${range.name} "${text}" has an empty item` };
    if (/^\*\/\d+$/.test(item))
      return {
        error: `${range.name} "${item}" is cron's form; in OnCalendar write ${pad(range.min)}/${item.slice(2)} (from ${range.min}, every ${item.slice(2)})`,
      };
    const m = /^(\d{1,2})(?:\.\.(\d{1,2}))?(?:\/(\d{1,2}))?$/.exec(item);
    if (!m) return { error: `${range.name} "${item}" is not a number, a range N..M or a repetition N/STEP` };
    const start = Number(m[1]);
    const end = m[2] === undefined ? undefined : Number(m[2]);
    const step = m[3] === undefined ? undefined : Number(m[3]);
    for (const n of [start, end]) {
      if (n !== undefined && (n < range.min || n > range.max)) return { error: `${range.name} ${n} is outside ${range.min}-${range.max}` };
    }
    if (end !== undefined && end < start) return { error: `${range.name} range ${item} runs backwards` };
    // systemd refuses a one-value range of seconds (59..59); write the value.
    if (end === start) return { error: `${range.name} range ${item} holds one value; write ${m[1]}` };
    if (step !== undefined) {
      if (step < 1) return { error: `${range.name} step in ${item} must be at least 1` };
      // systemd refuses a repetition that cannot repeat within its range.
      const last = backwards ? range.min : (end ?? range.max);
      if (backwards ? start - step < last : start + step > last)
        return {
          error: `${range.name} ${item} never repeats (${start} ${backwards ? '-' : '+'} ${step} is past ${last}); write ${m[1]}${end !== undefined ? `..${m[2]}` : ''} alone`,
        };
    }
    const stop = end ?? (step !== undefined && !backwards ? range.max : start);
    for (let n = start; n <= stop; n += step ?? 1) out.add(n);
  }
  return { values: out };
}

function neverProblem(months: ReadonlySet<number>, days: ReadonlySet<number>): string | undefined {
  for (const m of months) for (const d of days) if (d <= MONTH_DAYS[m - 1]!) return undefined;
  const named = [...months].map((m) => MONTH_NAMES[m - 1]!).join(', ');
  return `${NEVER}: ${named} ${months.size === 1 ? 'has' : 'have'} no day ${[...days].join(', ')}`;
}

/** How calendarProblem starts for a well-formed date that no month has. */
export const NEVER = 'it never runs';

const pad = (n: number) => String(n).padStart(2, '0');
