// ACME state kept in the agent's state directory on the host: the account key
// (reused across runs) and the failures of past orders, so a broken domain is
// retried later and later instead of burning the CA's rate limit (Let's
// Encrypt: 5 failed validations per hour, 50 certificates per domain a week).
import path from 'node:path';
import type { Host } from '../../hosts/types.js';
import { ensureRootDirectory } from '../../hosts/root-files.js';

export interface Failure {
  /** The names of the order that failed: a different list is a new attempt. */
  domains: string[];
  failures: number;
  lastError: string;
  lastAttempt: number;
  /** No new order for these names before this time (ms since epoch). */
  retryAfter: number;
}

export type Failures = Record<string, Failure>;

const BASE_BACKOFF_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 24 * 3_600_000;

export function acmeDirectory(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'acme');
}

export function accountKeyPath(stateDirectory: string, directoryUrl: string): string {
  // One account per CA: the host name of the directory URL, in plain characters.
  const ca = new URL(directoryUrl).host.replace(/[^A-Za-z0-9.-]/g, '_');
  return path.posix.join(acmeDirectory(stateDirectory), `account-${ca}.pem`);
}

function failuresPath(stateDirectory: string): string {
  return path.posix.join(acmeDirectory(stateDirectory), 'failures.json');
}

/** 5 min, 20 min, 80 min, 5 h 20, then a day. */
export function backoffMs(failures: number): number {
  return Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 4 ** Math.max(0, failures - 1));
}

export async function readFailures(host: Host, stateDirectory: string): Promise<Failures> {
  const bytes = await host.readFile(failuresPath(stateDirectory));
  if (!bytes) return {};
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Failures;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

export async function writeFailures(host: Host, stateDirectory: string, failures: Failures): Promise<void> {
  await ensureStateDir(host, stateDirectory);
  await host.writeFile(failuresPath(stateDirectory), JSON.stringify(failures, null, 1) + '\n', { uid: 0, gid: 0, mode: 0o600 });
}

/** The active back-off for these names, if any. */
export function activeBackoff(failures: Failures, name: string, domains: readonly string[], now: number): Failure | undefined {
  const f = failures[name];
  if (!f || f.retryAfter <= now || f.domains.join(',') !== domains.join(',')) return undefined;
  return f;
}

export async function ensureStateDir(host: Host, stateDirectory: string): Promise<void> {
  await ensureRootDirectory(host, acmeDirectory(stateDirectory));
}
