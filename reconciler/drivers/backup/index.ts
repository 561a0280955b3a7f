// Checkpoints (checkpoint/DATABASE): the run's own backup of a database, taken just before
// a change that may rewrite its data: a lifecycle command that runs before start (a
// migration), a new release of the project, or dropping the database. Planned as nothing
// until the guard pass finds a guarded change pending; then the run dumps the database
// into the host's restic repository before that change, and the run journal records the
// snapshot. See README.md in this folder.
import { changeBase, type Change } from '../../diff/model.js';
import type { Driver, WithGuard } from '../types.js';
import { checkpointDefinition } from './definition.js';
import { checkpointRestore } from './restore.js';
import type { CheckpointSpec } from './spec.js';

/** What an apply does: dump the database into restic, tagged with the run (in the journal's backup step). */
export type CheckpointOp = { op: 'checkpoint'; database: string };

export type CheckpointChange = Change<CheckpointSpec, undefined, CheckpointSpec, CheckpointOp>;

export const checkpointDriver: Driver<CheckpointSpec, CheckpointSpec, undefined, void, 'checkpoint', void, CheckpointOp> & WithGuard<CheckpointChange> = {
  ...checkpointDefinition,

  async desire(resources) {
    return new Map(resources.map((r) => [r.id, { desired: r.spec, diagnostics: [] }]));
  },

  // Nothing to read: a checkpoint is taken by the run that needs one, never kept on the host.
  async observe() {
    return new Map();
  },

  plan({ resource, desired, orphan }) {
    return {
      ...changeBase(resource),
      action: 'noop',
      fields: [],
      ops: [],
      disruptive: false,
      ...(orphan || !desired ? {} : { desired }),
    };
  },

  guard(change, pending) {
    const spec = change.desired;
    if (!spec) return change;
    const guarded = spec.guards.filter((id) => pending.has(id));
    if (guarded.length === 0) return change;
    // A database this run creates holds nothing yet; one this run already changes in another way is dumped as it is now.
    if (pending.get(spec.databaseId)?.action === 'create') return change;
    return {
      ...change,
      action: 'update',
      ops: [{ op: 'checkpoint', database: spec.database }],
      reason: `database ${spec.database} is dumped before ${guarded.join(', ')}${spec.restoreDataOnRollback ? '; a failed run restores it' : ''}`,
    };
  },

  // The dump is taken by restore.backup, before this step begins: the journal holds its snapshot before anything it guards changes.
  async apply() {},

  async verify() {
    return [];
  },

  restore: checkpointRestore,
};
