// Timer schedules: cron expressions and @shortcuts become systemd OnCalendar
// expressions. Anything else is taken as an OnCalendar expression already and
// left for `systemd-analyze calendar` on the host to judge.

const SHORTCUTS: Record<string, string> = {
  '@yearly': 'yearly',
  '@annually': 'yearly',
  '@monthly': 'monthly',
  '@weekly': 'weekly',
  '@daily': 'daily',
  '@midnight': 'daily',
  '@hourly': 'hourly',
};

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export type ScheduleResult = { onCalendar: string } | { error: string };

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
    return mapped ? { onCalendar: mapped } : { error: `unknown shortcut ${trimmed}; use one of ${Object.keys(SHORTCUTS).join(', ')}` };
  }
  const parts = trimmed.split(/\s+/);
  if (parts.length !== 5 || !parts.every((p) => /^[0-9*,/-]+$/.test(p))) {
    return { onCalendar: trimmed }; // an OnCalendar expression
  }
  const converted: string[] = [];
  for (let i = 0; i < 5; i++) {
    const result = convertField(parts[i]!, FIELDS[i]!, i === 4);
    if ('error' in result) return result;
    converted.push(result.value);
  }
  const [minute, hour, dom, month, dow] = converted as [string, string, string, string, string];
  const date = `*-${month}-${dom}`;
  const time = `${hour}:${minute}:00`;
  return { onCalendar: dow === '*' ? `${date} ${time}` : `${dow} ${date} ${time}` };
}

function convertField(text: string, field: Field, weekday: boolean): { value: string } | { error: string } {
  if (text === '*') return { value: '*' };
  const out: string[] = [];
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
      out.push(start === end ? DAYS[start]! : `${DAYS[start]!}..${DAYS[end]!}`);
      continue;
    }
    const pad = (n: number) => String(n).padStart(2, '0');
    if (step !== undefined) {
      if (startText === '*' || endText !== undefined) {
        // systemd has start/step only; expand an explicit range.
        if (endText === undefined) out.push(`${pad(start)}/${step}`);
        else for (let n = start; n <= end; n += step) out.push(pad(n));
      } else {
        out.push(`${pad(start)}/${step}`);
      }
    } else if (start === end) {
      out.push(pad(start));
    } else {
      out.push(`${pad(start)}..${pad(end)}`);
    }
  }
  return { value: out.join(',') };
}
