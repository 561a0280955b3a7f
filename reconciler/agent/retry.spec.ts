import { describe, expect, it } from 'vitest';
import { HostKitError, isRetryable } from '../core/errors.js';
import { backoffMs, retrying } from './retry.js';

const POLICY = { attempts: 4, initialDelayMs: 1_000, maxDelayMs: 3_000 };

describe('reconciler/agent/retry', () => {
  it('backs off exponentially from the initial delay, capped', () => {
    expect([2, 3, 4, 5, 6].map((a) => backoffMs(POLICY, a))).toEqual([1_000, 2_000, 3_000, 3_000, 3_000]);
  });

  it('tries a retryable failure again until it passes, telling each wait', async () => {
    const waits: number[] = [];
    const lasts: boolean[] = [];
    let calls = 0;
    const value = await retrying(
      POLICY,
      async (_attempt, last) => {
        lasts.push(last);
        if (++calls < 3) throw new HostKitError('GIT_FETCH_FAILED', 'remote gone');
        return 'abc';
      },
      { retryable: (o) => 'error' in o && isRetryable(o.error), sleep: async (ms) => void waits.push(ms) },
    );
    expect(value).toBe('abc');
    expect(waits).toEqual([1_000, 2_000]);
    expect(lasts).toEqual([false, false, false]);
  });

  it('fails at once on what is not retryable, and after the last try on what is', async () => {
    let calls = 0;
    const hooks = { retryable: (o: { error: unknown } | { value: unknown }) => 'error' in o && isRetryable(o.error), sleep: async () => undefined };
    await expect(
      retrying(
        POLICY,
        async () => {
          calls++;
          throw new HostKitError('UNIT_INVALID', 'bad unit');
        },
        hooks,
      ),
    ).rejects.toThrow('bad unit');
    expect(calls).toBe(1);
    const lasts: boolean[] = [];
    await expect(
      retrying(
        POLICY,
        async (_a, last) => {
          lasts.push(last);
          throw new HostKitError('RUN_LOCKED', 'held');
        },
        hooks,
      ),
    ).rejects.toThrow('held');
    expect(lasts).toEqual([false, false, false, true]);
  });

  it('retries a result the hook calls retryable (a run rolled back for a transient cause)', async () => {
    let calls = 0;
    const result = await retrying(POLICY, async () => ({ ok: ++calls >= 2 }), { retryable: (o) => 'value' in o && !o.value.ok, sleep: async () => undefined });
    expect(result).toEqual({ ok: true });
    expect(calls).toBe(2);
  });
});
