import { openRunId } from '../../apply/journal.js';
import { Redactor } from '../../core/secrets.js';
import { findOp, type Change } from '../../diff/model.js';
import type { Restore } from '../types.js';
import { databaseExists, restoreCheckpoint, takeCheckpoint, type CheckpointRecord } from './checkpoint.js';
import { resticAccess } from './job.js';
import type { CheckpointOp } from './index.js';
import type { CheckpointSpec } from './spec.js';

// A checkpoint's part of a run journal: `backup` takes it (the dump, into restic) before
// anything it guards changes, and records its snapshot; a restore puts the database back
// to it when asked (`hostkit rollback --with-data`, or the failed run of a project with
// database.restoreDataOnRollback), and otherwise says plainly that the data stays as it is.

type DataStep = {
  action: 'restore-data' | 'keep-data';
  resource: string;
  unchanged?: boolean;
  /** The run that took the checkpoint. */
  run: string;
} & CheckpointRecord;

const short = (snapshot: string) => snapshot.slice(0, 8);

export const checkpointRestore: Restore<Change<CheckpointSpec, undefined, CheckpointSpec, CheckpointOp>, CheckpointRecord & { run: string }, DataStep> = {
  async backup(change, journal, ctx) {
    const spec = change.desired;
    if (!spec || !findOp(change, 'checkpoint')) return;
    const run = (await openRunId(journal.host, journal.stateDirectory)) ?? 'unknown';
    const redactor = new Redactor();
    const access = { ...(await resticAccess(journal.host, redactor)), scrub: (t: string) => ctx.secrets.scrub(redactor.scrub(t)) };
    const started = new Date();
    const taken = await takeCheckpoint(access, journal.stateDirectory, { database: spec.database, run, ...(spec.project ? { project: spec.project } : {}) });
    const record: CheckpointRecord & { run: string } = {
      database: spec.database,
      ...(spec.project ? { project: spec.project } : {}),
      snapshot: taken.snapshot,
      takenAt: started.toISOString(),
      bytes: taken.bytes,
      seconds: taken.seconds,
      restoreDataOnRollback: spec.restoreDataOnRollback,
      units: spec.units,
      owner: spec.owner,
      run,
    };
    await journal.backupState('checkpoint', record);
    ctx.log.info({ resource: change.id, snapshot: short(taken.snapshot), bytes: taken.bytes }, 'checkpoint taken');
  },

  keeps: 'its snapshot, kept with the run journal (hostkit rollback --with-data restores it)',

  async plan(change) {
    return change.records
      .filter((r) => r.key === 'checkpoint')
      .map(({ data }) => {
        const restore = change.withData === true || (!change.finished && data.restoreDataOnRollback);
        return { action: restore ? 'restore-data' : 'keep-data', resource: change.id, ...data, ...(change.ran ? { unchanged: true } : {}) };
      });
  },

  describe(step) {
    const of = `database ${step.database}${step.project ? ` of project ${step.project}` : ''}`;
    if (step.unchanged) return `  ${of}: restored from checkpoint ${short(step.snapshot)} already`;
    return step.action === 'restore-data'
      ? `  restore ${of} from checkpoint ${short(step.snapshot)} (taken ${step.takenAt})`
      : `  keep ${of} as it is (checkpoint ${short(step.snapshot)} kept: --with-data restores it)`;
  },

  async apply(step, ctx) {
    const of = `database ${step.database}${step.project ? ` of project ${step.project}` : ''}`;
    if (step.unchanged) return;
    if (step.action === 'keep-data') {
      return `${of} was not reverted: its checkpoint ${short(step.snapshot)} from before run ${step.run} is kept (\`hostkit rollback --run ${step.run} --with-data\` restores it)`;
    }
    const access = await resticAccess(ctx.host);
    // `hostkit rollback`: the data it replaces is checkpointed in its own run first, so the restore can be undone in turn
    // (a database dropped since has none: it is created from the checkpoint).
    if (ctx.record && (await databaseExists(ctx.host, step.database))) {
      const run = (await openRunId(ctx.host, ctx.stateDirectory)) ?? 'unknown';
      const started = new Date();
      const taken = await takeCheckpoint(access, ctx.stateDirectory, { database: step.database, run, ...(step.project ? { project: step.project } : {}) });
      const { action: _a, resource: _r, unchanged: _u, ...record } = step;
      await ctx.record.backupState('checkpoint', {
        ...record,
        snapshot: taken.snapshot,
        takenAt: started.toISOString(),
        bytes: taken.bytes,
        seconds: taken.seconds,
        run,
      });
    }
    await restoreCheckpoint(access, ctx.stateDirectory, {
      database: step.database,
      snapshot: step.snapshot,
      units: step.units,
      ...(step.project ? { project: step.project } : {}),
      ...(step.owner ? { owner: step.owner } : {}),
    });
    await ctx.ran(true);
    ctx.log.info({ database: step.database, snapshot: short(step.snapshot) }, 'database restored from its checkpoint');
  },
};
