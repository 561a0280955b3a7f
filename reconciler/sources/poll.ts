import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';

export interface PollerOptions {
  intervalMs: number;
  /** Fraction of the interval added at random to each wait (default 0.1), so a fleet does not poll in step. */
  jitter?: number;
  /** The cheap check: the remote branch's commit (e.g. one `git ls-remote`). */
  remoteHead: () => Promise<string | undefined>;
  /** The commit the loop has last seen; a poll that finds it again does nothing more. */
  lastSeen: () => string | undefined;
  /** Called only when the remote commit differs from lastSeen. */
  onChange: (commit: string) => void;
  log: Logger;
  random?: () => number;
}

export interface Poller {
  /** One poll now: true when it found a new commit. */
  poll(): Promise<boolean>;
  stop(): void;
}

/** The delay before the next poll: the interval plus up to `jitter` of it. */
export function nextDelay(intervalMs: number, jitter = 0.1, random: () => number = Math.random): number {
  return Math.round(intervalMs + intervalMs * jitter * random());
}

// Poll on an interval with jitter. An unchanged remote costs one ls-remote; the
// fetch happens in the loop, and only when the commit changed.
export function startPoller(options: PollerOptions): Poller {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poll = async (): Promise<boolean> => {
    try {
      const head = await options.remoteHead();
      if (!head || head === options.lastSeen()) return false;
      options.log.info({ commit: head }, 'poll found a new commit');
      options.onChange(head);
      return true;
    } catch (cause) {
      options.log.warn({ err: errorMessage(cause) }, 'poll failed');
      return false;
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(
      () => {
        void poll().finally(schedule);
      },
      nextDelay(options.intervalMs, options.jitter, options.random),
    );
  };
  schedule();
  return {
    poll,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
