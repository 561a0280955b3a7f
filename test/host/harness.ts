// What host test files import: describeHost (runs, skips with a reason, or
// fails in CI) and useHost (one booted host per describe block).
import { afterAll, beforeAll, describe } from 'vitest';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { bootHost, type BindMount, type BootOptions, type TestHost } from './machine.js';
import { hostSuiteUnavailable, inCi } from './prerequisites.js';

export { bootHost, type BootOptions, type TestHost } from './machine.js';
export { aptSourceManifest, disableDistributionSources, serveAptRepo, type ServedAptRepo } from './apt-repo.js';

/**
 * describe() for tests that need a booted host. Where hosts cannot boot (not
 * root, tools missing) the block is skipped with the reason in its title, or
 * the file fails when CI is set: in CI this suite must never skip silently.
 */
export function describeHost(title: string, body: () => void): void {
  const reason = hostSuiteUnavailable();
  if (reason === undefined) {
    describe(title, body);
    return;
  }
  if (inCi()) throw new Error(`The real-host suite must run in CI but cannot: ${reason}`);
  process.stderr.write(`[host] skipping "${title}": ${reason}\n`);
  describe.skip(`${title} (skipped: ${reason})`, body);
}

/**
 * Boots a host before the enclosing describe block's tests and stops it after
 * them. Returns a getter, since the host exists only once beforeAll has run.
 */
export function useHost(options?: BootOptions): () => TestHost {
  let machine: TestHost | undefined;
  beforeAll(async () => {
    machine = await bootHost(options);
  });
  afterAll(async () => {
    await machine?.stop();
  });
  return () => {
    if (!machine) throw new Error('The test host is not booted: call useHost() inside describeHost()');
    return machine;
  };
}

/**
 * Read-only mounts that let a booted host run this checkout's CLI and its
 * pinned node: the worktree itself, and its node_modules where that is a
 * symlink to elsewhere (a git worktree sharing another's).
 */
export function checkoutMounts(worktree: string): BindMount[] {
  const modules = realpathSync(path.join(worktree, 'node_modules'));
  return [{ hostPath: worktree }, ...(modules.startsWith(`${worktree}/`) ? [] : [{ hostPath: modules }])];
}
