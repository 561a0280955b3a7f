import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostKitError } from '../core/errors.js';
import { isLifecycleUnitOf } from '../drivers/command/index.js';
import { describeExec, PARSED_OUTPUT_MAX_BYTES, type Host } from '../hosts/types.js';
import { loadDeclared, projectsOn, requireProject, unitChoices, type HostTargetOptions, type UnitChoice } from './operate.js';
import { hostOf } from './run-input.js';

// `hostkit logs PROJECT`: the journal of exactly one project's units, read
// with journalctl's JSON output and kept only when journald's own fields (which
// a process cannot forge) say the line is of them. Units come from the
// expanded manifests. A lifecycle command runs as a transient unit named after
// its project (hostkit-command-PROJECT-HEX.service); its output goes back to
// HostKit, so the journal holds systemd's lines about it: when it started,
// what it ran, how it ended.

export interface LogsOptions extends HostTargetOptions {
  unit?: string;
  lines?: string;
  follow?: boolean;
  since?: string;
  output: string;
}

/** Lines shown when -n is not given (journalctl itself would print the whole journal). */
export const DEFAULT_LOG_LINES = 100;

/** What to read: the project's units, and its lifecycle commands' transient units. */
export interface LogSelection {
  project: string;
  units: string[];
  lifecycle: boolean;
}

/** The selection `--unit` asks for (all of the project when absent); UNKNOWN_UNIT, listing the choices, for anything else. */
export function selectUnits(project: string, choices: readonly UnitChoice[], unit?: string): LogSelection {
  const list = choices.map((c) => c.choice).join(', ');
  if (choices.length === 0) {
    throw new HostKitError('UNKNOWN_UNIT', `Project ${project} declares no service, worker, timer or lifecycle command: nothing of it logs to the journal`, {
      data: { project },
    });
  }
  if (unit === undefined) {
    return { project, units: choices.flatMap((c) => c.units), lifecycle: choices.some((c) => c.role === 'lifecycle') };
  }
  const chosen = choices.find((c) => c.choice === unit);
  if (!chosen) {
    throw new HostKitError('UNKNOWN_UNIT', `Project ${project} declares no ${JSON.stringify(unit)}; --unit takes one of: ${list}`, {
      data: { project, unit, choices: choices.map((c) => c.choice) },
    });
  }
  return { project, units: [...chosen.units], lifecycle: chosen.role === 'lifecycle' };
}

/** A whole number of lines (-n), or BAD_OPTION. */
export function parseLines(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LOG_LINES;
  if (!/^\d{1,9}$/.test(text)) throw new HostKitError('BAD_OPTION', `-n expects a whole number of lines, got ${JSON.stringify(text)}`);
  return Number(text);
}

// Only the fields shown or needed to decide whether a line belongs (journalctl adds its own __ fields).
const FIELDS = ['MESSAGE', 'PRIORITY', '_PID', '_SYSTEMD_UNIT', 'UNIT'];

export interface JournalOptions {
  /** Lines of the tail to start with: a number, or all after `afterCursor`. */
  lines: number | 'all';
  follow?: boolean;
  since?: string;
  afterCursor?: string;
  /** Every line systemd writes (a lifecycle command's unit may start after journalctl did): filtered here by belongs(). */
  allOfSystemd?: boolean;
}

/**
 * journalctl's arguments, one each, never through a shell; undefined when
 * there is nothing to match (journalctl would print the whole journal).
 * Matches on different fields are ANDed, on the same field ORed, and `+`
 * separates alternatives: the units' own lines, then systemd's lines about
 * them (what `journalctl -u` shows too). `lifecycleUnits`: the transient
 * units the project's lifecycle commands ran as, found in the journal.
 */
export function journalArgs(selection: LogSelection, lifecycleUnits: readonly string[], options: JournalOptions): string[] | undefined {
  const own = [...selection.units, ...lifecycleUnits];
  const groups: string[][] = [];
  if (own.length > 0) groups.push(own.map((u) => `_SYSTEMD_UNIT=${u}`));
  if (options.allOfSystemd) groups.push(['_PID=1']);
  else if (own.length > 0) groups.push(['_PID=1', ...own.map((u) => `UNIT=${u}`)]);
  if (groups.length === 0) return undefined;
  return [
    '--no-pager',
    '--output=json',
    `--output-fields=${FIELDS.join(',')}`,
    `--lines=${options.lines}`,
    ...(options.since !== undefined ? [`--since=${options.since}`] : []),
    ...(options.afterCursor !== undefined ? [`--after-cursor=${options.afterCursor}`] : []),
    ...(options.follow ? ['--follow'] : []),
    '--',
    ...groups.flatMap((g, i) => (i === 0 ? g : ['+', ...g])),
  ];
}

/** One journal entry as journalctl -o json prints it: a field holds a string, bytes, or a list of either when repeated. */
export type JournalEntry = Record<string, unknown>;

function values(entry: JournalEntry, field: string): string[] {
  const v = entry[field];
  const one = (x: unknown): string | undefined =>
    typeof x === 'string' ? x : Array.isArray(x) && x.every((b) => typeof b === 'number') ? Buffer.from(x as number[]).toString('utf8') : undefined;
  if (v === undefined || v === null) return [];
  if (Array.isArray(v) && v.some((x) => typeof x !== 'number')) return v.map(one).filter((s): s is string => s !== undefined);
  const s = one(v);
  return s === undefined ? [] : [s];
}

/** Whether journald's trusted fields say the entry is of the selection: a unit's own line, or systemd's (PID 1) about it. */
export function belongs(entry: JournalEntry, selection: LogSelection): boolean {
  const ofSelection = (unit: string) => selection.units.includes(unit) || (selection.lifecycle && isLifecycleUnitOf(unit, selection.project));
  const own = values(entry, '_SYSTEMD_UNIT');
  if (own.length === 1 && ofSelection(own[0]!)) return true;
  const about = values(entry, 'UNIT');
  return values(entry, '_PID').join() === '1' && about.length === 1 && ofSelection(about[0]!);
}

/** A journal line as `hostkit logs -o json` prints it (one JSON object per line). */
export interface LogLine {
  time: string;
  /** The unit the line is of (for systemd's own lines: the unit they are about). */
  unit: string;
  /** Written by systemd about the unit, not by the unit's processes. */
  systemd?: true;
  pid?: number;
  priority?: number;
  message: string;
}

export function toLogLine(entry: JournalEntry): LogLine {
  const micros = Number(values(entry, '__REALTIME_TIMESTAMP')[0] ?? 0);
  const pid = Number(values(entry, '_PID')[0]);
  const priority = Number(values(entry, 'PRIORITY')[0]);
  const fromSystemd = pid === 1;
  return {
    time: new Date(Math.floor(micros / 1000)).toISOString(),
    unit: (fromSystemd ? values(entry, 'UNIT')[0] : values(entry, '_SYSTEMD_UNIT')[0]) ?? '',
    ...(fromSystemd ? { systemd: true as const } : {}),
    ...(Number.isInteger(pid) ? { pid } : {}),
    ...(Number.isInteger(priority) ? { priority } : {}),
    message: values(entry, 'MESSAGE').join('\n'),
  };
}

// A line printed to a terminal must not drive it: control characters (escape sequences) are shown as \xNN.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function renderLogLine(line: LogLine): string {
  const message = line.message.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `${line.time} ${line.unit}${line.systemd ? ' (systemd)' : ''}: ${message}`;
}

/** The selection's lines in journalctl's JSON output, parsed; and the cursor of the last entry it printed. */
export function parseEntries(texts: readonly string[], selection: LogSelection): { lines: LogLine[]; cursor?: string } {
  const lines: LogLine[] = [];
  let cursor: string | undefined;
  for (const text of texts) {
    if (!text.trim()) continue;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(text) as JournalEntry;
    } catch {
      continue; // not an entry (journalctl prints nothing else on stdout with -o json)
    }
    cursor = values(entry, '__CURSOR')[0] ?? cursor;
    if (belongs(entry, selection)) lines.push(toLogLine(entry));
  }
  return { lines, ...(cursor ? { cursor } : {}) };
}

function printLine(line: LogLine, output: string): void {
  process.stdout.write((output === 'json' ? JSON.stringify(line) : renderLogLine(line)) + '\n');
}

/** The lines once: journalctl through the host, its output parsed whole. */
export async function readLogs(host: Host, args: readonly string[]): Promise<string[]> {
  const result = await host.exec('journalctl', args, { maxOutputBytes: PARSED_OUTPUT_MAX_BYTES });
  if (result.exitCode !== 0) throw new HostKitError('JOURNAL_READ_FAILED', describeExec('journalctl', [...args], result));
  return result.stdout.split('\n');
}

/**
 * Follow until SIGINT or SIGTERM: journalctl runs in a process group of its
 * own (a terminal's Ctrl-C reaches this process only), the signal is passed on
 * to that group, and the command ends with 0 once journalctl exited.
 */
export function followLogs(args: readonly string[], onLine: (text: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('journalctl', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stopping = false;
    let stderr = '';
    const stop = (signal: NodeJS.Signals) => {
      stopping = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      }
    };
    const onSignal = (signal: NodeJS.Signals) => stop(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // A reader that went away (`| head`) ends the follow as Ctrl-C would.
    const onPipe = (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? stop('SIGTERM') : undefined);
    process.stdout.on('error', onPipe);
    createInterface({ input: child.stdout }).on('line', onLine);
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    child.on('error', (error) => {
      cleanup();
      reject(new HostKitError('JOURNAL_READ_FAILED', `Could not run journalctl: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      cleanup();
      if (stopping) resolve(0);
      else reject(new HostKitError('JOURNAL_READ_FAILED', `journalctl ${args.join(' ')} ended (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
    function cleanup() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.stdout.off('error', onPipe);
    }
  });
}

/** How often a follow over SSH asks the host's journal for new lines. */
export const POLL_INTERVAL_MS = 1000;

/** `args` for the entries after `cursor`: all of them, however many the first round asked for. */
export function afterCursorArgs(args: readonly string[], cursor: string): string[] {
  const kept = args.filter((a) => a !== '--follow' && !a.startsWith('--after-cursor=')).map((a) => (a.startsWith('--lines=') ? '--lines=all' : a));
  const end = kept.indexOf('--');
  return [...kept.slice(0, end), `--after-cursor=${cursor}`, ...kept.slice(end)];
}

function cursorOf(text: string): string | undefined {
  try {
    return values(JSON.parse(text) as JournalEntry, '__CURSOR')[0];
  } catch {
    return undefined;
  }
}

/**
 * Follow the journal of a host reached over SSH, whose commands run to their end
 * rather than stream: journalctl once as `args` ask (the tail), then every
 * `intervalMs` again for the entries after the last one printed, until SIGINT or
 * SIGTERM (or `signal`); then 0. A round in flight when the signal comes is finished first.
 */
export async function pollLogs(
  host: Host,
  args: readonly string[],
  onLine: (text: string) => void,
  options: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<number> {
  const stopped = new AbortController();
  const onSignal = () => stopped.abort();
  options.signal?.addEventListener('abort', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let round = args.filter((a) => a !== '--follow');
    while (!stopped.signal.aborted) {
      let cursor: string | undefined;
      for (const text of await readLogs(host, round)) {
        if (!text.trim()) continue;
        onLine(text);
        cursor = cursorOf(text) ?? cursor;
      }
      if (cursor) round = afterCursorArgs(round, cursor);
      await sleep(options.intervalMs ?? POLL_INTERVAL_MS, undefined, { signal: stopped.signal }).catch(() => undefined);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

/** The transient units the project's lifecycle commands ran as, as far back as the journal goes. */
export async function lifecycleUnitsIn(host: Host, project: string): Promise<string[]> {
  return (await readLogs(host, ['--no-pager', '--field=UNIT'])).filter((u) => isLifecycleUnitOf(u, project)).sort();
}

// Where the journal ends now: a follow that starts after it misses nothing and repeats nothing.
async function endCursor(host: Host): Promise<string | undefined> {
  const [last] = await readLogs(host, ['--no-pager', '--output=json', '--output-fields=_PID', '--lines=1']);
  return last ? values(JSON.parse(last) as JournalEntry, '__CURSOR')[0] : undefined;
}

export async function logs(project: string, opts: LogsOptions): Promise<number> {
  const lines = parseLines(opts.lines);
  const declared = await loadDeclared(opts);
  if (typeof declared === 'number') return declared;
  requireProject(project, projectsOn(declared.resources), declared.hostName);
  const selection = selectUnits(project, unitChoices(declared.manifests, declared.resources, project), opts.unit);
  const host = hostOf(opts);
  // journalctl streams on this machine only: over SSH the follow asks the host's journal again and again.
  const follow = (args: readonly string[], onText: (text: string) => void) => (opts.on ? pollLogs(host, args, onText) : followLogs(args, onText));
  const lifecycle = selection.lifecycle ? await lifecycleUnitsIn(host, project) : [];
  const print = (line: LogLine) => printLine(line, opts.output);
  // The common follow: every unit known now, no --since. One journalctl, its -n exact.
  if (opts.follow && !selection.lifecycle && opts.since === undefined) {
    const args = journalArgs(selection, [], { lines, follow: true })!;
    return follow(args, (text) => parseEntries([text], selection).lines.forEach(print));
  }
  // The tail: the last N lines (since --since: journalctl would count those from its start).
  const end = opts.follow ? await endCursor(host) : undefined;
  const tail = journalArgs(selection, lifecycle, opts.since !== undefined ? { lines: 'all', since: opts.since } : { lines });
  const shown = tail ? parseEntries(await readLogs(host, tail), selection) : { lines: [] };
  for (const line of lines === 0 ? [] : shown.lines.slice(-lines)) print(line);
  if (!opts.follow) return 0;
  // Then follow from where the tail (or the journal) ended, all of systemd's lines among them: a
  // lifecycle command may start a unit after this started. Each line is kept by belongs().
  const after = shown.cursor ?? end;
  const rest = journalArgs(selection, lifecycle, { lines: 'all', follow: true, allOfSystemd: selection.lifecycle, ...(after ? { afterCursor: after } : {}) });
  return follow(rest!, (text) => parseEntries([text], selection).lines.forEach(print));
}
