import { DEFAULT_LOCK_TIMEOUT_MS, withRunLock } from '../apply/lock.js';
import { RunJournal } from '../apply/journal.js';
import { recoverBeforePlan } from '../apply/safe.js';
import { createLogger } from '../core/log.js';
import { errorMessage } from '../core/errors.js';
import { restoreCheckpoint, takeCheckpoint, type CheckpointRecord } from '../drivers/backup/checkpoint.js';
import type { BackupJob } from '../drivers/backup/project.js';
import type { ResticAccess } from '../drivers/backup/restic.js';
import { pickSnapshot } from '../drivers/backup/scratch.js';

// `hostkit backups restore PROJECT --to-live --yes`: the project's live database replaced by a
// backup, as a journaled run of its own. The run first checkpoints the data it replaces (as any
// run that rewrites data does), so `hostkit rollback --last --with-data` puts it back. The
// restore goes into a new database swapped in by renaming: if it fails, the live data is as it was.

export interface LiveRestore {
  project: string;
  database: string;
  snapshot: string;
  snapshotTime: string;
  /** The run that did it; its checkpoint holds the data it replaced. */
  run: string;
  checkpoint: string;
  seconds: number;
}

export async function restoreDatabaseToLive(
  access: ResticAccess,
  job: BackupJob,
  options: { snapshot?: string; lockTimeoutMs?: number; note: (line: string) => void },
): Promise<LiveRestore> {
  const { host } = access;
  const database = job.database!.name;
  const stateDirectory = job.stateDirectory;
  const id = `checkpoint/${database}`;
  const log = createLogger({ level: 'warn' });
  const command = `hostkit backups restore ${job.project} --to-live`;
  return withRunLock(host, stateDirectory, { timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, command, onWait: options.note }, async () => {
    const recovered = await recoverBeforePlan(host, stateDirectory, log);
    if (recovered) options.note(`an interrupted run (${recovered.run}) was rolled back first`);
    const snap = await pickSnapshot(access, job.project, 'database', options.snapshot);
    const started = Date.now();
    const journal = await RunJournal.open(host, stateDirectory, {
      type: 'apply',
      host: access.hostname,
      planned: [{ id, kind: 'checkpoint', action: 'update', project: job.project }],
    });
    try {
      const takenAt = new Date().toISOString();
      const taken = await takeCheckpoint(access, stateDirectory, { database, project: job.project, run: journal.record.id });
      const record: CheckpointRecord & { run: string } = {
        database,
        project: job.project,
        snapshot: taken.snapshot,
        takenAt,
        bytes: taken.bytes,
        seconds: taken.seconds,
        restoreDataOnRollback: false,
        units: job.units ?? [],
        run: journal.record.id,
      };
      await journal.forChange(id, 'checkpoint').backupState('checkpoint', record);
      await journal.event({ ev: 'begin', id });
      await restoreCheckpoint(access, stateDirectory, { database, project: job.project, snapshot: snap.id, units: job.units ?? [] });
      await journal.event({ ev: 'applied', id, ms: Date.now() - started });
      await journal.close('applied');
      return {
        project: job.project,
        database,
        snapshot: snap.id,
        snapshotTime: snap.time,
        run: journal.record.id,
        checkpoint: taken.snapshot,
        seconds: (Date.now() - started) / 1000,
      };
    } catch (cause) {
      // The restore swaps only once the copy is whole: the live database is as it was.
      await journal.event({ ev: 'failed', id, error: access.scrub(errorMessage(cause)) }).catch(() => undefined);
      await journal.close('failed', 'the live database is unchanged').catch(() => undefined);
      throw cause;
    }
  });
}
