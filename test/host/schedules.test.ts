// Schedules on a real host (issue #18): every cron form the README accepts,
// as HostKit converts it, fires at the times systemd computes on the host,
// and those are the times a maintained cron library (cron-parser) computes
// from the cron line; and every OnCalendar expression the rules in code
// (reconciler/manifests/calendar.ts) accept is one systemd accepts. UTC on
// both sides: TZ=UTC for systemd-analyze, tz UTC for the library.
import { expect, it } from 'vitest';
import { calendarProblem } from '../../reconciler/manifests/calendar.js';
import { toOnCalendar } from '../../reconciler/manifests/schedule.js';
import { analyzeElapses, analyzeNormalized, cronRow, cronTimes } from '../support/cron-times.js';
import { CRON_TABLE, ONCALENDAR_EXAMPLES } from '../support/schedules.js';
import { describeHost, useHost, type TestHost } from './harness.js';

// A Saturday, mid-month, mid-morning: each form's next five runs cross a day, a week or a month.
const BASE = '2026-03-14 10:17:00';
const COUNT = 5;

function analyze(machine: TestHost, expressions: readonly string[], iterations = COUNT) {
  return machine.host.exec('systemd-analyze', ['calendar', `--iterations=${iterations}`, `--base-time=${BASE} UTC`, '--', ...expressions], {
    env: { TZ: 'UTC' },
  });
}

describeHost('reconciler/manifests/schedule against systemd-analyze calendar on a real host', () => {
  const machine = useHost();

  it.each(CRON_TABLE.map((r) => [r.cron, r.form, r] as const))("%s (%s): the next 5 runs systemd computes are the cron library's", async (cron, _form, row) => {
    const converted = toOnCalendar(cron);
    expect(converted).toEqual({ onCalendar: row.onCalendar });
    const result = await analyze(machine(), row.onCalendar);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(analyzeElapses(result.stdout, COUNT)).toEqual(cronTimes(row, new Date(`${BASE.replace(' ', 'T')}Z`), COUNT));
  });

  it('generated cron lines (lists, ranges, steps, weekdays through Sunday): systemd and the cron library agree on the next 5 runs', async () => {
    const base = new Date(`${BASE.replace(' ', 'T')}Z`);
    const lines = generateCronLines(400)
      .map((line) => ({ line, expected: libraryTimes(line, base) }))
      .filter((l) => l.expected !== undefined)
      .slice(0, 80);
    expect(lines.length).toBe(80);
    const disagree: string[] = [];
    for (const { line, expected } of lines) {
      const converted = toOnCalendar(line);
      if ('error' in converted) {
        disagree.push(`${line}: refused (${converted.error})`);
        continue;
      }
      const result = await analyze(machine(), converted.onCalendar);
      const got = result.exitCode === 0 ? analyzeElapses(result.stdout, COUNT) : [result.stderr.trim()];
      if (JSON.stringify(got) !== JSON.stringify(expected))
        disagree.push(`${line} -> ${converted.onCalendar.join(' / ')}: systemd ${got.join(', ')}; library ${expected!.join(', ')}`);
    }
    expect(disagree).toEqual([]);
  });

  it('every OnCalendar example the README gives is accepted as written, and systemd reads it as the table says', async () => {
    const expressions = ONCALENDAR_EXAMPLES.map(([e]) => e);
    for (const e of expressions) expect(calendarProblem(e), e).toBeUndefined();
    const result = await analyze(machine(), expressions, 1);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(analyzeNormalized(result.stdout)).toEqual(ONCALENDAR_EXAMPLES.map(([, normalized]) => normalized));
  });

  it('nothing the rules in code accept is refused by systemd (generated expressions, edge values included)', async () => {
    const candidates = generateExpressions(1000);
    const accepted = candidates.filter((e) => calendarProblem(e) === undefined);
    // Enough of both kinds for the check to mean something.
    expect(accepted.length).toBeGreaterThan(150);
    expect(candidates.length - accepted.length).toBeGreaterThan(150);
    const refusedBySystemd: string[] = [];
    for (let i = 0; i < accepted.length; i += 100) {
      const chunk = accepted.slice(i, i + 100);
      if ((await analyze(machine(), chunk, 1)).exitCode === 0) continue;
      for (const e of chunk) if ((await analyze(machine(), [e], 1)).exitCode !== 0) refusedBySystemd.push(e);
    }
    expect(refusedBySystemd).toEqual([]);
  });
});

// The library's next runs, or undefined for a line it cannot read (it refuses a value listed twice, which cron takes).
function libraryTimes(line: string, base: Date): string[] | undefined {
  try {
    return cronTimes(cronRow(line), base, COUNT);
  } catch {
    return undefined;
  }
}

// Cron lines from the README's forms, with random values (a seeded generator: the same lines on every run).
function generateCronLines(count: number): string[] {
  const random = seeded(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const within = (min: number, max: number) => Math.floor(min + random() * (max - min + 1));
  const item = (min: number, max: number) => {
    const a = within(min, max);
    const b = within(a, max);
    return pick([`${a}`, `${a}-${b}`, `*/${within(1, max - min + 1)}`, `${a}/${within(1, max)}`, `${a}-${b}/${within(1, 10)}`]);
  };
  const field = (min: number, max: number) => pick(['*', '*', item(min, max), `${item(min, max)},${item(min, max)}`]);
  const weekday = () => {
    const a = within(0, 7);
    return pick([`${a}`, `${a}-${within(a, 7)}`]);
  };
  return Array.from({ length: count }, () =>
    [field(0, 59), field(0, 23), field(1, 31), field(1, 12), pick(['*', '*', weekday(), `${weekday()},${weekday()}`])].join(' '),
  );
}

// Expressions built from the grammar's pieces, with values at and past each range's ends
// (a seeded generator: the same list on every run).
function generateExpressions(count: number): string[] {
  const random = seeded(18);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const inRange = (min: number, max: number) => Math.floor(min + random() * (max - min + 1));
  const number = (min: number, max: number) => pick([min, max, min - 1, max + 1, inRange(min, max), inRange(min, max), inRange(min, max), inRange(min, max)]);
  const item = (min: number, max: number): string => {
    const a = number(min, max);
    const b = number(min, max);
    const step = pick([1, 2, 5, 7, max - min, max - min + 1, 0, Math.max(1, max - a)]);
    return pick([`${a}`, `${a}..${b}`, `${a}/${step}`, `${a}..${b}/${step}`, `${String(a).padStart(2, '0')}`]);
  };
  const component = (min: number, max: number) => pick(['*', '*', item(min, max), item(min, max), `${item(min, max)},${item(min, max)}`]);
  const weekdays = () => pick(['Mon', 'sun', 'Monday', 'Mon..Fri', 'Sat,Sun', 'Fri..Sun', 'Tue-Thu', 'Sun..Mon', 'Mon,Wed..Fri', 'Wed..Wed']);
  const date = () => (random() < 0.2 ? `*-${component(1, 12)}~${item(1, 28)}` : `*-${component(1, 12)}-${component(1, 31)}`);
  const time = () => (random() < 0.5 ? `${component(0, 23)}:${component(0, 59)}` : `${component(0, 23)}:${component(0, 59)}:${component(0, 59)}`);
  const out = new Set<string>();
  while (out.size < count) {
    const parts = [random() < 0.4 ? weekdays() : '', random() < 0.6 ? date() : '', random() < 0.8 ? time() : '', random() < 0.15 ? 'UTC' : ''].filter(Boolean);
    if (parts.length > 0 && parts.join(' ') !== 'UTC') out.add(parts.join(' '));
  }
  return [...out];
}

/** mulberry32: numbers in [0, 1), the same for the same seed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
