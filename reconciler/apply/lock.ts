import type { Logger } from 'pino';
import { errorMessage, HostKitError } from '../core/errors.js';
import { holdKnownDirectory } from '../hosts/root-files.js';
import type { HeldLock, Host } from '../hosts/types.js';
import { ensureDirectory, jsonText, readJson } from './state-file.js';

// The host-wide run lock: one flock(2) on STATE/run.lock, held for the whole
// of every run that changes the host (reconcile, rollback, resume, the agent's
// runs and heals), from before an interrupted run is recovered until the
// journal is closed. A second process waits for it; a dry run never takes it.
// Since the kernel frees a flock when its holder dies, an open run found while
// holding the lock is an interrupted one, never a run in progress.

export const DEFAULT_LOCK_TIMEOUT_MS = 5 * 60_000;

/** Who holds the lock, written next to it once taken (for the message of the one who waits). */
export interface LockOwner {
  pid: number;
  command: string;
  since: string;
}

export interface RunLockOptions {
  /** How long to wait for a lock another process holds; 0 fails at once. */
  timeoutMs: number;
  /** What this process is doing, for the message of a process that waits on it. */
  command: string;
  log?: Logger;
  /** Told once when the lock is held by another process and this one starts waiting. */
  onWait?: (message: string) => void;
}

export function lockPath(stateDirectory: string): string {
  return `${stateDirectory}/run.lock`;
}

function ownerPath(stateDirectory: string): string {
  return `${stateDirectory}/run.lock.json`;
}

/**
 * Take the run lock of the host, waiting up to `timeoutMs`. Rejects with
 * RUN_LOCKED (retryable) when another process still holds it then.
 */
export async function acquireRunLock(host: Host, stateDirectory: string, options: RunLockOptions): Promise<HeldLock> {
  const file = lockPath(stateDirectory);
  // Made here, root 0600, rather than by flock (which follows the umask); an append of nothing never follows a symlink.
  const take = async () => {
    await host.appendFile(file, '', { uid: 0, gid: 0, mode: 0o600 });
    return host.lock(file, { waitMs: 0 });
  };
  let held: HeldLock | undefined;
  try {
    // The state directory is there but on a host's first run: not looked for first (over SSH, a round trip less).
    held = await take();
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw cause;
    await host.flush?.().catch(() => undefined); // a pipelined append's failure, told: the host runs requests again
    await ensureDirectory(host, stateDirectory);
    held = await take();
  }
  if (!held) {
    const owner = await readJson<LockOwner>(host, ownerPath(stateDirectory));
    const who = owner ? `${owner.command} (pid ${owner.pid}, since ${owner.since})` : 'another HostKit process';
    if (options.timeoutMs > 0) {
      const message = `waiting up to ${formatMs(options.timeoutMs)} for the run lock ${file} on ${host.name}, held by ${who}`;
      options.onWait?.(message);
      options.log?.warn({ lock: file, owner }, 'waiting for the run lock');
      held = await host.lock(file, { waitMs: options.timeoutMs });
    }
    if (!held) {
      throw new HostKitError(
        'RUN_LOCKED',
        `Another run holds the lock ${file} on ${host.name}: ${who}. Nothing was changed; try again when it is done, or wait longer with --lock-timeout.`,
        { data: { lock: file, ...(owner ? { owner } : {}) } },
      );
    }
  }
  const owner = ownerPath(stateDirectory);
  try {
    // The state directory was made above.
    await host.writeFile(owner, jsonText({ pid: process.pid, command: options.command, since: new Date().toISOString() } satisfies LockOwner), {
      uid: 0,
      gid: 0,
      mode: 0o600,
    });
  } catch (cause) {
    await held.release();
    throw cause;
  }
  const forget = holdKnownDirectory(host, stateDirectory);
  return {
    // The owner file goes first: a run that changed nothing leaves the state directory as it found it.
    // Best effort: a host that stopped answering must not hide how the run ended (a stale note is harmless).
    release: async () => {
      forget();
      try {
        await host.remove(owner);
      } catch (cause) {
        options.log?.warn({ file: owner, error: errorMessage(cause) }, 'run lock note not removed');
      } finally {
        await held.release();
      }
    },
  };
}

/** Run `work` holding the run lock; the lock is released however it ends. */
export async function withRunLock<T>(host: Host, stateDirectory: string, options: RunLockOptions, work: () => Promise<T>): Promise<T> {
  const held = await acquireRunLock(host, stateDirectory, options);
  try {
    return await work();
  } finally {
    await held.release();
  }
}

function formatMs(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
