import type { Logger } from 'pino';
import type { Redactor } from '../core/secrets.js';
import type { ReconcileInput } from '../engine.js';
import { LocalHost } from '../hosts/local.js';
import { defaultCacheDir } from '../manifests/parse-cache.js';
import { headCommit } from '../sources/git.js';
import { hostNameOf, type HostTargetOptions } from './operate.js';
import { assertRepository } from './validate.js';

/**
 * What reconcileHost needs to plan (or apply to) this machine, from the options of the
 * command line (--repo, --host, --root, --state-dir, --no-cache): built here only, so
 * `hostkit reconcile`, `plan`, `--watch` and `status` run the engine alike.
 */
export async function localRunInput(
  opts: Omit<HostTargetOptions, 'logLevel'>,
  run: { dryRun: boolean; log: Logger; redactor: Redactor },
): Promise<ReconcileInput> {
  const repoDir = await assertRepository(opts.repo);
  const commit = await headCommit(repoDir);
  return {
    ...run,
    repoDir,
    repository: opts.repo,
    hostName: hostNameOf(opts),
    host: new LocalHost(opts.root ? { root: opts.root } : {}),
    ...(opts.cache !== false ? { cacheDir: defaultCacheDir(opts.stateDir ? { stateDirectory: opts.stateDir } : {}) } : {}),
    ...(commit ? { commit } : {}),
    ...(opts.stateDir ? { stateDirectory: opts.stateDir } : {}),
  };
}
