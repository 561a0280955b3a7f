import { describe, expect, it } from 'vitest';
import { CoalescingQueue } from './queue.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reconciler/agent/queue', () => {
  it('100 triggers within a second give at most two runs, never interleaved, even when a run is much shorter than the burst', async () => {
    const queue = new CoalescingQueue({ spacingMs: 1000 });
    const runs: { start: number; end: number; reasons: string[] }[] = [];
    let running = 0;
    const job = async (reasons: string[]) => {
      running++;
      expect(running).toBe(1);
      const start = performance.now();
      await sleep(50);
      runs.push({ start, end: performance.now(), reasons });
      running--;
    };
    const done: Promise<void>[] = [];
    const began = performance.now();
    for (let i = 0; i < 100; i++) {
      done.push(queue.trigger('reconcile', `webhook ${i}`, job));
      await sleep(5);
    }
    expect(performance.now() - began).toBeLessThan(1000);
    await Promise.all(done);
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(2);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    // Every trigger is covered by a run that started after it arrived.
    expect(runs.flatMap((r) => r.reasons)).toHaveLength(100);
  });

  it('a trigger after a run finished starts a new run; different keys queue separately but never overlap', async () => {
    const queue = new CoalescingQueue();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`start ${name}`);
      await sleep(20);
      log.push(`end ${name}`);
    };
    await queue.trigger('reconcile', 'a', job('r1'));
    await queue.trigger('reconcile', 'b', job('r2'));
    await Promise.all([queue.trigger('reconcile', 'c', job('r3')), queue.trigger('drift', 'd', job('d1')), queue.trigger('drift', 'e', job('d2'))]);
    expect(log).toEqual(['start r1', 'end r1', 'start r2', 'end r2', 'start r3', 'end r3', 'start d1', 'end d1']);
  });
});
