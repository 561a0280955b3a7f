// What a command run on several hosts prints: each host's output kept apart
// while the hosts run side by side, then shown grouped (text: a heading line
// per host; JSON and YAML: one object keyed by host name), and one exit code,
// the worst of the hosts'.
import { AsyncLocalStorage } from 'node:async_hooks';
import { parse, stringify } from 'yaml';

/** How one host's command ended. */
export interface HostOutcome {
  /** The Host manifest's name (or the target's host, when it was never reached). */
  name: string;
  /** ssh://user@host:port as it was reached. */
  target: string;
  exitCode: number;
  /** Everything the command printed on stdout. */
  stdout: string;
  /** Why it failed, when it threw (or could not be reached). */
  error?: { code?: string; message: string };
  /** Why it never started (--max-fail). */
  skipped?: string;
}

// Exit codes from best to worst: ok, changes pending (plan --exit-code), another run holds the lock, error.
const RANK = new Map([
  [0, 0],
  [2, 1],
  [3, 2],
  [1, 3],
]);

/** The worst exit code: an error over a held lock over pending changes over success; anything else (a signal's 128 + N) worst of all. */
export function worstExitCode(codes: readonly number[]): number {
  let worst = 0;
  for (const code of codes) if ((RANK.get(code) ?? 4) > (RANK.get(worst) ?? 4)) worst = code;
  return worst;
}

interface Sink {
  stdout: string[];
  /** stderr goes on to the real stderr at once, each line prefixed with the host's name; a partial line waits for its end. */
  prefix: string;
  partial: string;
}

const sinks = new AsyncLocalStorage<Sink>();

/**
 * While several hosts run in one process, process.stdout and process.stderr
 * are shared by all of them: every command writes to them directly. Writes
 * made inside capture() (found by the async context they come from) go to that
 * host's buffer (stdout) or out at once with its name in front (stderr);
 * anything else passes through. Returns the function that restores both.
 */
export function interceptOutput(): () => void {
  const stdout = process.stdout;
  const stderr = process.stderr;
  const writeOut = stdout.write;
  const writeErr = stderr.write;
  const text = (chunk: unknown, encoding: unknown) =>
    typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  const done = (args: unknown[]) => {
    const callback = args.find((a) => typeof a === 'function') as ((error?: Error | null) => void) | undefined;
    if (callback) process.nextTick(callback);
    return true;
  };
  stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const sink = sinks.getStore();
    if (!sink) return (writeOut as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    sink.stdout.push(text(chunk, rest[0]));
    return done(rest);
  } as typeof stdout.write;
  stderr.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
    const sink = sinks.getStore();
    if (!sink) return (writeErr as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    const lines = (sink.partial + text(chunk, rest[0])).split('\n');
    sink.partial = lines.pop()!;
    if (lines.length > 0) writeErr.call(stderr, lines.map((l) => `${sink.prefix}${l}\n`).join(''));
    return done(rest);
  } as typeof stderr.write;
  return () => {
    stdout.write = writeOut;
    stderr.write = writeErr;
  };
}

/** Runs `work` with its writes to stdout kept (see interceptOutput) and its stderr lines prefixed with `name`; never throws. */
export async function capture<T>(name: string, work: () => Promise<T>): Promise<{ stdout: string } & ({ value: T } | { error: unknown })> {
  const sink: Sink = { stdout: [], prefix: `${name}: `, partial: '' };
  let result: { value: T } | { error: unknown };
  try {
    result = { value: await sinks.run(sink, work) };
  } catch (error) {
    result = { error };
  }
  if (sink.partial) process.stderr.write(`${sink.prefix}${sink.partial}\n`);
  return { stdout: sink.stdout.join(''), ...result };
}

// What a host's JSON output was: one document, or (logs -o json) one per line.
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as unknown);
  }
}

function documentOf(o: HostOutcome, output: 'json' | 'yaml'): unknown {
  if (o.skipped !== undefined) return { skipped: o.skipped };
  if (o.stdout.trim()) {
    try {
      return output === 'json' ? parseJson(o.stdout) : (parse(o.stdout) as unknown);
    } catch {
      // not a document (an error printed on stdout): shown as the error below
    }
  }
  return { error: o.error ?? { message: `exited ${o.exitCode}; see its lines on stderr` }, exitCode: o.exitCode };
}

/** The hosts' outputs as one: an object keyed by host name (JSON, YAML), or each under a heading (text, markdown). */
export function renderGrouped(outcomes: readonly HostOutcome[], output: string): string {
  if (output === 'json' || output === 'yaml') {
    const doc = Object.fromEntries(outcomes.map((o) => [o.name, documentOf(o, output)]));
    return output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc);
  }
  const sections = outcomes.map((o) => {
    const title = o.name === o.target ? o.name : `${o.name} (${o.target})`;
    const heading = output === 'markdown' ? `## ${title}\n\n` : `== ${title} ==\n`;
    const body =
      o.skipped !== undefined
        ? `skipped: ${o.skipped}\n`
        : o.stdout + (o.error ? `failed: ${o.error.message}${o.error.code ? ` [${o.error.code}]` : ''}\n` : '');
    return heading + (body.endsWith('\n') || body === '' ? body : `${body}\n`);
  });
  return sections.join('\n') + '\n' + summaryLine(outcomes) + '\n';
}

/** `3 hosts: exit 0: web-1; exit 1: web-2; skipped: web-3`. */
export function summaryLine(outcomes: readonly HostOutcome[]): string {
  const groups = new Map<string, string[]>();
  for (const o of outcomes) {
    const key = o.skipped !== undefined ? 'skipped' : `exit ${o.exitCode}`;
    groups.set(key, [...(groups.get(key) ?? []), o.name]);
  }
  const order = (key: string) => (key === 'skipped' ? Infinity : Number(key.slice('exit '.length)));
  const parts = [...groups].sort(([a], [b]) => order(a) - order(b)).map(([key, names]) => `${key}: ${names.join(', ')}`);
  return `${outcomes.length} hosts: ${parts.join('; ')}`;
}
