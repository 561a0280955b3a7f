import { parseWait } from '../core/duration.js';
import { HostKitError, isHostKitError } from '../core/errors.js';

// What the user sees when a command fails: the message, its code, and no stack
// unless HOSTKIT_DEBUG is set (a stack is for bugs, not for expected failures).
export function describeFailure(cause: unknown): string {
  if (isHostKitError(cause)) {
    const extra = process.env.HOSTKIT_DEBUG && cause.stack ? `\n${cause.stack}` : '';
    return `hostkit: error: ${cause.message} [${cause.code}]${extra}\n`;
  }
  const error = cause instanceof Error ? cause : new Error(String(cause));
  return `hostkit: internal error: ${error.message}\n${error.stack ?? ''}\nThis is a bug in HostKit; please report it with the command you ran.\n`;
}

/** The process exit code for a failure: 3 when another run holds the lock, else 1 (see EXIT in cli.ts). */
export function exitCodeOf(cause: unknown): number {
  return isHostKitError(cause) && cause.code === 'RUN_LOCKED' ? 3 : 1;
}

/** A --lock-timeout value in milliseconds: a duration as manifests write them (30s, 5m, 1h), or 0. */
export function parseLockTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseWait(text);
  if (ms === undefined) throw new HostKitError('BAD_OPTION', `--lock-timeout expects a duration such as 30s, 5m or 0, got ${JSON.stringify(text)}`);
  return ms;
}
