import type { Logger } from 'pino';
import { hasErrors } from './core/diagnostics.js';
import { Redactor } from './core/secrets.js';
import type { ResourceKind } from './core/resource.js';
import type { ApplyResult } from './apply/executor.js';
import { applySafely, interruptedRunWarning, recoverBeforePlan, stateDirectoryFor, type Hold, type SafeApplyExtras } from './apply/safe.js';
import { planHost, type PlannedHost } from './diff/plan.js';
import type { AnyDriver } from './drivers/types.js';
import type { Host } from './hosts/types.js';
import { validateRepository, type Repository } from './manifests/index.js';

export interface ReconcileInput {
  /** Directory holding the manifests. */
  repoDir: string;
  /** How the repository is named in plans (e.g. the --repo argument). */
  repository?: string;
  hostName: string;
  host: Host;
  dryRun: boolean;
  log: Logger;
  commit?: string;
  redactor?: Redactor;
  stateDirectory?: string;
  env?: NodeJS.ProcessEnv;
  drivers?: ReadonlyMap<ResourceKind, AnyDriver>;
  /** Parse cache folder (unchanged manifest files are not parsed again). */
  cacheDir?: string;
  /** Runs kept in STATE/runs after an apply (default DEFAULT_KEEP_RUNS). */
  keepRuns?: number;
  /**
   * The ids of the pending changes this run may apply (the agent's drift heals and renewals);
   * the others are left as they are. Such a run un-pauses no project.
   */
  only?: ReadonlySet<string>;
}

export type ReconcileOutcome =
  | { stage: 'invalid'; repo: Repository }
  | { stage: 'planned'; repo: Repository; planned: PlannedHost }
  | { stage: 'applied'; repo: Repository; planned: PlannedHost; result: ApplyResult & SafeApplyExtras }
  /** Not applied: the commit is quarantined after failing (see apply/quarantine.ts). */
  | { stage: 'held'; repo: Repository; planned: PlannedHost; hold: Hold };

// The whole pipeline for one host: load + validate -> expand + observe + plan ->
// (dry run stops here, as does a plan with errors) -> apply.
export async function reconcileHost(input: ReconcileInput): Promise<ReconcileOutcome> {
  const repo = await validateRepository(input.repoDir, input.cacheDir ? { cacheDir: input.cacheDir } : {});
  if (!repo.valid) return { stage: 'invalid', repo };
  // A run a killed process left open is rolled back before anything is planned (apply/restore.ts).
  const stateDirectory = stateDirectoryFor(repo.manifests, input.hostName, input.stateDirectory);
  const recovered = input.dryRun ? undefined : await recoverBeforePlan(input.host, stateDirectory, input.log);
  const planned = await planHost({
    manifests: repo.manifests,
    hostName: input.hostName,
    host: input.host,
    mode: input.dryRun ? 'plan' : 'apply',
    log: input.log,
    repository: input.repository ?? input.repoDir,
    redactor: input.redactor ?? new Redactor(),
    ...(input.commit ? { commit: input.commit } : {}),
    ...(input.stateDirectory ? { stateDirectory: input.stateDirectory } : {}),
    ...(input.env ? { env: input.env } : {}),
    ...(input.drivers ? { drivers: input.drivers } : {}),
  });
  planned.plan.diagnostics.push(...repo.diagnostics); // validation warnings
  if (input.dryRun) {
    const interrupted = await interruptedRunWarning(input.host, stateDirectory);
    if (interrupted) planned.plan.diagnostics.push(interrupted);
  }
  if (input.dryRun || hasErrors(planned.plan.diagnostics)) return { stage: 'planned', repo, planned };
  const safe = await applySafely(planned, {
    manifests: repo.manifests,
    ...(recovered ? { recovered } : {}),
    ...(input.keepRuns !== undefined ? { keepRuns: input.keepRuns } : {}),
    ...(input.only ? { only: input.only } : {}),
  });
  return safe.kind === 'held' ? { stage: 'held', repo, planned, hold: safe.hold } : { stage: 'applied', repo, planned, result: safe.result };
}
