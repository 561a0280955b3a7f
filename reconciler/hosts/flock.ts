import { spawn } from 'node:child_process';
import { HostKitError } from '../core/errors.js';
import type { HeldLock } from './types.js';

// An exclusive flock(2) on a file of this machine, held by a util-linux
// `flock` process that runs `cat` on a pipe from us: the lock lives exactly as
// long as that pipe. Releasing closes the pipe; if this process dies (even by
// SIGKILL) the kernel closes it too, `cat` reads end-of-file and exits, and
// the lock is free again. Node has no flock of its own; a child holding it is
// also what lets a remote host (over SSH) hold one the same way.

/** flock(1) exits with this when the lock could not be had in time (--conflict-exit-code). */
const CONFLICT = 75;
const PROBE = 'hostkit-lock\n';

/**
 * Take the lock on `file` (created if missing, mode 0600), waiting up to
 * `waitMs` (0: do not wait). Resolves with the held lock, or undefined when
 * another process holds it past the wait. `argv` runs flock elsewhere (e.g.
 * under nsenter); by default on this machine.
 */
export function flockFile(file: string, waitMs: number, argv: readonly string[] = []): Promise<HeldLock | undefined> {
  const wait = waitMs <= 0 ? ['--nonblock'] : ['--wait', (waitMs / 1000).toFixed(3)];
  const args = [...argv.slice(1), 'flock', '--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), file, 'cat'];
  const command = argv[0] ?? 'flock';
  const child = spawn(command, argv[0] ? args : args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let echoed = '';
    let stderr = '';
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    child.stdin.on('error', () => undefined); // flock may exit before reading
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
    // `cat` echoes the probe only once flock holds the lock and has started it.
    child.stdout.on('data', (chunk: Buffer) => {
      echoed += chunk.toString('utf8');
      if (!echoed.startsWith(PROBE)) return;
      done(() =>
        resolve({
          release: () =>
            new Promise<void>((released) => {
              if (child.exitCode !== null || child.signalCode !== null) return released();
              child.once('close', () => released());
              child.stdin.end();
            }),
        }),
      );
    });
    child.once('error', (error) =>
      done(() => reject(new HostKitError('LOCK_FAILED', `Could not take the lock ${file}: ${error.message}`, { data: { file }, cause: error }))),
    );
    child.once('close', (code) =>
      done(() => {
        if (code === CONFLICT) resolve(undefined);
        else
          reject(
            new HostKitError('LOCK_FAILED', `Could not take the lock ${file}: flock exited ${code}${stderr ? `: ${stderr.trim()}` : ''}`, { data: { file } }),
          );
      }),
    );
    child.stdin.write(PROBE);
  });
}
