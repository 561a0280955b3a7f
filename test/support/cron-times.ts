import { CronExpressionParser } from 'cron-parser';
import type { CronRow } from './schedules.js';

// What a maintained cron library (cron-parser) says a cron line of the table
// runs at, and what `systemd-analyze calendar` says of OnCalendar expressions:
// both as "YYYY-MM-DD HH:MM:SS" in UTC, so test/host/schedules.test.ts can
// compare them.

/** The next `count` times after `base` (a Date, exclusive) the cron library computes for a row, in UTC. */
export function cronTimes(row: CronRow, base: Date, count: number): string[] {
  const line = row.library ?? row.cron;
  if (!row.andWeekdays) return take(line, base, count, () => true);
  // Debian's cron ANDs a `*`-led day of month with the weekdays: the library's times for any weekday, kept on those days.
  const fields = line.split(/\s+/);
  fields[4] = '*';
  return take(fields.join(' '), base, count, (d) => row.andWeekdays!.includes(d.getUTCDay()));
}

/**
 * A cron line as a table row, with `andWeekdays` where Debian's cron and the library part
 * (a day of month that starts with `*` but is not `*`, and restricted weekdays).
 */
export function cronRow(line: string): CronRow {
  const [, , dom, , dow] = line.split(/\s+/);
  if (!dom?.startsWith('*') || dom === '*' || dow === '*') return { form: 'generated', cron: line, onCalendar: [] };
  const weekdays = CronExpressionParser.parse(line).fields.dayOfWeek.values.map((d) => Number(d) % 7);
  return { form: 'generated', cron: line, onCalendar: [], andWeekdays: [...new Set(weekdays)] };
}

function take(line: string, base: Date, count: number, keep: (d: Date) => boolean): string[] {
  const it = CronExpressionParser.parse(line, { currentDate: base, tz: 'UTC' });
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 10_000; i++) {
    const d = it.next().toDate();
    if (keep(d)) out.push(utc(d));
  }
  return out;
}

/** "2026-03-14 10:17:00" */
export function utc(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * The elapses `systemd-analyze calendar --iterations=N` printed for one or more
 * expressions, merged (a timer with several OnCalendar= lines fires at each),
 * sorted and cut to `count`.
 */
export function analyzeElapses(stdout: string, count: number): string[] {
  const times = [...stdout.matchAll(/(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/g)].map((m) => m[1]!);
  return [...new Set(times)].sort().slice(0, count);
}

/** The normalized forms `systemd-analyze calendar` printed, one per expression, in order. */
export function analyzeNormalized(stdout: string): string[] {
  return [...stdout.matchAll(/^\s*Normalized form: (.*)$/gm)].map((m) => m[1]!.trim());
}
