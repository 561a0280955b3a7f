import { errorMessage } from '../core/errors.js';
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
  | { status: 'applied'; steps: AppliedStep[]; skipped: string[] }
  | { status: 'no-changes'; steps: []; skipped: string[] }
  | {
      status: 'rolled-back';
      steps: AppliedStep[];
      skipped: string[];
      failed: { id: string; error: string; diagnostics: Diagnostic[] };
      rollbackErrors: { id: string; error: string }[];
    };

interface Done {
  change: Change;
  driver: AnyDriver;
  undo: unknown;
}

/**
 * Walk an already ordered plan: apply and verify each pending change. On the
 * first failure every change this run applied is rolled back in reverse order,
 * so the host is left in its previous state, and the inventory is not touched.
 */
export async function applyPlan(planned: PlannedHost): Promise<ApplyResult> {
  const { plan, context, drivers, inventory } = planned;
  assertApplicable(plan);
  const pending = pendingChanges(plan);
  const skipped = plan.changes.filter((c) => c.action === 'unsupported').map((c) => c.id);
  const steps: AppliedStep[] = [];
  const done: Done[] = [];
  for (const change of pending) {
    const driver = drivers.get(change.kind)!;
    const started = performance.now();
    let problems: Diagnostic[];
    try {
      const undo = await driver.apply(change, context);
      done.push({ change, driver, undo });
      problems = (await driver.verify(change, context)).filter((d) => d.severity === 'error');
    } catch (cause) {
      problems = [{ severity: 'error', summary: 'apply failed', detail: errorMessage(cause), ...(change.origin ? { location: change.origin } : {}) }];
    }
    const ms = Math.round(performance.now() - started);
    if (problems.length > 0) {
      context.log.error({ resource: change.id, action: change.action, ms, error: problems[0]!.detail }, 'apply failed; rolling back');
      const rollbackErrors = await rollback(done, context);
      return {
        status: 'rolled-back',
        steps,
        skipped,
        failed: { id: change.id, error: problems.map((p) => p.detail).join('; '), diagnostics: problems },
        rollbackErrors,
      };
    }
    steps.push({ id: change.id, action: change.action, ms });
    context.log.info({ resource: change.id, action: change.action, ms }, 'applied');
  }
  await writeInventory(context.host, context.stateDirectory, nextInventory(planned, inventory));
  return pending.length === 0 ? { status: 'no-changes', steps: [], skipped } : { status: 'applied', steps, skipped };
}

async function rollback(done: Done[], context: PlannedHost['context']): Promise<{ id: string; error: string }[]> {
  const errors: { id: string; error: string }[] = [];
  for (const { change, driver, undo } of [...done].reverse()) {
    try {
      await driver.rollback(change, undo, context);
      context.log.info({ resource: change.id }, 'rolled back');
    } catch (cause) {
      // Keep going: one failed rollback must not leave the others undone.
      errors.push({ id: change.id, error: errorMessage(cause) });
      context.log.error({ resource: change.id, error: errorMessage(cause) }, 'rollback failed');
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
