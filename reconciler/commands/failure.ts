import { isHostKitError } from '../core/errors.js';

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
