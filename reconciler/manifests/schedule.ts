import { error, type Diagnostic, type Location } from '../core/diagnostics.js';
import { calendarProblem, NEVER } from './calendar.js';

// Timer schedules: cron expressions and @shortcuts become systemd OnCalendar
// expressions; anything else must be an OnCalendar expression of the subset
// calendar.ts accepts. Every result is checked by those rules, so a schedule
// that validates is one systemd accepts on any host. A cron line whose day of
// month and day of week are both restricted runs when either matches (cron's
// OR); systemd reads one expression as AND, so it becomes two.

// As cron means them: @weekly is Sunday at midnight (systemd's own `weekly` is Monday's).
const SHORTCUTS: Record<string, string> = {
  '@yearly': 'yearly',
  '@annually': 'yearly',
  '@monthly': 'monthly',
  '@weekly': 'Sun *-*-* 00:00:00',
  '@daily': 'daily',
  '@midnight': 'daily',
  '@hourly': 'hourly',
};

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
// systemd's week runs Monday to Sunday: ranges are written in that order.
const WEEK_ORDER = [1, 2, 3, 4, 5, 6, 0];

/** One or more OnCalendar expressions (the timer fires at any of them), or why the schedule is wrong. */
export type ScheduleResult = { onCalendar: string[] } | { error: string };

interface Field {
  name: string;
  min: number;
  max: number;
}

const FIELDS: Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
];

export function toOnCalendar(schedule: string): ScheduleResult {
  const trimmed = schedule.trim();
  if (trimmed.startsWith('@')) {
    const mapped = SHORTCUTS[trimmed];
    return mapped ? { onCalendar: [mapped] } : { error: `unknown shortcut ${trimmed}; use one of ${Object.keys(SHORTCUTS).join(', ')}` };
  }
  const parts = trimmed.split(/\s+/);
  const cronLike = !trimmed.includes(':') && parts.every((p) => /^[0-9A-Za-z*,/?#-]+$/.test(p));
  if (cronLike && parts.length === 6) return { error: `cron with seconds is not supported; drop the first field (seconds): "${parts.slice(1).join(' ')}"` };
  if (cronLike && parts.length === 7)
    return { error: 'cron with seconds and a year is not supported; write the five fields minute hour day-of-month month day-of-week' };
  if (parts.length !== 5 || !cronLike) {
    const problem = calendarProblem(trimmed);
    if (!problem) return { onCalendar: [parts.join(' ')] };
    if (cronLike && parts.length > 1 && !/[A-Za-z~]|\*-/.test(trimmed))
      return { error: `a cron line has five fields (minute hour day-of-month month day-of-week); this one has ${parts.length}` };
    return { error: `${problem} (see "Schedules" in the README)` };
  }
  const named = parts.find((p) => /[A-Za-z?#]/.test(p));
  if (named)
    return { error: `cron field "${named}" is not supported: write minutes, hours, days, months and weekdays as numbers (weekdays 0-7, 0 and 7 are Sunday)` };
  const converted: string[] = [];
  for (let i = 0; i < 5; i++) {
    const result = convertField(parts[i]!, FIELDS[i]!, i === 4);
    if ('error' in result) return result;
    converted.push(result.value);
  }
  const [minute, hour, dom, month, dow] = converted as [string, string, string, string, string];
  const time = `${hour}:${minute}:00`;
  const date = `*-${month}-${dom}`;
  let onCalendar = [dow === '*' ? `${date} ${time}` : `${dow} ${date} ${time}`];
  // cron: a field that does not start with * is restricted; both restricted means either day matches
  // (a day of month no month has, such as 30 in 2, leaves the weekdays alone).
  if (!parts[2]!.startsWith('*') && !parts[4]!.startsWith('*')) {
    const byDate = `${date} ${time}`;
    onCalendar = [`${dow} *-${month}-* ${time}`, ...(calendarProblem(byDate)?.startsWith(NEVER) ? [] : [byDate])];
  }
  // Checked by the same rules as an OnCalendar expression: a line no date fits is refused here, not on the host.
  const problem = onCalendar.map(calendarProblem).find((p) => p !== undefined);
  return problem ? { error: `${problem} (as OnCalendar: ${onCalendar.join(' and ')})` } : { onCalendar };
}

// The days of a day-of-week field (0 and 7 both Sunday) as systemd writes them:
// Monday first, runs of three or more as ranges (0-3 is Mon..Wed,Sun; 0-7 is Mon..Sun).
function weekdays(days: ReadonlySet<number>): string {
  const out: string[] = [];
  let run: number[] = [];
  const flush = () => {
    if (run.length >= 3) out.push(`${DAYS[run[0]!]!}..${DAYS[run.at(-1)!]!}`);
    else out.push(...run.map((d) => DAYS[d]!));
    run = [];
  };
  for (const d of WEEK_ORDER) {
    if (days.has(d)) run.push(d);
    else flush();
  }
  flush();
  return out.join(',');
}

function convertField(text: string, field: Field, weekday: boolean): { value: string } | { error: string } {
  if (text === '*') return { value: '*' };
  const out: string[] = [];
  const days = new Set<number>();
  for (const item of text.split(',')) {
    const m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(item);
    if (!m) return { error: `${field.name} "${item}" is not a cron field` };
    const [, startText, endText, stepText] = m;
    const start = startText === '*' ? field.min : Number(startText);
    const end = endText !== undefined ? Number(endText) : startText === '*' ? field.max : start;
    const step = stepText !== undefined ? Number(stepText) : undefined;
    for (const n of [start, end]) {
      if (n < field.min || n > field.max) return { error: `${field.name} ${n} is outside ${field.min}-${field.max}` };
    }
    if (end < start) return { error: `${field.name} range ${item} runs backwards` };
    if (step !== undefined && step < 1) return { error: `${field.name} step must be at least 1` };
    if (weekday) {
      if (step !== undefined) return { error: 'day of week steps are not supported; list the days instead' };
      for (let d = start; d <= end; d++) days.add(d % 7);
      continue;
    }
    const pad = (n: number) => String(n).padStart(2, '0');
    if (step !== undefined) {
      if (endText !== undefined) {
        // An explicit range with a step: its values, written out.
        for (let n = start; n <= end; n += step) out.push(pad(n));
      } else if (start + step > field.max) {
        // Fires once in the field's range (*/60, 50/20): systemd refuses a repetition that cannot repeat.
        out.push(pad(start));
      } else {
        out.push(`${pad(start)}/${step}`);
      }
    } else if (start === end) {
      out.push(pad(start));
    } else {
      out.push(`${pad(start)}..${pad(end)}`);
    }
  }
  return { value: weekday ? weekdays(days) : out.join(',') };
}

/** A schedule toOnCalendar refuses, as validate (semantic.ts) and expand report it: the same diagnostic, so it is reported once. */
export function scheduleError(field: string, schedule: string, problem: string, location: Location): Diagnostic {
  return error('invalid schedule', `${field} "${schedule}": ${problem}`, location);
}
