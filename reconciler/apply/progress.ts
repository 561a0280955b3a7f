import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { Action } from '../diff/model.js';

// What an apply reports as it goes, for a progress display (the CLI) or a log
// (the agent). Events carry resource ids and actions only, never values, so no
// secret can reach a progress line.

/** A change's action, a driver's settle (restarts, reloads, certificate orders), a project's health check, or a restore from the run's backups. */
export type StepAction = Exclude<Action, 'noop' | 'unsupported'> | 'settle' | 'health' | 'restore';

export interface StepRef {
  /** The resource id (`unit/app.service`), the driver kind for a settle (`certificate`), `health/PROJECT`, or the run id for a restore. */
  id: string;
  action: StepAction;
  /** Part of rolling the run back: the undo of `action` (or the settle after the undo). */
  rollback?: true;
}

export type ApplyEvent =
  | (StepRef & { type: 'step-start'; at: number })
  | (StepRef & { type: 'step-end'; at: number; ok: boolean; ms: number })
  /** `failed` failed; the `changes` this run applied are undone, newest first. */
  | { type: 'rollback-start'; at: number; failed: string; changes: number }
  /** ok: every change was undone (directly or from the run's backups). */
  | { type: 'rollback-end'; at: number; ok: boolean; ms: number };

/** Told of each event as it happens (synchronously; it must not block). */
export type ApplyProgress = (event: ApplyEvent) => void;

type Untimed<E> = E extends ApplyEvent ? Omit<E, 'at'> : never;

export interface StepTracker {
  emit(event: Untimed<ApplyEvent>): void;
  /** Run `work` as one step: its start, then its end with the milliseconds it took; not ok when it throws or `ok` says so. */
  step<T>(ref: StepRef, work: () => Promise<T>, ok?: (value: T) => boolean): Promise<T>;
}

// Every event also goes to the log at debug; a listener that throws costs a warning, never the apply.
export function stepTracker(log: Logger, listener?: ApplyProgress): StepTracker {
  let broken = false;
  const emit = (event: Untimed<ApplyEvent>) => {
    const timed = { ...event, at: Date.now() } as ApplyEvent;
    log.debug(timed, 'progress');
    if (!listener || broken) return;
    try {
      listener(timed);
    } catch (error) {
      broken = true;
      log.warn({ error: errorMessage(error) }, 'progress listener failed; no further progress is reported');
    }
  };
  return {
    emit,
    async step(ref, work, ok) {
      emit({ type: 'step-start', ...ref });
      const started = performance.now();
      const end = (passed: boolean) => emit({ type: 'step-end', ...ref, ok: passed, ms: Math.round(performance.now() - started) });
      let value;
      try {
        value = await work();
      } catch (error) {
        end(false);
        throw error;
      }
      end(ok ? ok(value) : true);
      return value;
    },
  };
}
