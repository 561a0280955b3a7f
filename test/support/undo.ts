import { backupChange } from '../../reconciler/apply/backups.js';
import { plannedSteps, RunJournal } from '../../reconciler/apply/journal.js';
import { applyRestore, planRestore, type RestorePlan, type RestoreResult } from '../../reconciler/apply/restore.js';
import type { ResourceKind } from '../../reconciler/core/resource.js';
import type { Change } from '../../reconciler/diff/model.js';
import { drivers as registered } from '../../reconciler/drivers/registry.js';
import type { AnyDriver, DriverContext } from '../../reconciler/drivers/types.js';

/**
 * A run for driver unit tests: changes applied through their drivers as the executor
 * applies them (each backed up in the run journal first, then begun, then applied),
 * and rolled back as the executor's in-run rollback does: a restore from that journal
 * (apply/restore.ts), the same path crash recovery and `hostkit rollback` take.
 */
export class JournaledRun {
  readonly journal: RunJournal;
  readonly drivers: ReadonlyMap<ResourceKind, AnyDriver>;
  private readonly ctx: DriverContext;

  private constructor(ctx: DriverContext, journal: RunJournal, drivers: ReadonlyMap<ResourceKind, AnyDriver>) {
    this.ctx = ctx;
    this.journal = journal;
    this.drivers = drivers;
  }

  /** `changes`: what the run plans (a restore reads their kinds from the plan); `drivers` replace registered ones of their kind. */
  static async open(ctx: DriverContext, changes: readonly Change[], drivers: readonly AnyDriver[] = []): Promise<JournaledRun> {
    const all = new Map<ResourceKind, AnyDriver>([...registered, ...drivers.map((d) => [d.kind, d] as const)]);
    const journal = await RunJournal.open(ctx.host, ctx.stateDirectory, {
      type: 'apply',
      host: ctx.host.name,
      planned: plannedSteps(changes, (kind) => all.get(kind)?.restore.keeps !== undefined),
    });
    return new JournaledRun(ctx, journal, all);
  }

  /** Back up, begin and apply one change through `driver`; returns what apply returned. */
  async apply<U>(
    driver: { restore: AnyDriver['restore']; apply(change: never, ctx: DriverContext, state: never): Promise<U> },
    change: Change,
    state?: unknown,
  ): Promise<U> {
    await backupChange(this.journal, change, driver as AnyDriver, this.ctx);
    await this.journal.event({ ev: 'begin', id: change.id });
    const undo = await driver.apply(change as never, this.ctx, state as never);
    await this.journal.event({ ev: 'applied', id: change.id, ms: 0 });
    return undo;
  }

  /** The restore the in-run rollback runs, planned. */
  plan(): Promise<RestorePlan> {
    return planRestore(this.journal, this.drivers);
  }

  /** Roll the run back from its journal; throws if a step failed. */
  async rollback(): Promise<RestoreResult> {
    const result = await applyRestore(await this.plan(), this.journal, { log: this.ctx.log, drivers: this.drivers });
    if (result.errors.length > 0) throw new Error(`rollback failed: ${JSON.stringify(result.errors)}`);
    return result;
  }
}
