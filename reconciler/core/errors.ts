// One base for every thrown error: a stable code to branch on, structured data
// for logs and reports, the cause, and whether trying again can help.
// Expected problems in manifests are Diagnostics (values), not exceptions.
// Codes and whether they are retryable: core/error-codes.ts.
import { retryableCode } from './error-codes.js';

export interface HostKitErrorOptions {
  data?: Record<string, unknown>;
  cause?: unknown;
  retryable?: boolean;
}

export class HostKitError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: HostKitErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HostKitError';
    this.code = code;
    this.data = options.data ?? {};
    this.retryable = options.retryable ?? retryableCode(code);
  }
}

export function isHostKitError(error: unknown): error is HostKitError {
  return error instanceof HostKitError;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether trying the same work again may succeed (a HostKitError that says so; nothing else). */
export function isRetryable(error: unknown): boolean {
  return isHostKitError(error) && error.retryable;
}
