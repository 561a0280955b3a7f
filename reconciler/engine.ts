import { hasErrors, warning, type Diagnostic } from './core/diagnostics.js';
import { errorMessage, HostKitError } from './core/errors.js';
import { DEFAULT_LOCK_TIMEOUT_MS, withRunLock } from './apply/lock.js';
import { runsDirectory } from './apply/journal.js';
import { loadSafety } from './apply/quarantine.js';
import type { HostManifest, Manifest } from './manifests/types.js';
import { namesMachine } from './core/hostname.js';
import type { ApplyResult } from './apply/executor.js';
import {
  applySafely,
  interruptedRunWarning,
  recoverBeforePlan,
  stateDirectoryFor,
  type Hold,
  type SafeApplyExtras,
  type SafeApplyOptions,
} from './apply/safe.js';
import { planHost, type PlannedHost, type PlanTarget } from './diff/plan.js';
import type { Host } from './hosts/types.js';
import { validateRepository, type Repository } from './manifests/index.js';

/**
 * One run of the engine, as its callers (the CLI commands, the agent, tests) describe it.
 * What planHost and applySafely take is passed on to them whole (PlanTarget,
 * SafeApplyOptions): an option of theirs is added in its own place only.
 */
export interface ReconcileInput extends Omit<PlanTarget, 'repository'>, SafeApplyOptions {
  /** Directory holding the manifests. */
  repoDir: string;
  /** How the repository is named in plans (e.g. the --repo argument); default repoDir. */
  repository?: string;
  dryRun: boolean;
  /** Parse cache folder (unchanged manifest files are not parsed again). */
  cacheDir?: string;
  /** How long an apply waits for the host's run lock (default 5 minutes; 0: fail at once with RUN_LOCKED). */
  lockTimeoutMs?: number;
  /** Told when an apply starts waiting for the run lock another process holds. */
  onLockWait?: (message: string) => void;
  /** What this run is, for the message of a process waiting on its lock (default "hostkit reconcile"). */
  lockCommand?: string;
  /** Apply even when the machine's hostname is not one the Host manifest names (simulated hosts). */
  hostMismatchOk?: boolean;
  /** Told the plan an apply is about to apply (it has no errors), before anything changes: the CLI shows it ahead of the progress. */
  onPlanned?: (planned: PlannedHost) => void;
  /**
   * A saved plan (commands/saved-plan.ts): planned as an apply plans (remote refs resolved,
   * what an apply would refuse an error), also in a dry run. 'save' keeps the host's
   * fingerprint key where it has none (as a first apply does), so that the plan's
   * fingerprints read the same when it is applied; 'check' writes nothing.
   */
  savedPlan?: 'save' | 'check';
  /**
   * Asked, holding the run lock, of the plan an apply is about to apply (after onPlanned's
   * plan has no errors, before anything changes): a saved plan's check throws PLAN_STALE
   * when it differs. If it throws, nothing of the plan was applied.
   */
  approve?: (planned: PlannedHost, repo: Repository) => void | Promise<void>;
}

export type ReconcileOutcome =
  | { stage: 'invalid'; repo: Repository }
  | { stage: 'planned'; repo: Repository; planned: PlannedHost }
  | { stage: 'applied'; repo: Repository; planned: PlannedHost; result: ApplyResult & SafeApplyExtras }
  /** Not applied: the commit is quarantined after failing (see apply/quarantine.ts). */
  | { stage: 'held'; repo: Repository; planned: PlannedHost; hold: Hold };

// The whole pipeline for one host: load + validate -> expand + observe + plan ->
// (dry run stops here, as does a plan with errors) -> apply. An apply first
// checks that the Host manifest names the machine it reaches, then holds the
// host-wide run lock from recovering an interrupted run until its journal is
// closed; a dry run takes no lock and only warns about a mismatch.
export async function reconcileHost(input: ReconcileInput): Promise<ReconcileOutcome> {
  const repo = await validateRepository(input.repoDir, input.cacheDir ? { cacheDir: input.cacheDir } : {});
  if (!repo.valid) return { stage: 'invalid', repo };
  const hostManifest = repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host' && m.name === input.hostName);
  const mismatch = hostManifest ? await machineMismatch(input.host, hostManifest) : undefined;
  const stateDirectory = stateDirectoryFor(repo.manifests, input.hostName, input.stateDirectory);
  if (input.dryRun || !hostManifest || !stateDirectory) {
    // Without its Host manifest planHost fails, naming the hosts the repository has.
    const planned = await plan(input, repo, undefined);
    await endRun(planned);
    // With the override the mismatch is meant (a simulated host): the plan, which may be posted on a pull request, does not name the machine.
    if (mismatch && !input.hostMismatchOk)
      planned.plan.diagnostics.push(warning('host mismatch', `${mismatch} An apply would refuse it.`, hostManifest!.source.locate('/metadata/name')));
    const interrupted = await interruptedRunWarning(input.host, stateDirectory);
    if (interrupted) planned.plan.diagnostics.push(interrupted);
    return { stage: 'planned', repo, planned };
  }
  if (mismatch && !input.hostMismatchOk) {
    throw new HostKitError(
      'HOST_MISMATCH',
      `${mismatch} Nothing was applied. Run it on that machine, add this name to spec.hostnames, or pass --host-mismatch-ok.`,
      {
        data: { host: input.hostName },
      },
    );
  }
  const lock = {
    timeoutMs: input.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    command: input.lockCommand ?? 'hostkit reconcile',
    log: input.log,
    ...(input.onLockWait ? { onWait: input.onLockWait } : {}),
  };
  return withRunLock(input.host, stateDirectory, lock, async () => {
    // Holding the lock, an open run is one whose process died: roll it back before planning (apply/restore.ts).
    const recovered = await recoverBeforePlan(input.host, stateDirectory, input.log);
    // Read while planning (over SSH, its round trip shared with the plan's first reads); the lock keeps it as read.
    const safety = loadSafety(input.host, stateDirectory);
    safety.catch(() => undefined); // awaited by applySafely, which reports a failure
    const runsListed = input.host.readdir(runsDirectory(stateDirectory));
    runsListed.catch(() => undefined); // a failure: the runs are listed again when pruning
    const planned = await plan(input, repo, mismatch ? warning('host mismatch', `${mismatch} Applied anyway (--host-mismatch-ok).`) : undefined);
    try {
      if (hasErrors(planned.plan.diagnostics)) return { stage: 'planned', repo, planned };
      await input.approve?.(planned, repo);
      input.onPlanned?.(planned);
      const safe = await applySafely(planned, { ...input, manifests: repo.manifests, recovered, safety, runsListed });
      return safe.kind === 'held' ? { stage: 'held', repo, planned, hold: safe.hold } : { stage: 'applied', repo, planned, result: safe.result };
    } finally {
      await endRun(planned);
    }
  });
}

async function plan(input: ReconcileInput, repo: Repository, extra: ReturnType<typeof warning> | undefined): Promise<PlannedHost> {
  const planned = await planHost({
    ...input,
    repository: input.repository ?? input.repoDir,
    manifests: repo.manifests,
    mode: input.dryRun && !input.savedPlan ? 'plan' : 'apply',
    keepFingerprintKey: !input.dryRun || input.savedPlan === 'save',
  });
  // Validation warnings; those the plan's own expansion found again are kept once.
  const key = (d: Diagnostic) => `${d.summary}|${d.detail}|${d.location?.file}|${d.location?.line}`;
  const found = new Set(planned.plan.diagnostics.map(key));
  planned.plan.diagnostics.push(...repo.diagnostics.filter((d) => !found.has(key(d))));
  if (extra) planned.plan.diagnostics.push(extra);
  return planned;
}

// The run is over: what it held open (PostgreSQL's admin pool) is closed. A failure to
// close costs a warning, never the outcome.
async function endRun(planned: PlannedHost): Promise<void> {
  await planned.context.run.close().catch((error: unknown) => planned.context.log.warn({ error: errorMessage(error) }, 'run not closed'));
}

/**
 * Why the Host manifest does not name the machine `host` reaches, or undefined
 * when it does: its hostname (or the part before the first dot) is the
 * manifest's name or one of its spec.hostnames.
 */
export async function machineMismatch(host: Host, manifest: Manifest<HostManifest>): Promise<string | undefined> {
  const names = [manifest.name, ...(manifest.value.spec?.hostnames ?? [])].map((n) => n.toLowerCase());
  let machine: string;
  try {
    machine = (await host.hostname()).toLowerCase();
  } catch (cause) {
    return `The Host manifest "${manifest.name}" (${manifest.source.file}) cannot be checked against the machine: ${errorMessage(cause)}.`;
  }
  if (namesMachine(names, machine)) return undefined;
  return `The Host manifest "${manifest.name}" (${manifest.source.file}) does not name this machine: ${host.name} reports the hostname "${machine}", and the manifest names ${names.map((n) => `"${n}"`).join(', ')}.`;
}
