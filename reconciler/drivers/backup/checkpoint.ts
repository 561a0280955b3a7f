import path from 'node:path';
import { HostKitError, isHostKitError } from '../../core/errors.js';
import { writeRootFile } from '../../hosts/root-files.js';
import type { Host } from '../../hosts/types.js';
import { resticAccess, withBackupLock } from './job.js';
import { backupStream, forgetAndPrune, initRepository, listSnapshots, restoreStream, unlockStale, type ResticAccess } from './restic.js';
import { psql } from './scratch.js';

// Checkpoints: a database's dump taken by a run just before a change that may rewrite its
// data (a migration, a new release, a drop), in the host's restic repository, tagged with
// the run. Restoring one replaces the live database whole: the dump is restored into a new
// database first, and only once that succeeded are the two swapped by renaming, in one
// transaction, with the project's units stopped. A failed restore leaves the live data as it was.

/** What a run's journal keeps of one checkpoint (no secret: the repository's password is in restic.env). */
export interface CheckpointRecord {
  database: string;
  project?: string;
  /** The restic snapshot holding the dump. */
  snapshot: string;
  takenAt: string;
  /** The dump's size, and how long taking it took. */
  bytes: number;
  seconds: number;
  /** The project asked for its data back when its run fails (database.restoreDataOnRollback). */
  restoreDataOnRollback: boolean;
  /** The project's units, stopped while the data is restored. */
  units: string[];
  /** The database's owner role, for restoring a database that was dropped since. */
  owner?: string;
}

/** How long a checkpoint waits for a backup job holding the repository (a run does not wait hours). */
const CHECKPOINT_LOCK_WAIT_MS = 10 * 60 * 1000;

export function dumpName(database: string, project: string | undefined): string {
  return `/${project ?? 'hostkit'}/${database}.dump`;
}

/** Dump `database` into the repository, tagged `kind=checkpoint` and with the run. Throws (BACKUP_*) when it could not. */
export async function takeCheckpoint(
  access: ResticAccess,
  stateDirectory: string,
  options: { database: string; project?: string; run: string },
): Promise<{ snapshot: string; bytes: number; seconds: number }> {
  const what = `checkpoint of database ${options.database}`;
  return withBackupLock(
    access.host,
    stateDirectory,
    what,
    async () => {
      await named(what, async () => {
        await initRepository(access);
        await unlockStale(access);
      });
      // The run is indexed before its dump: a run that dies before indexing the snapshot still has it forgotten (by its tag) with the journal.
      await indexRun(access.host, stateDirectory, options.run);
      const summary = await backupStream(access, {
        what,
        // Uncompressed: restic compresses it, and stores only what changed since the last dump (a compressed dump differs throughout).
        producer: 'runuser -u postgres -- pg_dump --format=custom --compress=0 --dbname="$1"',
        args: [options.database],
        filename: dumpName(options.database, options.project),
        tags: ['hostkit', ...(options.project ? [`project=${options.project}`] : []), 'kind=checkpoint', `run=${options.run}`],
      });
      await indexSnapshot(access.host, stateDirectory, options.run, summary.snapshot);
      return { snapshot: summary.snapshot, bytes: summary.bytes, seconds: summary.seconds };
    },
    CHECKPOINT_LOCK_WAIT_MS,
  );
}

// An error of the repository's set-up, named as the checkpoint's (the run reports which step failed and why).
async function named(what: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (cause) {
    if (!isHostKitError(cause)) throw cause;
    throw new HostKitError(cause.code, `${what}: ${cause.message}`, { data: cause.data, retryable: cause.retryable, cause });
  }
}

// A restore's working names: fixed per database, so what a killed restore left is found and dropped by the next.
const restoringName = (database: string) => `hk_restoring_${database}`.slice(0, 63);
const replacedName = (database: string) => `hk_replaced_${database}`.slice(0, 63);

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Whether `database` exists: one dropped since its checkpoint has nothing to dump before it is restored. */
export async function databaseExists(host: Host, database: string): Promise<boolean> {
  return (await psql(host, 'postgres', `SELECT 1 FROM pg_database WHERE datname = ${literal(database)}`)).trim() === '1';
}

/**
 * Replace `database` with the dump in `snapshot`: restored into a new database (owned as the
 * live one is, with its encoding and locale), then, with `units` stopped and the database's
 * other sessions ended, the two swapped by renaming in one transaction and the old one dropped;
 * the units that were running start again. If the restore fails, the live database is untouched.
 * A database that no longer exists (dropped) is created from the dump, owned by `owner`.
 */
export async function restoreCheckpoint(
  access: ResticAccess,
  stateDirectory: string,
  options: { database: string; project?: string; snapshot: string; owner?: string; units: readonly string[] },
): Promise<{ seconds: number }> {
  const { host } = access;
  const { database } = options;
  const started = Date.now();
  const restoring = restoringName(database);
  const replaced = replacedName(database);
  return withBackupLock(host, stateDirectory, `restore of database ${database}`, async () => {
    await psql(host, 'postgres', `DROP DATABASE IF EXISTS ${ident(restoring)} WITH (FORCE)`);
    await psql(host, 'postgres', `DROP DATABASE IF EXISTS ${ident(replaced)} WITH (FORCE)`);
    const live = (
      await psql(
        host,
        'postgres',
        `SELECT pg_get_userbyid(datdba) || '|' || pg_encoding_to_char(encoding) || '|' || datcollate || '|' || datctype FROM pg_database WHERE datname = ${literal(database)}`,
      )
    ).trim();
    const [owner, encoding, collate, ctype] = live ? live.split('|') : [options.owner ?? 'postgres'];
    const shape = encoding ? ` ENCODING ${literal(encoding)} LC_COLLATE ${literal(collate!)} LC_CTYPE ${literal(ctype!)}` : '';
    await psql(host, 'postgres', `CREATE DATABASE ${ident(restoring)} OWNER ${ident(owner!)} TEMPLATE template0${shape}`);
    try {
      await restoreStream(access, {
        what: `restore of database ${database} from snapshot ${options.snapshot.slice(0, 8)}`,
        snapshot: options.snapshot,
        filename: dumpName(database, options.project),
        consumer: 'runuser -u postgres -- pg_restore --exit-on-error --single-transaction --dbname="$1"',
        args: [restoring],
      });
    } catch (cause) {
      await psql(host, 'postgres', `DROP DATABASE IF EXISTS ${ident(restoring)} WITH (FORCE)`).catch(() => undefined);
      throw cause;
    }
    const running = await activeUnits(host, options.units);
    if (running.length > 0) await systemctl(host, ['stop', '--', ...running]);
    try {
      await swap(host, database, restoring, replaced, live !== '');
    } finally {
      if (running.length > 0) await systemctl(host, ['start', '--', ...running]);
    }
    // The old data is no longer live; a copy that will not drop now is dropped by the next restore.
    await psql(host, 'postgres', `DROP DATABASE IF EXISTS ${ident(replaced)} WITH (FORCE)`).catch(() => undefined);
    return { seconds: (Date.now() - started) / 1000 };
  });
}

// End the live database's sessions and rename, both names in one transaction; a session that
// reconnects in between (not one of the stopped units) gets a few more tries.
async function swap(host: Host, database: string, restoring: string, replaced: string, exists: boolean): Promise<void> {
  const rename = exists
    ? `ALTER DATABASE ${ident(database)} RENAME TO ${ident(replaced)}; ALTER DATABASE ${ident(restoring)} RENAME TO ${ident(database)}`
    : `ALTER DATABASE ${ident(restoring)} RENAME TO ${ident(database)}`;
  for (let attempt = 1; ; attempt++) {
    await psql(host, 'postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${literal(database)} AND pid <> pg_backend_pid()`);
    try {
      await psql(host, 'postgres', `BEGIN; ${rename}; COMMIT`);
      return;
    } catch (cause) {
      if (attempt >= 5 || !/being accessed by other users/.test(String(cause))) throw cause;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

async function activeUnits(host: Host, units: readonly string[]): Promise<string[]> {
  if (units.length === 0) return [];
  const r = await host.exec('systemctl', ['is-active', '--', ...units]);
  const states = r.stdout.trim().split('\n');
  return units.filter((_, i) => states[i] === 'active' || states[i] === 'activating' || states[i] === 'reloading');
}

async function systemctl(host: Host, args: string[]): Promise<void> {
  const r = await host.exec('systemctl', args);
  if (r.exitCode !== 0) throw new HostKitError('BACKUP_FAILED', `systemctl ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** STATE/backups/checkpoints.json: the snapshots of each run's checkpoints, so they go with the run's journal. */
interface CheckpointIndex {
  runs: Record<string, string[]>;
}

function indexPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'backups', 'checkpoints.json');
}

async function readIndex(host: Host, stateDirectory: string): Promise<CheckpointIndex> {
  const bytes = await host.readFile(indexPath(stateDirectory));
  try {
    const parsed = bytes ? (JSON.parse(bytes.toString('utf8')) as CheckpointIndex) : undefined;
    return { runs: parsed?.runs && typeof parsed.runs === 'object' ? parsed.runs : {} };
  } catch {
    return { runs: {} };
  }
}

async function indexRun(host: Host, stateDirectory: string, run: string): Promise<void> {
  const index = await readIndex(host, stateDirectory);
  if (index.runs[run]) return;
  index.runs[run] = [];
  await writeRootFile(host, indexPath(stateDirectory), JSON.stringify(index, null, 1) + '\n');
}

async function indexSnapshot(host: Host, stateDirectory: string, run: string, snapshot: string): Promise<void> {
  const index = await readIndex(host, stateDirectory);
  index.runs[run] = [...(index.runs[run] ?? []), snapshot];
  await writeRootFile(host, indexPath(stateDirectory), JSON.stringify(index, null, 1) + '\n');
}

/**
 * Forget the checkpoints of runs whose journals are gone (`runs`: the runs still on the host)
 * and prune the data only they held: the snapshots indexed, and any other tagged with those
 * runs (a run that died between its dump and indexing it). Costs one file read when there
 * are none; a failure leaves them listed, for the next prune to try again. Returns the snapshots forgotten.
 */
export async function forgetPrunedCheckpoints(host: Host, stateDirectory: string, runs: ReadonlySet<string>): Promise<string[]> {
  const stale = Object.keys((await readIndex(host, stateDirectory)).runs).filter((run) => !runs.has(run));
  if (stale.length === 0) return [];
  const access = await resticAccess(host);
  return withBackupLock(host, stateDirectory, 'removal of old checkpoints', async () => {
    const index = await readIndex(host, stateDirectory);
    const tagged = (await listSnapshots(access, ['hostkit', 'kind=checkpoint'])).filter((s) => s.run !== undefined && stale.includes(s.run));
    const ids = [...new Set([...stale.flatMap((run) => index.runs[run] ?? []), ...tagged.map((s) => s.id)])];
    if (ids.length > 0) await forgetAndPrune(access, ids);
    for (const run of stale) delete index.runs[run];
    await writeRootFile(host, indexPath(stateDirectory), JSON.stringify(index, null, 1) + '\n');
    return ids;
  });
}
