import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { warning } from '../core/diagnostics.js';
import { durationMs } from '../core/duration.js';
import { errorMessage } from '../core/errors.js';
import { pendingChanges } from '../diff/model.js';
import type { PlannedHost } from '../diff/plan.js';
import type { Host } from '../hosts/types.js';
import { hostSettings } from '../manifests/expand.js';
import type { HostManifest, Manifest } from '../manifests/types.js';
import { applyPlan, type ApplyOptions, type ApplyResult } from './executor.js';
import { DEFAULT_KEEP_RUNS, pruneRuns } from './journal.js';
import { healthChecks } from './health.js';
import {
  DEFAULT_POLICY,
  loadSafety,
  pausedProjects,
  recordFailure,
  type DeployPolicy,
  type PauseEntry,
  type QuarantineEntry,
  type SafetyState,
} from './quarantine.js';
import { recoverInterruptedRun } from './restore.js';

// The safe-apply wrapper around the executor, for reconcileHost and the agent:
// an interrupted run is rolled back first; a quarantined commit is not applied;
// a paused project's changes are held back; health checks run after verify; a
// failure quarantines the commit and counts against the projects involved.

export interface Hold {
  reason: 'quarantined';
  quarantine: QuarantineEntry;
  message: string;
}

export interface SafeApplyExtras {
  /** An interrupted run rolled back before this one planned. */
  recovered?: { run: string; errors: string[] };
  /** Projects whose changes were held back. */
  paused?: PauseEntry[];
  /** Projects un-paused because a new commit changed them. */
  released?: string[];
  /** After a failure: the commit is quarantined; these projects were paused by it. */
  quarantined?: boolean;
  pausedNow?: string[];
}

export type SafeApplyOutcome = { kind: 'held'; hold: Hold } | { kind: 'applied'; result: ApplyResult & SafeApplyExtras };

export function deployPolicy(host: HostManifest | undefined): DeployPolicy {
  const d = host?.spec?.deploy;
  return {
    pauseAfterFailures: d?.pauseAfterFailures ?? DEFAULT_POLICY.pauseAfterFailures,
    failureWindowMs: d?.failureWindow ? durationMs(d.failureWindow) : DEFAULT_POLICY.failureWindowMs,
  };
}

/** The state directory the run will use: the override, else the Host manifest's. */
export function stateDirectoryFor(manifests: readonly Manifest[], hostName: string, override?: string): string | undefined {
  if (override) return override;
  const m = manifests.find((x): x is Manifest<HostManifest> => x.kind === 'Host' && x.name === hostName);
  return m ? hostSettings(m).stateDirectory : undefined;
}

/** Before planning an apply: roll back a run a killed process left open. */
export async function recoverBeforePlan(host: Host, stateDirectory: string | undefined, log: Logger): Promise<SafeApplyExtras['recovered']> {
  if (!stateDirectory) return undefined;
  const recovered = await recoverInterruptedRun(host, stateDirectory, log);
  return recovered ? { run: recovered.run, errors: recovered.result.errors.map((e) => `${e.resource}: ${e.error}`) } : undefined;
}

/** For dry runs: a warning when the next apply will first roll back an interrupted run. */
export async function interruptedRunWarning(host: Host, stateDirectory: string | undefined) {
  if (!stateDirectory) return undefined;
  const bytes = await host.readFile(`${stateDirectory}/current-run.json`);
  if (!bytes) return undefined;
  let run = 'unknown';
  try {
    run = (JSON.parse(bytes.toString('utf8')) as { run?: string }).run ?? run;
  } catch {
    // still worth the warning
  }
  return warning(
    'interrupted run',
    `run ${run} on this host is open: another HostKit process is applying it now, or it was interrupted; in that case the next apply rolls it back from its backups first (only once no process holds the run lock)`,
  );
}

export function projectFingerprints(planned: PlannedHost): Map<string, string> {
  const byProject = new Map<string, string[]>();
  for (const r of [...planned.resources].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (!r.project) continue;
    const list = byProject.get(r.project) ?? [];
    list.push(JSON.stringify([r.id, r.spec]));
    byProject.set(r.project, list);
  }
  return new Map([...byProject].map(([p, parts]) => [p, createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 16)]));
}

/**
 * What a caller chooses about an apply: passed on whole, from reconcileHost (engine.ts
 * ReconcileInput extends it) to applySafely, and its executor part to applyPlan.
 */
export interface SafeApplyOptions extends Pick<ApplyOptions, 'only' | 'progress'> {
  /** safety.json, read while the plan was made (under the run lock); else read here. */
  safety?: Promise<SafetyState>;
  /**
   * The runs in STATE/runs, listed while the plan was made, under the run lock and after an interrupted
   * run was recovered (none open): the runs to prune are counted from it and the run this apply adds.
   */
  runsListed?: Promise<string[] | undefined>;
  /** Run the health checks of the projects the apply changed (default true). */
  health?: boolean;
  /** Runs kept in STATE/runs after an apply (default DEFAULT_KEEP_RUNS). */
  keepRuns?: number;
  /** A failure with a transient cause is not counted (no quarantine, no pause): the caller tries again. */
  deferRetryable?: boolean;
  /** The commit is not a new one (start-up convergence): no project is un-paused. */
  keepPauses?: boolean;
  /**
   * An operator's run limited by `only` that applies no new commit (`hostkit rollback --project P --to ID`
   * switches back to a kept release): a quarantine of the commit does not hold it back, and its failure
   * quarantines no commit (it still counts against the project).
   */
  operatorRun?: boolean;
}

export async function applySafely(
  planned: PlannedHost,
  options: SafeApplyOptions & { manifests: readonly Manifest[]; recovered?: SafeApplyExtras['recovered'] },
): Promise<SafeApplyOutcome> {
  const { plan, context } = planned;
  const { host, stateDirectory } = context;
  const commit = plan.commit;
  const only = options.only;
  const pending = pendingChanges(plan).filter((c) => !only || only.has(c.id));
  // One read of safety.json for the quarantine and the pauses (over SSH, each read is a round trip), begun while planning when the caller could.
  const safety = await (options.safety ?? loadSafety(host, stateDirectory));
  const quarantine = options.operatorRun || !commit ? undefined : safety.quarantined[commit];
  if (quarantine && pending.length > 0) {
    return {
      kind: 'held',
      hold: {
        reason: 'quarantined',
        quarantine,
        message: `commit ${commit!.slice(0, 12)} failed on ${plan.host} at ${quarantine.at} (${quarantine.reason}) and is quarantined: it is not applied again. Push a new commit, or run \`hostkit resume\` to retry it.`,
      },
    };
  }
  const fingerprints = projectFingerprints(planned);
  // A run limited to some changes, or one converging the commit already applied, is not a
  // commit that changes a project, so it un-pauses none (whatever the fingerprints say).
  const { paused, released } =
    only || options.keepPauses
      ? { paused: Object.values(safety.paused).filter((p) => fingerprints.has(p.project)), released: [] }
      : await pausedProjects(host, stateDirectory, fingerprints, safety);
  const pausedNames = new Set(paused.map((p) => p.project));
  const held = new Set<string>();
  for (const c of pending) {
    if (c.project && pausedNames.has(c.project)) {
      held.add(c.id);
      c.reason = `held: project ${c.project} is paused (hostkit resume, or a commit that changes it, un-pauses it)`;
    }
  }
  const touched = new Set(pending.filter((c) => !held.has(c.id) && c.project).map((c) => c.project!));
  const checks = options.health === false ? new Map() : healthChecks(options.manifests, { throughNginx: planned.drivers.has('site'), projects: touched });
  const result: ApplyResult & SafeApplyExtras = await applyPlan(planned, { ...options, health: checks, held });
  if (result.run) {
    // The runs listed while planning, and this one (closed now): no round trip of its own over SSH.
    const before = await options.runsListed?.catch(() => undefined);
    await keepNewestRuns(planned, options.keepRuns ?? DEFAULT_KEEP_RUNS, before ? { runs: [...before, result.run] } : undefined);
  }
  if (options.recovered) result.recovered = options.recovered;
  const heldProjects = new Set(pending.filter((c) => held.has(c.id)).map((c) => c.project));
  const pausedHeld = paused.filter((p) => heldProjects.has(p.project));
  if (pausedHeld.length > 0) result.paused = pausedHeld;
  if (released.length > 0) result.released = released.map((r) => r.project);
  if (result.status === 'rolled-back' && options.deferRetryable && result.failed.retryable) {
    context.log.warn({ failed: result.failed.id }, 'failed with a transient cause; not counted, to be tried again');
  } else if (result.status === 'rolled-back') {
    const failedProject = result.failed.id.startsWith('health/')
      ? result.failed.id.slice('health/'.length)
      : plan.changes.find((c) => c.id === result.failed.id)?.project;
    const projects = failedProject ? [failedProject] : [...touched];
    const hostManifest = planned.context.hostManifest;
    let recorded: Awaited<ReturnType<typeof recordFailure>> = { quarantined: false, paused: [] };
    try {
      recorded = await recordFailure(
        host,
        stateDirectory,
        {
          ...(commit && !options.operatorRun ? { commit } : {}),
          ...(result.run ? { run: result.run } : {}),
          reason: `${result.failed.id} failed`,
          projects: projects.map((name) => ({ name, fingerprint: fingerprints.get(name) ?? '' })),
        },
        deployPolicy(hostManifest),
      );
    } catch (error) {
      // The host may have stopped answering (the failure itself may be why): the report still says what happened.
      context.log.error({ error: errorMessage(error) }, 'failure not recorded: the commit is not quarantined');
    }
    result.quarantined = recorded.quarantined;
    if (recorded.paused.length > 0) result.pausedNow = recorded.paused.map((p) => p.project);
  }
  return { kind: 'applied', result };
}

// Each run keeps the backups of what it changed: without a bound, a host that applies
// every few minutes fills its disk. A prune that fails only costs a warning.
export async function keepNewestRuns(planned: PlannedHost, keep: number, known?: { runs: readonly string[] }): Promise<void> {
  const { host, stateDirectory, log } = planned.context;
  try {
    const removed = await pruneRuns(host, stateDirectory, keep, known);
    if (removed.length > 0) log.info({ removed: removed.length, kept: keep }, 'old runs pruned');
  } catch (error) {
    log.warn({ error: errorMessage(error) }, 'old runs not pruned');
  }
}
