import os from 'node:os';
import { stringify } from 'yaml';
import { errorMessage, isHostKitError } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import { COLOR, PLAIN, useColor, type Style } from '../diff/render/style.js';
import { readHistory, readJob, resticAccess, runJob, type BackupPart, type BackupRecord } from '../drivers/backup/job.js';
import { listSnapshots, type Snapshot } from '../drivers/backup/restic.js';
import { LocalHost } from '../hosts/local.js';

// `hostkit backups` (the snapshots in the host's repository and the last outcome of each
// project's backups) and `hostkit backups run PROJECT` (back up now; what the timers run).
// Both run on the host as root: the repository's password is root's only.

export interface BackupsOptions {
  project?: string;
  output: 'text' | 'json' | 'yaml';
  root?: string;
}

export interface BackupsRunOptions {
  database?: boolean;
  files?: boolean;
  scheduled?: boolean;
  output: 'text' | 'json';
  root?: string;
}

function localHost(root: string | undefined): LocalHost {
  return new LocalHost(root ? { root } : {});
}

/** `hostkit backups run PROJECT [--database] [--files]`: exit 0 when every part was backed up, 1 otherwise. */
export async function backupsRun(project: string, opts: BackupsRunOptions): Promise<number> {
  const host = localHost(opts.root);
  const redactor = new Redactor();
  const scrub = (text: string) => redactor.scrub(text);
  const job = await readJob(host, project);
  const access = await resticAccess(host, { hostname: os.hostname(), scrub, register: (s) => redactor.add(s) });
  const parts: BackupPart[] = [...(opts.database ? (['database'] as const) : []), ...(opts.files ? (['files'] as const) : [])];
  let records: BackupRecord[];
  let failed = false;
  try {
    records = await runJob({
      host,
      access,
      stateDirectory: job.stateDirectory,
      job,
      ...(parts.length > 0 ? { parts } : {}),
      trigger: opts.scheduled ? 'scheduled' : 'manual',
    });
  } catch (cause) {
    failed = true;
    const history = await readHistory(host, job.stateDirectory, project);
    records = history.records.slice(-Math.max(1, parts.length || [job.database, job.files].filter(Boolean).length));
    if (!isHostKitError(cause)) process.stderr.write(`hostkit: error: ${scrub(errorMessage(cause))}\n`);
  }
  if (opts.output === 'json') process.stdout.write(JSON.stringify({ project, records }, null, 2) + '\n');
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
  projects: { project: string; snapshots: Snapshot[]; last: Partial<Record<BackupPart, BackupRecord>>; lastGood: Partial<Record<BackupPart, BackupRecord>> }[];
}

/** `hostkit backups [--project P]`: the snapshots of each project (or one), and its last outcomes. */
export async function backups(opts: BackupsOptions): Promise<number> {
  const host = localHost(opts.root);
  const redactor = new Redactor();
  const scrub = (text: string) => redactor.scrub(text);
  const access = await resticAccess(host, { hostname: os.hostname(), scrub, register: (s) => redactor.add(s) });
  const snapshots = (await listSnapshots(access, ['hostkit'])).filter((s) => s.project && (!opts.project || s.project === opts.project));
  const names = [...new Set([...snapshots.map((s) => s.project!), ...(opts.project ? [opts.project] : [])])].sort();
  const doc: BackupsDocument = { projects: [] };
  for (const project of names) {
    const job = await readJob(host, project).catch(() => undefined);
    const history = job ? await readHistory(host, job.stateDirectory, project) : { records: [] };
    const last: Partial<Record<BackupPart, BackupRecord>> = {};
    const lastGood: Partial<Record<BackupPart, BackupRecord>> = {};
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
    for (const part of ['database', 'files'] as const) {
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
