import PQueue from 'p-queue';

/**
 * One job at a time for a host (p-queue, concurrency 1), so runs never
 * interleave. Triggers of the same key that arrive while a job of that key is
 * waiting join it: a burst during a run becomes one next run, never a backlog.
 * The job receives every reason that was folded into it.
 *
 * Runs of one key start at least `spacingMs` after the previous one ended, and
 * triggers keep folding in until then: a burst no longer than the spacing
 * gives at most two runs however short each run is.
 */
export class CoalescingQueue {
  private readonly queue = new PQueue({ concurrency: 1 });
  private readonly waiting = new Map<string, { reasons: string[]; done: Promise<void> }>();
  private readonly lastEnd = new Map<string, number>();
  private readonly spacingMs: number;

  constructor(options: { spacingMs?: number } = {}) {
    this.spacingMs = options.spacingMs ?? 0;
  }

  /** Queue `job` under `key` unless one is already waiting; resolves when the run that covers this trigger ends. */
  trigger(key: string, reason: string, job: (reasons: string[]) => Promise<void>): Promise<void> {
    const pending = this.waiting.get(key);
    if (pending) {
      pending.reasons.push(reason);
      return pending.done;
    }
    const entry = { reasons: [reason], done: Promise.resolve() };
    // Registered before queue.add: p-queue may start the job synchronously.
    this.waiting.set(key, entry);
    entry.done = this.queue.add(async () => {
      const wait = (this.lastEnd.get(key) ?? -Infinity) + this.spacingMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.waiting.get(key) === entry) this.waiting.delete(key); // from now on, a new trigger queues the next run
      try {
        await job(entry.reasons);
      } finally {
        this.lastEnd.set(key, performance.now());
      }
    });
    return entry.done;
  }

  get size(): number {
    return this.queue.size + this.queue.pending;
  }

  /** Resolves when nothing is running or waiting. */
  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  pause(): void {
    this.queue.pause();
    this.queue.clear();
    this.waiting.clear();
  }
}
