import { errorMessage, isHostKitError, isRetryable } from '../core/errors.js';
import { warning, type Diagnostic } from '../core/diagnostics.js';
import { hasSettle, hasSettleFirst, type AnyDriver } from '../drivers/types.js';
import { pendingChanges, type Change } from '../diff/model.js';
import { assertApplicable, type PlannedHost } from '../diff/plan.js';
import { backupChange } from './backups.js';
import { runHealthCheck, type HealthCheck } from './health.js';
import { inventoryPath, toInventoryEntry, writeInventory, type Inventory } from './inventory.js';
import { plannedSteps, RunJournal } from './journal.js';
import { stepTracker, type ApplyProgress, type StepAction, type StepTracker } from './progress.js';
import { applyRestore, planRestore } from './restore.js';

export interface AppliedStep {
  id: string;
  action: Change['action'];
  ms: number;
}

/** Health checks that ran after the changes verified. */
export interface HealthResult {
  project: string;
  ok: boolean;
  /** The URL the HTTP check asked, e.g. `https://api.example.test/healthz (via 127.0.0.1:443)`. */
  url?: string;
  detail?: string;
}

interface ResultBase {
  skipped: string[];
  warnings: Diagnostic[];
  /** The run's journal (STATE/runs/RUN), when anything was applied. */
  run?: string;
  health?: HealthResult[];
  /** Changes held back because their project is paused. */
  held?: string[];
}

export type ApplyResult =
  | (ResultBase & { status: 'applied'; steps: AppliedStep[] })
  | (ResultBase & { status: 'no-changes'; steps: [] })
  | (ResultBase & {
      status: 'rolled-back';
      steps: AppliedStep[];
      /** retryable: the cause was transient (a server restarting, a timeout): the same run may pass if tried again. */
      failed: { id: string; error: string; diagnostics: Diagnostic[]; retryable?: boolean };
      rollbackErrors: { id: string; error: string }[];
    });

export interface ApplyOptions {
  /** Health checks by project; those of projects this run changed run after verify. */
  health?: ReadonlyMap<string, HealthCheck>;
  /** Change ids not to apply (their project is paused); their inventory entries stay as they were. */
  held?: ReadonlySet<string>;
  /**
   * The ids of the pending changes this run may apply (a drift heal, a renewal); the others are
   * left as they are: not applied, not counted as held, their inventory entries as last applied.
   */
  only?: ReadonlySet<string>;
  /** Told as each step (change, settle, health check, rollback) starts and ends. */
  progress?: ApplyProgress;
}

interface Done {
  change: Change;
  driver: AnyDriver;
  undo: unknown;
}

class StepFailed extends Error {
  readonly id: string;
  readonly diagnostics: Diagnostic[];
  readonly retryable: boolean;
  constructor(id: string, diagnostics: Diagnostic[], retryable = false) {
    super(diagnostics.map((d) => d.detail).join('; '));
    this.id = id;
    this.diagnostics = diagnostics;
    this.retryable = retryable;
  }
}

function failure(change: Change, cause: unknown): StepFailed {
  return new StepFailed(
    change.id,
    [{ severity: 'error', summary: 'apply failed', detail: errorMessage(cause), ...(change.origin ? { location: change.origin } : {}) }],
    isRetryable(cause),
  );
}

// How many verifies run at once: enough to share round trips over SSH, few enough not to start a process per unit at once.
const VERIFY_AT_ONCE = 16;

/**
 * Walk an already ordered plan in phases: apply each pending change (its files
 * backed up in the run journal first); let each driver settle once (one
 * daemon-reload, one restart call) - before a change whose driver asks for it
 * (WithSettleFirst: an after-start lifecycle command), the drivers applied so far
 * settle first; verify each change; run the health
 * checks of the projects that changed. On the first failure the run is restored
 * from its journal, newest change first (the restore crash recovery and `hostkit
 * rollback` run too), so the host is left in its previous state; the inventory is
 * only written after success. The journal (STATE/runs/RUN) is written before anything changes and
 * as each step happens, so an interrupted run is rolled back at the next start.
 */
export async function applyPlan(planned: PlannedHost, options: ApplyOptions = {}): Promise<ApplyResult> {
  const { plan, context, runs, drivers, inventory } = planned;
  assertApplicable(plan);
  const held = options.held ?? new Set<string>();
  const only = options.only;
  const selected = pendingChanges(plan).filter((c) => !only || only.has(c.id));
  const pending = selected.filter((c) => !held.has(c.id));
  const heldIds = selected.filter((c) => held.has(c.id)).map((c) => c.id);
  // What this run leaves alone keeps its inventory entry as last applied.
  const kept = new Set([
    ...held,
    ...pendingChanges(plan)
      .filter((c) => only && !only.has(c.id))
      .map((c) => c.id),
  ]);
  const skipped = plan.changes.filter((c) => c.action === 'unsupported').map((c) => c.id);
  const base = { skipped, ...(heldIds.length > 0 ? { held: heldIds } : {}) };
  // A host that pipelines writes (SshHost) tells a failed one at flush(): each step's end and every
  // success reported waits for it, so a write that failed is that step's failure, never a success.
  const barrier = async () => context.host.flush?.();
  if (pending.length === 0) {
    await writeInventory(context.host, context.stateDirectory, nextInventory(planned, inventory, kept));
    await barrier();
    return { status: 'no-changes', steps: [], ...base, warnings: context.warnings };
  }
  // The journal is the undo: the in-run rollback, crash recovery and `hostkit rollback` restore from it.
  const journal = await RunJournal.open(
    context.host,
    context.stateDirectory,
    {
      type: 'apply',
      host: plan.host,
      ...(context.hostManifest.spec?.hostnames?.length ? { hostnames: context.hostManifest.spec.hostnames } : {}),
      ...(plan.commit ? { commit: plan.commit } : {}),
      ...(inventory.commit ? { previousCommit: inventory.commit } : {}),
      planned: plannedSteps(pending, (kind) => drivers.get(kind)?.restore.keeps !== undefined),
    },
    { id: '(inventory)', path: inventoryPath(context.stateDirectory) },
  );
  const track = stepTracker(context.log, options.progress);
  const steps: AppliedStep[] = [];
  const done: Done[] = [];
  const health: HealthResult[] = [];
  let settledUpTo = 0;
  // What rollback cannot undo (dropping a database) waits until everything before it applied and
  // verified; the changes after it in the plan (e.g. dropping the role that owned it) wait with it.
  const cut = pending.findIndex((c) => c.irreversible);
  const reversible = cut === -1 ? pending : pending.slice(0, cut);
  const irreversible = cut === -1 ? [] : pending.slice(cut);
  // A change's pipelined writes are confirmed while the next step's first reads go out (over SSH, one round
  // trip for both); a failure among them is still the failure of the change that sent them.
  let owed: { change: Change; confirmed: Promise<void> } | undefined;
  const confirmOwed = async () => {
    const o = owed;
    owed = undefined;
    if (!o) return;
    try {
      await o.confirmed;
    } catch (cause) {
      throw failure(o.change, cause);
    }
  };
  const settle = async () => {
    await confirmOwed();
    const items = done.slice(settledUpTo);
    settledUpTo = done.length;
    for (const [driver, group] of byDriver(items)) {
      if (!hasSettle(driver)) continue;
      try {
        await track.step({ id: driver.kind, action: 'settle' }, async () => {
          await driver.settle(group, context, 'apply', runs.of(driver));
          await barrier();
        });
      } catch (cause) {
        // A driver names the resource that failed (e.g. the unit that did not start) in the error's data;
        // it may be another driver's (the certificate driver's settle makes nginx sites live first).
        const named = isHostKitError(cause) ? done.find((i) => i.change.id === cause.data.resourceId) : undefined;
        throw failure((named ?? group[0]!).change, cause);
      }
    }
    if (items.length > 0) await journal.event({ ev: 'settled' });
  };
  const applyOne = async (change: Change) => {
    const driver = drivers.get(change.kind)!;
    if (hasSettleFirst(driver) && driver.settleFirst(change)) await settle();
    await track.step({ id: change.id, action: change.action as StepAction }, async () => {
      // The step's time includes its backup into the journal (a checkpoint's dump is one).
      const started = performance.now();
      const before = owed;
      owed = undefined;
      const [previous, backedUp] = await Promise.allSettled([before?.confirmed, backupChange(journal, change, driver, context)]);
      // The change before failed after all (a write it sent): its failure, reported first.
      if (previous.status === 'rejected') throw failure(before!.change, previous.reason);
      // Nothing of this one happened yet; it names the change whose backup failed.
      if (backedUp.status === 'rejected') throw failure(change, backedUp.reason);
      await journal.event({ ev: 'begin', id: change.id });
      try {
        done.push({ change, driver, undo: await driver.apply(change, context, runs.of(driver)) });
      } catch (cause) {
        throw failure(change, cause);
      }
      // What it wrote without waiting is done, or its failure is this change's: told by confirmOwed.
      owed = { change, confirmed: barrier() };
      owed.confirmed.catch(() => undefined); // handled where it is awaited
      const ms = Math.round(performance.now() - started);
      steps.push({ id: change.id, action: change.action, ms });
      await journal.event({ ev: 'applied', id: change.id, ms });
      context.log.info({ resource: change.id, action: change.action, ms }, 'applied');
    });
  };
  const verify = async (items: readonly Done[]) => {
    // Verifies only read: VERIFY_AT_ONCE at a time (over SSH, their reads share round trips), the first failure in plan order reported.
    for (let from = 0; from < items.length; from += VERIFY_AT_ONCE) {
      const batch = items.slice(from, from + VERIFY_AT_ONCE);
      const found = await Promise.allSettled(batch.map(({ change, driver }) => driver.verify(change, context, runs.of(driver))));
      for (const [i, { change }] of batch.entries()) {
        const outcome = found[i]!;
        if (outcome.status === 'rejected') throw outcome.reason;
        const problems = outcome.value.filter((d) => d.severity === 'error');
        if (problems.length > 0) throw new StepFailed(change.id, problems);
      }
    }
    if (items.length === 0) return;
    await barrier();
    await journal.event({ ev: 'verified' });
  };
  const checkHealth = async () => {
    const projects = [...new Set(pending.map((c) => c.project).filter((p): p is string => p !== undefined))].sort();
    for (const project of projects) {
      const check = options.health?.get(project);
      if (!check) continue;
      await track.step({ id: `health/${project}`, action: 'health' }, async () => {
        const problems = await runHealthCheck(context.host, check);
        const detail = problems.map((d) => d.detail).join('; ');
        health.push({ project, ok: problems.length === 0, ...(check.http ? { url: check.http.url } : {}), ...(detail ? { detail } : {}) });
        await journal.event({ ev: 'health', project, ok: problems.length === 0, ...(detail ? { detail } : {}) });
        if (problems.length > 0) throw new StepFailed(`health/${project}`, problems);
        context.log.info({ project }, 'healthy');
      });
    }
  };
  try {
    for (const [i, phase] of [reversible, irreversible].entries()) {
      const from = done.length;
      for (const change of phase) await applyOne(change);
      await settle();
      await verify(done.slice(from));
      if (i === 0) await checkHealth();
    }
  } catch (cause) {
    const failed =
      cause instanceof StepFailed
        ? cause
        : new StepFailed('(run)', [{ severity: 'error', summary: 'apply failed', detail: errorMessage(cause) }], isRetryable(cause));
    context.log.error({ resource: failed.id, error: failed.message }, 'apply failed; rolling back');
    owed = undefined; // a failure of its writes is acknowledged by the barrier below
    // On a host that pipelines writes, one that failed in the failed step (usually the failure itself,
    // told to a read of that step) is still pending until acknowledged: the notes and the rollback need the host.
    await barrier().catch((error: unknown) => {
      if (!failed.message.includes(errorMessage(error))) context.log.warn({ error: errorMessage(error) }, 'a write sent before the failure failed too');
    });
    // The journal is best effort from here: a host that stopped answering must not hide the failure.
    // A run it cannot close stays open and is rolled back from its backups at the next start.
    // The barrier inside: an append that failed is this note's, not the rollback's that follows.
    const note = async (work: () => Promise<void>) => {
      try {
        await work();
        await barrier();
      } catch (error) {
        context.log.warn({ run: journal.record.id, error: errorMessage(error) }, 'run journal not updated');
      }
    };
    await note(async () => journal.event({ ev: 'failed', id: failed.id, error: planned.redactor.scrub(failed.message) }));
    await note(async () => journal.event({ ev: 'rolling-back' }));
    const rollbackStarted = performance.now();
    track.emit({ type: 'rollback-start', failed: failed.id, changes: done.length });
    const rollbackErrors = await rollback(planned, track, journal);
    track.emit({ type: 'rollback-end', ok: rollbackErrors.length === 0, ms: Math.round(performance.now() - rollbackStarted) });
    await note(async () =>
      journal.close('rolled-back', rollbackErrors.length > 0 ? `rollback errors: ${rollbackErrors.map((e) => e.id).join(', ')}` : undefined),
    );
    return {
      status: 'rolled-back',
      steps: steps.filter((s) => s.id !== failed.id),
      ...base,
      warnings: context.warnings,
      failed: { id: failed.id, error: failed.message, diagnostics: failed.diagnostics, ...(failed.retryable ? { retryable: true } : {}) },
      rollbackErrors,
      run: journal.record.id,
      ...(health.length > 0 ? { health } : {}),
    };
  }
  await writeInventory(context.host, context.stateDirectory, nextInventory(planned, inventory, kept));
  await journal.close('applied');
  await barrier();
  return {
    status: 'applied',
    steps,
    ...base,
    warnings: context.warnings,
    run: journal.record.id,
    ...(health.length > 0 ? { health } : {}),
  };
}

// Applied changes grouped by driver, in the order the drivers first appear.
function byDriver(done: readonly Done[]): Map<AnyDriver, { change: Change; undo: unknown }[]> {
  const groups = new Map<AnyDriver, { change: Change; undo: unknown }[]>();
  for (const d of done) {
    const list = groups.get(d.driver) ?? [];
    list.push({ change: d.change, undo: d.undo });
    groups.set(d.driver, list);
  }
  return groups;
}

/**
 * Put back what the failed run changed, newest first: the same restore from its journal
 * as crash recovery and `hostkit rollback` (apply/restore.ts), so the three never
 * disagree. Each change's steps are reported as its rollback; a step that fails is
 * reported and the others go on. What the restore does not undo (a command with no
 * down command) is a warning of the run.
 */
async function rollback(planned: PlannedHost, track: StepTracker, journal: RunJournal): Promise<{ id: string; error: string }[]> {
  const { context, drivers } = planned;
  const actions = new Map(journal.record.planned.map((p) => [p.id, p.action]));
  try {
    const plan = await planRestore(journal, drivers);
    const result = await applyRestore(plan, journal, {
      log: context.log,
      drivers,
      around: ({ id, after }, work) => track.step({ id, action: after ? 'settle' : ((actions.get(id) ?? 'restore') as StepAction), rollback: true }, work),
    });
    for (const w of result.warnings) context.warnings.push(warning('not undone', w));
    for (const e of result.errors) context.log.error({ resource: e.resource, error: e.error }, 'rollback failed');
    return result.errors.map((e) => ({ id: e.resource, error: e.error }));
  } catch (cause) {
    // The journal could not be read back (the host stopped answering): the next start restores from it.
    context.log.error({ run: journal.record.id, error: errorMessage(cause) }, 'restore from the run journal failed');
    return [{ id: journal.record.id, error: errorMessage(cause) }];
  }
}

// Desired resources with a driver are now owned, with the digests of the bytes they wrote; deleted orphans are forgotten;
// reported orphans stay owned so they keep being reported; what the run left alone
// (held back, or not among the changes it may apply) stays as last applied.
function nextInventory(planned: PlannedHost, previous: Inventory, kept: ReadonlySet<string>): Inventory {
  const resources: Inventory['resources'] = {};
  for (const r of planned.resources) {
    if (!planned.drivers.has(r.kind)) continue;
    if (kept.has(r.id)) {
      if (previous.resources[r.id]) resources[r.id] = previous.resources[r.id]!; // left alone: still as last applied
    } else resources[r.id] = toInventoryEntry(r, planned.context.written.get(r.id)); // what it wrote is now on the host
  }
  for (const id of kept) if (previous.resources[id] && !resources[id]) resources[id] = previous.resources[id]!;
  for (const c of planned.plan.changes) {
    const old = previous.resources[c.id];
    if (old && !resources[c.id] && c.action !== 'delete' && c.orphan) resources[c.id] = old;
  }
  return {
    version: 1,
    host: planned.plan.host,
    ...(planned.plan.commit ? { commit: planned.plan.commit } : {}),
    appliedAt: new Date().toISOString(),
    resources,
  };
}
