import type { Logger } from 'pino';
import type { Redactor } from '../core/secrets.js';
import type { ReconcileInput } from '../engine.js';
import { LocalHost } from '../hosts/local.js';
import type { Host } from '../hosts/types.js';
import { defaultCacheDir } from '../manifests/parse-cache.js';
import { headCommit } from '../sources/git.js';
import { hostNameOf, type HostTargetOptions } from './operate.js';
import { assertRepository } from './validate.js';

/** The host a command acts on when --target or --hosts named it (commands/targets.ts), and the Host manifest it stands for. */
export interface OnHost {
  host: Host;
  hostName: string;
}

/** The host a command reads and changes: a --target's, or this machine (under --root, a directory standing for its /). */
export function hostOf(opts: { on?: OnHost; root?: string }): Host {
  return opts.on?.host ?? new LocalHost(opts.root ? { root: opts.root } : {});
}

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
    host: hostOf(opts),
    ...(opts.cache !== false ? { cacheDir: defaultCacheDir(opts.stateDir ? { stateDirectory: opts.stateDir } : {}) } : {}),
    ...(commit ? { commit } : {}),
    ...(opts.stateDir ? { stateDirectory: opts.stateDir } : {}),
  };
}
