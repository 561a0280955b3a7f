import path from 'node:path';
import { HostKitError } from '../../core/errors.js';
import { ensureRootDirectory } from '../../hosts/root-files.js';
import type { Host } from '../../hosts/types.js';
import type { BackupJob } from './project.js';
import { listSnapshots, restoreStream, type ResticAccess, type Snapshot } from './restic.js';

// Restores that can never touch the live data (`hostkit backups restore --to-scratch`): a
// database into a new scratch database with a name no project's database can have, files
// into a new root-only directory under the state directory; then checked (the dump's table
// list and each table's rows; each file's sha256) so "the backup restores" is shown, not hoped.

/** Scratch databases start with this; a project's database name never does (hk_ is HostKit's). */
export const SCRATCH_PREFIX = 'hk_scratch_';

export interface ScratchDatabase {
  part: 'database';
  snapshot: string;
  snapshotTime: string;
  database: string;
  /** Tables restored, with their row counts, sorted by name. */
  tables: { table: string; rows: number }[];
  /** TABLE DATA entries the dump lists (pg_restore --list). */
  dumpTables: number;
  seconds: number;
}

export interface ScratchFiles {
  part: 'files';
  snapshot: string;
  snapshotTime: string;
  directory: string;
  /** Every regular file restored: its path as backed up, its size and sha256. */
  files: { path: string; bytes: number; sha256: string }[];
  seconds: number;
}

export type ScratchRestore = ScratchDatabase | ScratchFiles;

// 20261207_101500_123: to the millisecond, so two restores in one second get two copies.
function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace('Z', '').replace('T', '_').replace('.', '_');
}

/** The snapshot to restore: the one named (a unique prefix of its id), else the newest of the part. */
export async function pickSnapshot(access: ResticAccess, project: string, part: 'database' | 'files', id?: string): Promise<Snapshot> {
  const snapshots = await listSnapshots(access, ['hostkit', `project=${project}`, `kind=${part}`]);
  const found = id ? snapshots.filter((s) => s.id.startsWith(id)) : snapshots.slice(-1);
  if (found.length !== 1) {
    const known = snapshots.map((s) => `${s.shortId} (${s.time})`).join(', ') || 'none';
    throw new HostKitError(
      'BACKUP_FAILED',
      id
        ? `project ${project}: snapshot ${id} ${found.length > 1 ? 'is ambiguous' : 'is not'} a ${part} backup of it; its ${part} snapshots: ${known}`
        : `project ${project} has no ${part} backup yet`,
    );
  }
  return found[0]!;
}

/** One psql as postgres over the local socket, stopping at the first error (BACKUP_FAILED with its last lines). */
export async function psql(host: Host, database: string, sql: string): Promise<string> {
  const r = await host.exec('runuser', ['-u', 'postgres', '--', 'psql', '-XtAq', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql], {
    timeoutMs: 10 * 60 * 1000,
  });
  if (r.exitCode !== 0) throw new HostKitError('BACKUP_FAILED', `psql on ${database}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join('; ')}`);
  return r.stdout;
}

/** Restore the database backup into a new scratch database, then count what came back. */
export async function restoreDatabaseToScratch(
  access: ResticAccess,
  job: BackupJob,
  options: { snapshot?: string; now?: Date } = {},
): Promise<ScratchDatabase> {
  if (!job.database) throw new HostKitError('BACKUP_FAILED', `project ${job.project} declares no database backup`);
  const started = Date.now();
  const snap = await pickSnapshot(access, job.project, 'database', options.snapshot);
  const scratch = `${SCRATCH_PREFIX}${job.project.replace(/-/g, '_')}_${stamp(options.now ?? new Date())}`.slice(0, 63);
  if (scratch === job.database.name) throw new HostKitError('BACKUP_FAILED', `scratch database ${scratch} would be the live one`);
  const host = access.host;
  // The dump is fetched once, into root's scratch directory: listed, restored, then removed.
  const dump = path.posix.join(job.stateDirectory, 'scratch', `${scratch}.dump`);
  await ensureRootDirectory(host, path.posix.dirname(dump));
  let tables: ScratchDatabase['tables'];
  let dumpTables: number;
  try {
    await restoreStream(access, {
      what: `project ${job.project}: snapshot ${snap.shortId} fetched for scratch database ${scratch}`,
      snapshot: snap.id,
      filename: `/${job.project}/${job.database.name}.dump`,
      consumer: 'cat > "$1"',
      args: [dump],
    });
    const listing = await host.exec('pg_restore', ['--list', dump], { timeoutMs: 10 * 60 * 1000 });
    if (listing.exitCode !== 0)
      throw new HostKitError('BACKUP_FAILED', `project ${job.project}: pg_restore --list of snapshot ${snap.shortId}: ${listing.stderr.trim()}`);
    dumpTables = listing.stdout.split('\n').filter((l) => / TABLE DATA /.test(l)).length;
    await psql(host, 'postgres', `CREATE DATABASE "${scratch}"`);
    try {
      // Owners and grants name roles of the live database: the scratch copy is postgres's alone. Root reads the dump.
      const r = await host.exec(
        'bash',
        ['-c', 'runuser -u postgres -- pg_restore --no-owner --no-privileges --exit-on-error --dbname="$1" < "$2"', 'hostkit-restore', scratch, dump],
        { timeoutMs: 60 * 60 * 1000 },
      );
      if (r.exitCode !== 0)
        throw new HostKitError('BACKUP_FAILED', `project ${job.project}: restore of snapshot ${snap.shortId} into ${scratch}: ${r.stderr.trim()}`);
      tables = await rowCounts(host, scratch);
    } catch (cause) {
      await dropScratchDatabase(host, scratch).catch(() => undefined); // a partial copy proves nothing
      throw cause;
    }
  } finally {
    await host.remove(dump);
  }
  return { part: 'database', snapshot: snap.id, snapshotTime: snap.time, database: scratch, tables, dumpTables, seconds: (Date.now() - started) / 1000 };
}

/** Restore the files backup into a new directory under STATE/scratch, then checksum every file. */
export async function restoreFilesToScratch(access: ResticAccess, job: BackupJob, options: { snapshot?: string; now?: Date } = {}): Promise<ScratchFiles> {
  if (!job.files) throw new HostKitError('BACKUP_FAILED', `project ${job.project} declares no files backup`);
  const started = Date.now();
  const snap = await pickSnapshot(access, job.project, 'files', options.snapshot);
  const directory = path.posix.join(job.stateDirectory, 'scratch', `${job.project}-${stamp(options.now ?? new Date())}`);
  const host = access.host;
  if (await host.stat(directory)) throw new HostKitError('BACKUP_FAILED', `scratch directory ${directory} exists already`);
  await ensureRootDirectory(host, directory);
  const r = await host.exec('restic', ['--no-cache', 'restore', snap.id, '--target', directory], { env: access.env, timeoutMs: 60 * 60 * 1000 });
  if (r.exitCode !== 0)
    throw new HostKitError('BACKUP_FAILED', `project ${job.project}: restore of snapshot ${snap.shortId} into ${directory}: ${access.scrub(r.stderr.trim())}`);
  const sums = await host.exec('bash', ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum', 'hostkit-sums', directory], {
    timeoutMs: 60 * 60 * 1000,
  });
  const sizes = await host.exec('bash', ['-c', 'cd "$1" && find . -type f -printf "%s %p\\n"', 'hostkit-sizes', directory], { timeoutMs: 60 * 60 * 1000 });
  const bytes = new Map(
    sizes.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(l.indexOf(' ') + 1).replace(/^\./, ''), Number(l.slice(0, l.indexOf(' ')))] as const),
  );
  const files = sums.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const p = l.slice(66).replace(/^\./, '');
      return { path: p, bytes: bytes.get(p) ?? 0, sha256: l.slice(0, 64) };
    });
  return { part: 'files', snapshot: snap.id, snapshotTime: snap.time, directory, files, seconds: (Date.now() - started) / 1000 };
}

// Every user table and its rows, in one query (query_to_xml counts each table inside it).
async function rowCounts(host: Host, database: string): Promise<ScratchDatabase['tables']> {
  const sql = `SELECT t, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', t), false, true, '')))[1]::text
    FROM (SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t FROM pg_tables
          WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS tables ORDER BY 1`;
  return (await psql(host, database, sql))
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const bar = line.lastIndexOf('|'); // a quoted table name may hold one too
      return { table: line.slice(0, bar), rows: Number(line.slice(bar + 1)) };
    });
}

/** Drop a scratch database (a drill's, once checked); any other name is refused. */
export async function dropScratchDatabase(host: Host, database: string): Promise<void> {
  if (!database.startsWith(SCRATCH_PREFIX)) throw new HostKitError('BACKUP_FAILED', `${database} is not a scratch database; it is not dropped`);
  await psql(host, 'postgres', `DROP DATABASE IF EXISTS "${database}"`);
}
