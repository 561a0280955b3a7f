import { stringify } from 'yaml';
import { errorMessage, isHostKitError } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import { COLOR, PLAIN, useColor, type Style } from '../diff/render/style.js';
import {
  readHistory,
  readJob,
  record,
  resticAccess,
  runJob,
  withBackupLock,
  type BackupPart,
  type BackupRecord,
  type RecordPart,
} from '../drivers/backup/job.js';
import { listSnapshots, type Snapshot } from '../drivers/backup/restic.js';
import { dropScratchDatabase, restoreDatabaseToScratch, restoreFilesToScratch, type ScratchRestore } from '../drivers/backup/scratch.js';
import { parseLockTimeout } from './failure.js';
import { hostOf, type OnHost } from './run-input.js';

// `hostkit backups` (the snapshots in the host's repository and the last outcome of each
// project's backups) and `hostkit backups run PROJECT` (back up now; what the timers run).
// Both run on the host as root: the repository's password is root's only.

export interface BackupsOptions {
  project?: string;
  output: 'text' | 'json' | 'yaml';
  root?: string;
  /** A --target's host (commands/targets.ts); this machine when absent. */
  on?: OnHost;
}

export interface BackupsRunOptions {
  database?: boolean;
  files?: boolean;
  scheduled?: boolean;
  output: 'text' | 'json' | 'yaml';
  root?: string;
  on?: OnHost;
}

/** `hostkit backups run PROJECT [--database] [--files]`: exit 0 when every part was backed up, 1 otherwise. */
export async function backupsRun(project: string, opts: BackupsRunOptions): Promise<number> {
  const host = hostOf(opts);
  const redactor = new Redactor();
  const scrub = (text: string) => redactor.scrub(text);
  const job = await readJob(host, project);
  const access = await resticAccess(host, redactor);
  const parts: BackupPart[] = [...(opts.database ? (['database'] as const) : []), ...(opts.files ? (['files'] as const) : [])];
  let records: BackupRecord[];
  let failed = false;
  try {
    records = await withBackupLock(host, job.stateDirectory, `project ${project}: backup`, () =>
      runJob({
        host,
        access,
        stateDirectory: job.stateDirectory,
        job,
        ...(parts.length > 0 ? { parts } : {}),
        trigger: opts.scheduled ? 'scheduled' : 'manual',
      }),
    );
  } catch (cause) {
    failed = true;
    const history = await readHistory(host, job.stateDirectory, project);
    records = history.records.slice(-Math.max(1, parts.length || [job.database, job.files].filter(Boolean).length));
    if (!isHostKitError(cause)) process.stderr.write(`hostkit: error: ${scrub(errorMessage(cause))}\n`);
  }
  if (opts.output === 'json') process.stdout.write(JSON.stringify({ project, records }, null, 2) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(stringify({ project, records }));
  else process.stdout.write(records.map((r) => describeRecord(project, r)).join(''));
  return failed ? 1 : 0;
}

function describeRecord(project: string, r: BackupRecord, style: Style = PLAIN): string {
  if (!r.ok) return style.red(`project ${project}: ${r.part} backup failed after ${r.seconds.toFixed(1)}s: ${r.error}`) + '\n';
  return `project ${project}: ${r.part} backed up in ${r.seconds.toFixed(1)}s: snapshot ${r.snapshot!.slice(0, 8)}, ${bytes(r.bytes ?? 0)} read, ${bytes(r.added ?? 0)} added\n`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** What `hostkit backups -o json` prints. */
export interface BackupsDocument {
  projects: { project: string; snapshots: Snapshot[]; last: Partial<Record<RecordPart, BackupRecord>>; lastGood: Partial<Record<RecordPart, BackupRecord>> }[];
}

/** `hostkit backups [--project P]`: the snapshots of each project (or one), and its last outcomes. */
export async function backups(opts: BackupsOptions): Promise<number> {
  const host = hostOf(opts);
  const redactor = new Redactor();
  const scrub = (text: string) => redactor.scrub(text);
  const access = await resticAccess(host, redactor);
  const snapshots = (await listSnapshots(access, ['hostkit'])).filter((s) => s.project && (!opts.project || s.project === opts.project));
  const names = [...new Set([...snapshots.map((s) => s.project!), ...(opts.project ? [opts.project] : [])])].sort();
  const doc: BackupsDocument = { projects: [] };
  for (const project of names) {
    const job = await readJob(host, project).catch(() => undefined);
    const history = job ? await readHistory(host, job.stateDirectory, project) : { records: [] };
    const last: Partial<Record<RecordPart, BackupRecord>> = {};
    const lastGood: Partial<Record<RecordPart, BackupRecord>> = {};
    for (const r of history.records) {
      last[r.part] = r;
      if (r.ok) lastGood[r.part] = r;
    }
    doc.projects.push({ project, snapshots: snapshots.filter((s) => s.project === project).reverse(), last, lastGood });
  }
  if (opts.output === 'json') process.stdout.write(scrub(JSON.stringify(doc, null, 2)) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(scrub(stringify(doc)));
  else process.stdout.write(scrub(renderBackups(doc, useColor(process.stdout) ? COLOR : PLAIN)));
  return 0;
}

export function renderBackups(doc: BackupsDocument, style: Style = PLAIN): string {
  if (doc.projects.length === 0) return 'No backups in the repository.\n';
  const out: string[] = [];
  for (const p of doc.projects) {
    out.push(style.bold(p.project));
    for (const part of ['database', 'files', 'drill'] as const) {
      const last = p.last[part];
      if (!last) continue;
      const good = p.lastGood[part];
      out.push(
        last.ok
          ? `  ${part.padEnd(8)}  last backup ${last.at} ok (${last.seconds.toFixed(1)}s, ${bytes(last.bytes ?? 0)})`
          : style.red(`  ${part.padEnd(8)}  last backup ${last.at} FAILED: ${last.error}${good ? `; last good ${good.at}` : '; none good yet'}`),
      );
    }
    for (const s of p.snapshots) out.push(`    ${s.shortId}  ${s.time.replace(/\.\d+/, '')}  ${(s.kind ?? '').padEnd(8)}  ${s.paths.join(' ')}`);
  }
  return out.join('\n') + '\n';
}

export interface BackupsRestoreOptions {
  snapshot?: string;
  /** A restore drill: the database into a scratch copy, checked, dropped again, the outcome recorded. */
  drill?: boolean;
  scheduled?: boolean;
  toScratch?: boolean;
  /** Replace the live database (a journaled run with its own checkpoint first); needs `yes`. */
  toLive?: boolean;
  yes?: boolean;
  lockTimeout?: string;
  database?: boolean;
  files?: boolean;
  output: 'text' | 'json' | 'yaml';
  root?: string;
  on?: OnHost;
}

/**
 * `hostkit backups restore PROJECT --to-scratch [--snapshot ID] [--database] [--files]`: each
 * part into a scratch copy that can never be the live one, checked, with how long it took.
 */
export async function backupsRestore(project: string, opts: BackupsRestoreOptions): Promise<number> {
  if (opts.toScratch === opts.toLive) {
    process.stderr.write(
      'hostkit: error: say where to: --to-scratch (a new scratch database or directory; the live data is never touched) or --to-live --yes (replaces the live database)\n',
    );
    return 2;
  }
  if (opts.toLive) return toLive(project, opts);
  const host = hostOf(opts);
  const redactor = new Redactor();
  const scrub = (text: string) => redactor.scrub(text);
  const job = await readJob(host, project);
  const access = await resticAccess(host, redactor);
  const wanted = [...(opts.database ? ['database'] : []), ...(opts.files ? ['files'] : [])];
  const parts = (['database', 'files'] as const).filter((p) => job[p] !== undefined && (wanted.length === 0 || wanted.includes(p)));
  if (parts.length === 0) {
    process.stderr.write(`hostkit: error: project ${project} declares no ${wanted.length > 0 ? `${wanted.join(' or ')} ` : ''}backup\n`);
    return 1;
  }
  if (opts.snapshot && parts.length > 1) {
    process.stderr.write('hostkit: error: --snapshot names one snapshot: add --database or --files\n');
    return 2;
  }
  if (opts.drill) return withBackupLock(host, job.stateDirectory, `project ${project}: restore drill`, () => drill(project, job, access, opts, scrub));
  const results: ScratchRestore[] = [];
  await withBackupLock(host, job.stateDirectory, `project ${project}: restore`, async () => {
    for (const part of parts) {
      const options = opts.snapshot ? { snapshot: opts.snapshot } : {};
      results.push(part === 'database' ? await restoreDatabaseToScratch(access, job, options) : await restoreFilesToScratch(access, job, options));
    }
  });
  if (opts.output === 'json') process.stdout.write(scrub(JSON.stringify({ project, restores: results }, null, 2)) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(scrub(stringify({ project, restores: results })));
  else process.stdout.write(scrub(results.map((r) => renderScratch(project, r)).join('')));
  return 0;
}

// --to-live: the database only (files: --to-scratch, then copy what is needed), and only with --yes.
async function toLive(project: string, opts: BackupsRestoreOptions): Promise<number> {
  if (opts.files || opts.drill) {
    process.stderr.write('hostkit: error: --to-live restores the database; for files restore --to-scratch and copy back what you need\n');
    return 2;
  }
  const host = hostOf(opts);
  const redactor = new Redactor();
  const job = await readJob(host, project);
  if (!job.database) {
    process.stderr.write(`hostkit: error: project ${project} declares no database backup\n`);
    return 1;
  }
  if (!opts.yes) {
    process.stderr.write(
      `hostkit: error: --to-live replaces project ${project}'s live database ${job.database.name} with ${opts.snapshot ? `snapshot ${opts.snapshot}` : 'its newest backup'}: the data written since is replaced (checkpointed first); add --yes\n`,
    );
    return 2;
  }
  const access = await resticAccess(host, redactor);
  const { restoreDatabaseToLive } = await import('./restore-live.js');
  const timeoutMs = parseLockTimeout(opts.lockTimeout);
  const r = await restoreDatabaseToLive(access, job, {
    ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
    ...(timeoutMs !== undefined ? { lockTimeoutMs: timeoutMs } : {}),
    note: (line) => process.stderr.write(`hostkit: ${line}\n`),
  });
  if (opts.output === 'json') process.stdout.write(JSON.stringify({ project, restore: r }, null, 2) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(stringify({ project, restore: r }));
  else
    process.stdout.write(
      `project ${project}: database ${r.database} restored from snapshot ${r.snapshot.slice(0, 8)} (${r.snapshotTime.replace(/\.\d+/, '')}) in ${r.seconds.toFixed(1)}s, as run ${r.run}\n` +
        `  the data it replaced is checkpoint ${r.checkpoint.slice(0, 8)}: \`hostkit rollback --run ${r.run} --with-data\` puts it back\n`,
    );
  return 0;
}

// A drill: what --to-scratch --database does, then the copy dropped and the outcome recorded
// (STATE/backups/NAME.json, part drill): status and the metrics show the last good one.
async function drill(
  project: string,
  job: Awaited<ReturnType<typeof readJob>>,
  access: Awaited<ReturnType<typeof resticAccess>>,
  opts: BackupsRestoreOptions,
  scrub: (text: string) => string,
): Promise<number> {
  const started = Date.now();
  const at = new Date(started).toISOString();
  const trigger = opts.scheduled ? 'scheduled' : 'manual';
  const part: RecordPart = 'drill';
  try {
    const r = await restoreDatabaseToScratch(access, job, opts.snapshot ? { snapshot: opts.snapshot } : {});
    await dropScratchDatabase(access.host, r.database);
    // A dump that holds table data must bring tables back.
    if (r.dumpTables > 0 && r.tables.length === 0) throw new Error(`snapshot ${r.snapshot.slice(0, 8)} holds ${r.dumpTables} tables with data, none came back`);
    await record(access.host, job.stateDirectory, project, { part, at, ok: true, seconds: (Date.now() - started) / 1000, snapshot: r.snapshot, trigger });
    const rows = r.tables.reduce((n, t) => n + t.rows, 0);
    const text = `project ${project}: restore drill of database snapshot ${r.snapshot.slice(0, 8)} passed in ${r.seconds.toFixed(1)}s: ${r.tables.length} table(s), ${rows} rows; the scratch copy is dropped\n`;
    process.stdout.write(opts.output === 'json' ? JSON.stringify({ project, drill: { ok: true, ...r } }, null, 2) + '\n' : text);
    return 0;
  } catch (cause) {
    const error = scrub(errorMessage(cause));
    await record(access.host, job.stateDirectory, project, { part, at, ok: false, seconds: (Date.now() - started) / 1000, error, trigger });
    process.stdout.write(
      opts.output === 'json'
        ? JSON.stringify({ project, drill: { ok: false, error } }, null, 2) + '\n'
        : `project ${project}: restore drill FAILED: ${error}\n`,
    );
    return 1;
  }
}

export function renderScratch(project: string, r: ScratchRestore): string {
  const head = `project ${project}: ${r.part} snapshot ${r.snapshot.slice(0, 8)} (${r.snapshotTime.replace(/\.\d+/, '')}) restored in ${r.seconds.toFixed(1)}s`;
  if (r.part === 'database') {
    const rows = r.tables.map((t) => `  ${t.table.padEnd(32)} ${t.rows} rows`);
    return (
      [
        `${head} into scratch database ${r.database}: ${r.tables.length} table(s), ${r.dumpTables} with data in the dump`,
        ...rows,
        `  (the live database is untouched; drop the copy with: sudo -u postgres dropdb ${r.database})`,
      ].join('\n') + '\n'
    );
  }
  const total = r.files.reduce((n, f) => n + f.bytes, 0);
  return (
    [
      `${head} into ${r.directory}: ${r.files.length} file(s), ${bytes(total)}`,
      ...r.files.map((f) => `  ${f.sha256}  ${f.path}`),
      `  (remove the copy with: sudo rm -r ${r.directory})`,
    ].join('\n') + '\n'
  );
}
