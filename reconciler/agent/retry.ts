import type { RetryPolicy } from './config.js';

// Capped exponential back-off for work whose failure may be transient: a git
// remote that does not answer, PostgreSQL restarting, the run lock held by an
// operator's reconcile. Only what the work calls retryable is tried again;
// anything else fails at once.

/** The wait before try `attempt` (2, 3, ...): initial, doubled each time, capped. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 2));
}

export interface RetryHooks<T> {
  /** Whether a result (or a thrown error) is worth another try. */
  retryable: (outcome: { value: T } | { error: unknown }) => boolean;
  /** Told before each wait, with the try that failed and the wait. */
  onRetry?: (attempt: number, waitMs: number, outcome: { value: T } | { error: unknown }) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Run `work(attempt, last)` until it succeeds, fails for good, or the tries
 * run out. `last` tells the work that no retry follows (a failure then counts).
 * The last try's outcome is returned or thrown as it is.
 */
export async function retrying<T>(policy: RetryPolicy, work: (attempt: number, last: boolean) => Promise<T>, hooks: RetryHooks<T>): Promise<T> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= policy.attempts;
    let outcome: { value: T } | { error: unknown };
    try {
      outcome = { value: await work(attempt, last) };
    } catch (error) {
      outcome = { error };
    }
    if (last || !hooks.retryable(outcome)) {
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    }
    const wait = backoffMs(policy, attempt + 1);
    hooks.onRetry?.(attempt, wait, outcome);
    await sleep(wait);
  }
}
