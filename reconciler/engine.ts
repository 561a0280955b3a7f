import type { Logger } from 'pino';
import { hasErrors } from './core/diagnostics.js';
import { Redactor } from './core/secrets.js';
import type { ResourceKind } from './core/resource.js';
import { applyPlan, type ApplyResult } from './apply/executor.js';
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
}

export type ReconcileOutcome =
  | { stage: 'invalid'; repo: Repository }
  | { stage: 'planned'; repo: Repository; planned: PlannedHost }
  | { stage: 'applied'; repo: Repository; planned: PlannedHost; result: ApplyResult };

// The whole pipeline for one host: load + validate -> expand + observe + plan ->
// (dry run stops here, as does a plan with errors) -> apply.
export async function reconcileHost(input: ReconcileInput): Promise<ReconcileOutcome> {
  const repo = await validateRepository(input.repoDir, input.cacheDir ? { cacheDir: input.cacheDir } : {});
  if (!repo.valid) return { stage: 'invalid', repo };
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
  if (input.dryRun || hasErrors(planned.plan.diagnostics)) return { stage: 'planned', repo, planned };
  return { stage: 'applied', repo, planned, result: await applyPlan(planned) };
}
