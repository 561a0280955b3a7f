import type { ApplyEvent, StepRef } from '../../apply/progress.js';
import type { Style } from './style.js';

// An apply's progress, on stderr. Live (a terminal): each step is one line,
// redrawn in place with a spinner and the seconds so far until it ends, then
// replaced by its result. Plain (a log, CI): a line as each step starts and a
// line as it ends, with no carriage return. Lines name resource ids and actions
// only (the events carry nothing else), so no secret can reach them.

export interface ProgressClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `tick` every `ms` milliseconds until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

export const SYSTEM_CLOCK: ProgressClock = {
  now: () => performance.now(),
  every(ms, tick) {
    const timer = setInterval(tick, ms);
    timer.unref(); // a progress display never keeps the process alive
    return () => clearInterval(timer);
  },
};

export interface ProgressOutput {
  write(text: string): unknown;
  /** The terminal's width: a live line longer than this would wrap, and `\r` could not redraw it. */
  columns?: number;
}

export interface ProgressOptions {
  live: boolean;
  style: Style;
  clock?: ProgressClock;
  /** Applied to every line written (the run's redactor). */
  scrub?: (text: string) => string;
}

export interface ProgressRenderer {
  event(e: ApplyEvent): void;
  /** Something else is about to write a line to the same stream: a live line clears itself and is drawn again below it. */
  interrupt(): void;
  /** Stops the redraws and ends a line still open (the run ended some other way). */
  close(): void;
}

/** At most 10 redraws a second. */
export const REDRAW_MS = 100;
/** A live line shows the seconds so far once a step has taken this long. */
const ELAPSED_AFTER_MS = 1_000;
const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

// A line as parts, each with its colour: its visible length is that of the text alone.
type Part = readonly [text: string, colour?: (s: string) => string];
const plainOf = (parts: readonly Part[]) => parts.map(([t]) => t).join('');
const shownOf = (parts: readonly Part[]) => parts.map(([t, colour]) => (colour ? colour(t) : t)).join('');

// "create   unit/app.service", "rollback create   unit/app.service": the undo of a step is always marked.
function stepParts(ref: StepRef, style: Style): Part[] {
  const step: Part = [`${ref.action.padEnd(8)} ${ref.id}`];
  return ref.rollback ? [['rollback ', style.yellow], step] : [step];
}

function rollbackStart(e: Extract<ApplyEvent, { type: 'rollback-start' }>): string {
  return `rolling back: ${e.failed} failed; undoing ${e.changes} change(s), newest first`;
}

function rollbackEnd(e: Extract<ApplyEvent, { type: 'rollback-end' }>): string {
  return e.ok ? `rolled back in ${seconds(e.ms)}` : `rollback incomplete after ${seconds(e.ms)}`;
}

export function createProgress(out: ProgressOutput, options: ProgressOptions): ProgressRenderer {
  const scrub = options.scrub ?? ((s: string) => s);
  const write = (text: string) => void out.write(scrub(text));
  return options.live ? liveProgress(out, write, options) : plainProgress(write, options.style);
}

function plainProgress(write: (text: string) => void, style: Style): ProgressRenderer {
  const line = (parts: readonly Part[]) => write(`${shownOf(parts)}\n`);
  return {
    event(e) {
      switch (e.type) {
        case 'step-start':
          return line([['start  '], ...stepParts(e, style)]);
        case 'step-end':
          return line([e.ok ? ['done  ', style.green] : ['failed', style.red], [' '], ...stepParts(e, style), [` (${seconds(e.ms)})`]]);
        case 'rollback-start':
          return line([[rollbackStart(e), style.yellow]]);
        case 'rollback-end':
          return line([[rollbackEnd(e), e.ok ? style.yellow : style.red]]);
      }
    },
    interrupt() {},
    close() {},
  };
}

// Cut a line to `width` visible characters, keeping each part's colour.
function fit(parts: readonly Part[], width: number): Part[] {
  if (plainOf(parts).length <= width) return [...parts];
  const out: Part[] = [];
  let left = width - 1;
  for (const [text, colour] of parts) {
    if (left <= 0) break;
    out.push([text.slice(0, left), colour]);
    left -= text.length;
  }
  return [...out, ['…']];
}

// One open line at a time (steps never overlap); `visible` is the length drawn, without colour codes.
function liveProgress(out: ProgressOutput, write: (text: string) => void, options: ProgressOptions): ProgressRenderer {
  const { style } = options;
  const clock = options.clock ?? SYSTEM_CLOCK;
  let open: { ref: StepRef; started: number; drawn: string; visible: number; at: number; stop: () => void } | undefined;
  const width = () => (out.columns && out.columns > 1 ? out.columns - 1 : Infinity);

  // A running step: spinner, step, and the seconds so far once it is long.
  const running = (ref: StepRef, elapsed: number): Part[] => {
    const frame = SPINNER[Math.floor(elapsed / REDRAW_MS) % SPINNER.length]!;
    const after = elapsed >= ELAPSED_AFTER_MS ? ` ${Math.floor(elapsed / 1000)}s` : '';
    return fit([[`${frame} `, style.dim], ...stepParts(ref, style), [after]], width());
  };
  // Over the open line: \r, the new text, and spaces over the rest of a longer one (no escape codes without colour).
  const draw = (parts: readonly Part[], end = '') => {
    const plain = plainOf(parts);
    const pad = open && open.visible > plain.length ? ' '.repeat(open.visible - plain.length) : '';
    write(`${open ? '\r' : ''}${shownOf(parts)}${pad}${end}`);
    return plain;
  };
  const tick = () => {
    if (!open) return;
    const now = clock.now();
    if (now - open.at < REDRAW_MS) return;
    const parts = running(open.ref, now - open.started);
    if (plainOf(parts) === open.drawn) return;
    const plain = draw(parts);
    Object.assign(open, { drawn: plain, visible: plain.length, at: now });
  };
  // End the open line with `parts` (or, left open, as last drawn), or write `parts` as a line of its own.
  const finish = (parts?: readonly Part[]) => {
    if (!open) {
      if (parts) write(`${shownOf(fit(parts, width()))}\n`);
      return;
    }
    open.stop();
    if (parts) draw(fit(parts, width()), '\n');
    else if (open.visible > 0) write('\n');
    open = undefined;
  };

  return {
    event(e) {
      switch (e.type) {
        case 'step-start': {
          finish();
          const now = clock.now();
          const parts = running(e, 0);
          const plain = draw(parts);
          open = { ref: e, started: now, drawn: plain, visible: plain.length, at: now, stop: () => undefined };
          open.stop = clock.every(REDRAW_MS, tick);
          return;
        }
        case 'step-end':
          return finish([e.ok ? ['✓', style.green] : ['✗', style.red], [' '], ...stepParts(e, style), [` (${seconds(e.ms)})`]]);
        case 'rollback-start':
          finish();
          return finish([[`↩ ${rollbackStart(e)}`, style.yellow]]);
        case 'rollback-end':
          finish();
          return finish([[`${e.ok ? '↩' : '✗'} ${rollbackEnd(e)}`, e.ok ? style.yellow : style.red]]);
      }
    },
    interrupt() {
      if (!open || open.visible === 0) return;
      write(`\r${' '.repeat(open.visible)}\r`);
      Object.assign(open, { drawn: '', visible: 0, at: -Infinity });
    },
    close() {
      finish();
    },
  };
}
