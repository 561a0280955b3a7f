import type { HostPart } from '../manifest-types.js';
import type { PgDatabaseSpec } from '../postgresql/spec.js';
import { RESTIC_ENV, resticEnv } from './project.js';
import type { CheckpointSpec } from './spec.js';

// The host's part of backups, from the Host's spec.backup. restic's environment file is the
// host's, written whether or not a project backs up yet, so that rolling back the run that
// first needed it never leaves the checkpoints and backups already taken unreachable. A
// database declared with `drop: true` gets a checkpoint before it is dropped: the drop is
// the one change no rollback undoes, and `hostkit rollback --with-data` brings it back from it.
export const hostBackups: HostPart = {
  name: 'backups',
  expand(x) {
    const backup = x.host.spec.backup;
    if (!backup) return;
    const env = x.add('envfile', RESTIC_ENV, resticEnv(backup), x.host.at('/spec/backup'), { shared: true });
    const checkpointed = new Set(x.resources<CheckpointSpec>('checkpoint').map((c) => c.spec.database));
    for (const db of x.resources<PgDatabaseSpec>('pgdatabase')) {
      if (db.spec.drop !== true || checkpointed.has(db.spec.database)) continue;
      const spec: CheckpointSpec = {
        database: db.spec.database,
        ...(db.project ? { project: db.project } : {}),
        databaseId: db.id,
        owner: db.spec.owner,
        guards: [db.id],
        restoreDataOnRollback: false,
        units: [],
      };
      x.add<CheckpointSpec>('checkpoint', db.spec.database, spec, db.origin, { dependsOn: [env], ...(db.project ? { project: db.project } : {}) });
    }
  },
};
