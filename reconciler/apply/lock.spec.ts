import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHostKitError } from '../core/errors.js';
import type { LocalHost } from '../hosts/local.js';
import { scratchRoot } from '../../test/support/fixtures.js';
import { acquireRunLock, lockPath, withRunLock } from './lock.js';

const STATE = '/var/lib/hostkit';
const FLOCK_JS = fileURLToPath(new URL('../../dist/reconciler/hosts/flock.js', import.meta.url));

describe('reconciler/apply/lock', () => {
  let host: LocalHost;
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ host, root, cleanup } = await scratchRoot());
  });
  afterEach(async () => cleanup());

  it('a second taker fails at once with RUN_LOCKED (retryable) naming the holder, and takes it once it is free', async () => {
    const first = await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'hostkit agent (commit abc)' });
    const refused = await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'hostkit reconcile' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isHostKitError(refused) && refused.code).toBe('RUN_LOCKED');
    expect(isHostKitError(refused) && refused.retryable).toBe(true);
    expect((refused as Error).message).toContain('hostkit agent (commit abc)');
    await first.release();
    const second = await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'hostkit reconcile' });
    await second.release();
    // The lock file is root's alone, in a state directory made for it (root's, 0700); the owner note goes with the lock.
    expect((await stat(path.join(root, lockPath(STATE)))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(root, STATE))).mode & 0o777).toBe(0o700);
    expect(await host.readFile(`${STATE}/run.lock.json`)).toBeUndefined();
  });

  it('a second taker waits, says so once, and runs when the first releases', async () => {
    const order: string[] = [];
    const waits: string[] = [];
    const first = withRunLock(host, STATE, { timeoutMs: 0, command: 'first' }, async () => {
      order.push('first start');
      await new Promise((r) => setTimeout(r, 400));
      order.push('first end');
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    const second = withRunLock(host, STATE, { timeoutMs: 5_000, command: 'second', onWait: (m) => waits.push(m) }, async () => {
      order.push('second');
    });
    await Promise.all([first, second]);
    expect(order).toEqual(['first start', 'first end', 'second']);
    expect(performance.now() - started).toBeGreaterThan(200);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatch(/^waiting up to 5s for the run lock .*run\.lock on local:.*, held by first \(pid \d+, since /);
  });

  it('gives up after --lock-timeout when the holder does not finish', async () => {
    const held = await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'slow' });
    const started = performance.now();
    const error = await acquireRunLock(host, STATE, { timeoutMs: 300, command: 'impatient' }).catch((e: unknown) => e);
    expect(isHostKitError(error) && error.code).toBe('RUN_LOCKED');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    await held.release();
  });

  it('is free again as soon as the process holding it is killed (SIGKILL)', async () => {
    const file = path.join(root, lockPath(STATE));
    await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'make the file' }).then((l) => l.release());
    // Another node process takes the lock and says so; then it is killed without any chance to release it.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { flockFile } = await import(${JSON.stringify(FLOCK_JS)}); await flockFile(${JSON.stringify(file)}, 0); console.log('held'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve()));
    await expect(acquireRunLock(host, STATE, { timeoutMs: 0, command: 'while held' })).rejects.toMatchObject({ code: 'RUN_LOCKED' });
    child.kill('SIGKILL');
    const lock = await acquireRunLock(host, STATE, { timeoutMs: 5_000, command: 'after the kill' });
    await lock.release();
  });

  it('withRunLock releases the lock when the work throws', async () => {
    await expect(
      withRunLock(host, STATE, { timeoutMs: 0, command: 'failing' }, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const again = await acquireRunLock(host, STATE, { timeoutMs: 0, command: 'next' });
    await again.release();
  });
});
