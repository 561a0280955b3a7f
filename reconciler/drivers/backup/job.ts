import path from 'node:path';
import { HostKitError, errorMessage } from '../../core/errors.js';
import { Redactor } from '../../core/secrets.js';
import { ensureRootDirectory, writeRootFile } from '../../hosts/root-files.js';
import type { Host } from '../../hosts/types.js';
import { jobPath, RESTIC_ENV, type BackupJob } from './project.js';
import { backupPaths, backupStream, forget, initRepository, unlockStale, type BackupSummary, type ResticAccess } from './restic.js';

// One run of a project's backup job (`hostkit backups run NAME`, what its timers start):
// the database dumped with pg_dump -Fc into restic, the paths backed up, each followed by
// its retention; the outcome recorded in STATE/backups/NAME.json for status, reports and
// metrics. A failure is recorded and thrown; it never touches the host's other state.

export type BackupPart = 'database' | 'files';
/** What STATE/backups/NAME.json records: each part's backups, and restore drills of the database. */
export type RecordPart = BackupPart | 'drill';

/** One backup's (or drill's) outcome, as STATE/backups/NAME.json keeps it. */
export interface BackupRecord {
  part: RecordPart;
  at: string;
  ok: boolean;
  seconds: number;
  snapshot?: string;
  bytes?: number;
  added?: number;
  error?: string;
  /** `scheduled` from a timer, `manual` from the command line. */
  trigger: 'scheduled' | 'manual';
}

/** STATE/backups/NAME.json: the newest outcomes of each part, newest last. */
export interface BackupHistory {
  project: string;
  records: BackupRecord[];
}

const HISTORY = 50;

/**
 * One restic job at a time on a host (backups, drills, restores): restic's own repository lock
 * makes a second job fail rather than wait (a prune holds it exclusively), and 0.14 has no
 * --retry-lock. Timers of one project (database, files, drill) and a manual run queue here.
 */
export async function withBackupLock<T>(host: Host, stateDirectory: string, what: string, work: () => Promise<T>, waitMs = LOCK_WAIT_MS): Promise<T> {
  const file = path.posix.join(stateDirectory, 'backups', '.lock');
  await ensureRootDirectory(host, path.posix.dirname(file));
  const held = await host.lock(file, { waitMs });
  if (!held) throw new HostKitError('BACKUP_FAILED', `${what}: another backup job held ${file} for over ${Math.round(waitMs / 60_000)} minutes`);
  try {
    return await work();
  } finally {
    await held.release();
  }
}

const LOCK_WAIT_MS = 2 * 60 * 60 * 1000;

export function historyPath(stateDirectory: string, project: string): string {
  return path.posix.join(stateDirectory, 'backups', `${project}.json`);
}

/** The variables of restic's environment file (systemd EnvironmentFile syntax, as HostKit writes it). */
export function parseEnvironment(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/\\(["\\])/g, '$1');
  }
  return env;
}

async function readText(host: Host, file: string, what: string): Promise<string> {
  const bytes = await host.readFile(file);
  if (!bytes) throw new HostKitError('BACKUP_FAILED', `${what} ${file} is missing: HostKit writes it when a manifest declares backups (apply first)`);
  return bytes.toString('utf8');
}

export async function readJob(host: Host, project: string): Promise<BackupJob> {
  return JSON.parse(await readText(host, jobPath(project), `project ${project}: the backup job`)) as BackupJob;
}

/**
 * How to reach the host's repository, from the environment file HostKit wrote (root's, 0600):
 * its password and credentials join `redactor`, which scrubs restic's output. Snapshots are
 * recorded under the host's own name (uname -n), wherever HostKit runs.
 */
export async function resticAccess(host: Host, redactor: Redactor = new Redactor()): Promise<ResticAccess> {
  const env = parseEnvironment(await readText(host, RESTIC_ENV, "the backup repository's environment"));
  for (const [key, value] of Object.entries(env)) if (key !== 'RESTIC_REPOSITORY') redactor.add(value);
  return { host, env, scrub: (text) => redactor.scrub(text), hostname: await host.hostname() };
}

export async function readHistory(host: Host, stateDirectory: string, project: string): Promise<BackupHistory> {
  const bytes = await host.readFile(historyPath(stateDirectory, project));
  if (!bytes) return { project, records: [] };
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as BackupHistory;
    return { project, records: Array.isArray(parsed.records) ? parsed.records : [] };
  } catch {
    return { project, records: [] }; // a torn write: the next record starts it again
  }
}

/** Every project's history under STATE/backups (for the agent's metrics). */
export async function readBackupHistories(host: Host, stateDirectory: string): Promise<BackupHistory[]> {
  const names = ((await host.readdir(path.posix.join(stateDirectory, 'backups'))) ?? []).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map((n) => readHistory(host, stateDirectory, n.slice(0, -'.json'.length))));
}

/** Append one outcome to the project's history (the newest 50 kept). */
export async function record(host: Host, stateDirectory: string, project: string, entry: BackupRecord): Promise<void> {
  const history = await readHistory(host, stateDirectory, project);
  history.records.push(entry);
  history.records = history.records.slice(-HISTORY);
  await writeRootFile(host, historyPath(stateDirectory, project), JSON.stringify(history, null, 1) + '\n');
}

export interface RunJobOptions {
  host: Host;
  access: ResticAccess;
  stateDirectory: string;
  job: BackupJob;
  /** Which parts; default every part the job has. */
  parts?: readonly BackupPart[];
  trigger: BackupRecord['trigger'];
}

/**
 * Back up each part of the job, then apply its retention. Every part is tried (a failed
 * database dump still lets the files be backed up); the outcomes are recorded, and the
 * first failure is thrown once all ran.
 */
export async function runJob(options: RunJobOptions): Promise<BackupRecord[]> {
  const { host, access, stateDirectory, job } = options;
  const parts = (options.parts ?? (['database', 'files'] as const)).filter((p) => job[p] !== undefined);
  if (parts.length === 0)
    throw new HostKitError('BACKUP_FAILED', `project ${job.project} declares no ${options.parts ? `${options.parts.join(' or ')} ` : ''}backup`);
  const records: BackupRecord[] = [];
  let first: unknown;
  let ready = false;
  for (const part of parts) {
    const started = Date.now();
    const at = new Date(started).toISOString();
    try {
      if (!ready) {
        // A killed job leaves a stale lock; restic removes only locks whose process is gone.
        await initRepository(access);
        await unlockStale(access);
        ready = true;
      }
      const summary = await backupPart(access, job, part);
      const entry: BackupRecord = {
        part,
        at,
        ok: true,
        seconds: (Date.now() - started) / 1000,
        snapshot: summary.snapshot,
        bytes: summary.bytes,
        added: summary.added,
        trigger: options.trigger,
      };
      records.push(entry);
      await record(host, stateDirectory, job.project, entry);
    } catch (cause) {
      first ??= cause;
      const entry: BackupRecord = {
        part,
        at,
        ok: false,
        seconds: (Date.now() - started) / 1000,
        error: access.scrub(errorMessage(cause)),
        trigger: options.trigger,
      };
      records.push(entry);
      await record(host, stateDirectory, job.project, entry);
    }
  }
  if (first !== undefined) throw first;
  return records;
}

async function backupPart(access: ResticAccess, job: BackupJob, part: BackupPart): Promise<BackupSummary> {
  const tags = ['hostkit', `project=${job.project}`, `kind=${part}`];
  let summary: BackupSummary;
  if (part === 'database') {
    const database = job.database!;
    summary = await backupStream(access, {
      what: `project ${job.project}: backup of database ${database.name}`,
      // As postgres over the socket (peer): the dump in PostgreSQL's custom format, compressed.
      // Uncompressed: restic compresses it, and stores only what changed since the last dump (a compressed dump differs throughout).
      producer: 'runuser -u postgres -- pg_dump --format=custom --compress=0 --dbname="$1"',
      args: [database.name],
      filename: `/${job.project}/${database.name}.dump`,
      tags,
    });
    if (database.keep) await forget(access, tags, database.keep);
  } else {
    const files = job.files!;
    summary = await backupPaths(access, { what: `project ${job.project}: backup of ${files.paths.join(', ')}`, paths: files.paths, tags });
    if (files.keep) await forget(access, tags, files.keep);
  }
  return summary;
}
