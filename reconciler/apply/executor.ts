import { errorMessage, isHostKitError } from '../core/errors.js';
import type { Diagnostic } from '../core/diagnostics.js';
import type { AnyDriver } from '../drivers/types.js';
import { pendingChanges, type Change } from '../diff/model.js';
import { assertApplicable, type PlannedHost } from '../diff/plan.js';
import { toInventoryEntry, writeInventory, type Inventory } from './inventory.js';

export interface AppliedStep {
  id: string;
  action: Change['action'];
  ms: number;
}

export type ApplyResult =
  | { status: 'applied'; steps: AppliedStep[]; skipped: string[]; warnings: Diagnostic[] }
  | { status: 'no-changes'; steps: []; skipped: string[]; warnings: Diagnostic[] }
  | {
      status: 'rolled-back';
      steps: AppliedStep[];
      skipped: string[];
      warnings: Diagnostic[];
      failed: { id: string; error: string; diagnostics: Diagnostic[] };
      rollbackErrors: { id: string; error: string }[];
    };

interface Done {
  change: Change;
  driver: AnyDriver;
  undo: unknown;
}

class StepFailed extends Error {
  readonly id: string;
  readonly diagnostics: Diagnostic[];
  constructor(id: string, diagnostics: Diagnostic[]) {
    super(diagnostics.map((d) => d.detail).join('; '));
    this.id = id;
    this.diagnostics = diagnostics;
  }
}

function failure(change: Change, cause: unknown): StepFailed {
  return new StepFailed(change.id, [
    { severity: 'error', summary: 'apply failed', detail: errorMessage(cause), ...(change.origin ? { location: change.origin } : {}) },
  ]);
}

/**
 * Walk an already ordered plan in three phases: apply each pending change;
 * let each driver settle once (one daemon-reload, one restart call); verify
 * each change. On the first failure every change this run applied is rolled
 * back in reverse order and the drivers settle again, so the host is left in
 * its previous state; the inventory is only written after success.
 */
export async function applyPlan(planned: PlannedHost): Promise<ApplyResult> {
  const { plan, context, drivers, inventory } = planned;
  assertApplicable(plan);
  const pending = pendingChanges(plan);
  const skipped = plan.changes.filter((c) => c.action === 'unsupported').map((c) => c.id);
  const steps: AppliedStep[] = [];
  const done: Done[] = [];
  // What rollback cannot undo (dropping a database) waits until everything before it applied and
  // verified; the changes after it in the plan (e.g. dropping the role that owned it) wait with it.
  const cut = pending.findIndex((c) => c.irreversible);
  const reversible = cut === -1 ? pending : pending.slice(0, cut);
  const irreversible = cut === -1 ? [] : pending.slice(cut);
  const applyOne = async (change: Change) => {
    const driver = drivers.get(change.kind)!;
    const started = performance.now();
    try {
      done.push({ change, driver, undo: await driver.apply(change, context) });
    } catch (cause) {
      throw failure(change, cause);
    }
    const ms = Math.round(performance.now() - started);
    steps.push({ id: change.id, action: change.action, ms });
    context.log.info({ resource: change.id, action: change.action, ms }, 'applied');
  };
  const verify = async (items: readonly Done[]) => {
    for (const { change, driver } of items) {
      const problems = (await driver.verify(change, context)).filter((d) => d.severity === 'error');
      if (problems.length > 0) throw new StepFailed(change.id, problems);
    }
  };
  try {
    for (const phase of [reversible, irreversible]) {
      const from = done.length;
      for (const change of phase) await applyOne(change);
      for (const [driver, items] of byDriver(done.slice(from))) {
        if (!driver.settle) continue;
        try {
          await driver.settle(items, context, 'apply');
        } catch (cause) {
          // A driver names the resource that failed (e.g. the unit that did not start) in the error's data;
          // it may be another driver's (the certificate driver's settle makes nginx sites live first).
          const named = isHostKitError(cause) ? done.find((i) => i.change.id === cause.data.resourceId) : undefined;
          throw failure((named ?? items[0]!).change, cause);
        }
      }
      await verify(done.slice(from));
    }
  } catch (cause) {
    const failed = cause instanceof StepFailed ? cause : new StepFailed('(run)', [{ severity: 'error', summary: 'apply failed', detail: errorMessage(cause) }]);
    context.log.error({ resource: failed.id, error: failed.message }, 'apply failed; rolling back');
    const rollbackErrors = await rollback(done, context);
    return {
      status: 'rolled-back',
      steps: steps.filter((s) => s.id !== failed.id),
      skipped,
      warnings: context.warnings,
      failed: { id: failed.id, error: failed.message, diagnostics: failed.diagnostics },
      rollbackErrors,
    };
  }
  await writeInventory(context.host, context.stateDirectory, nextInventory(planned, inventory));
  const warnings = context.warnings;
  return pending.length === 0 ? { status: 'no-changes', steps: [], skipped, warnings } : { status: 'applied', steps, skipped, warnings };
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

async function rollback(done: Done[], context: PlannedHost['context']): Promise<{ id: string; error: string }[]> {
  const errors: { id: string; error: string }[] = [];
  const reversed = [...done].reverse();
  for (const { change, driver, undo } of reversed) {
    try {
      await driver.rollback(change, undo, context);
      context.log.info({ resource: change.id }, 'rolled back');
    } catch (cause) {
      // Keep going: one failed rollback must not leave the others undone.
      errors.push({ id: change.id, error: errorMessage(cause) });
      context.log.error({ resource: change.id, error: errorMessage(cause) }, 'rollback failed');
    }
  }
  for (const [driver, items] of byDriver(reversed)) {
    if (!driver.settle) continue;
    try {
      await driver.settle(items, context, 'rollback');
    } catch (cause) {
      errors.push({ id: items[0]!.change.id, error: errorMessage(cause) });
    }
  }
  return errors;
}

// Desired resources with a driver are now owned; deleted orphans are forgotten;
// reported orphans stay owned so they keep being reported.
function nextInventory(planned: PlannedHost, previous: Inventory): Inventory {
  const resources: Inventory['resources'] = {};
  for (const r of planned.resources) if (planned.drivers.has(r.kind)) resources[r.id] = toInventoryEntry(r);
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
