// Each project's backups for the agent's report (status/HOST.json and .md): when its database
// and files were last backed up, and its restore drill last passed. Read from the records the
// backup jobs keep on the host (STATE/backups/NAME.json): file reads only, no restic.
import { readBackupHistories, type RecordPart } from '../drivers/backup/job.js';
import type { Host } from '../hosts/types.js';

/** A project's backups as a report names them: the last good one of each part, and the parts whose latest attempt failed. */
export interface ReportBackup {
  project: string;
  /** When each part last succeeded (drill: the last restore drill that passed). */
  lastGood: Partial<Record<RecordPart, string>>;
  /** Parts whose newest attempt failed, with its error (redacted when recorded). */
  failing?: { part: RecordPart; at: string; error: string }[];
}

export async function backupSummaries(host: Host, stateDirectory: string): Promise<ReportBackup[]> {
  const histories = await readBackupHistories(host, stateDirectory);
  return histories
    .filter((h) => h.records.length > 0)
    .map((h) => {
      const lastGood: ReportBackup['lastGood'] = {};
      const newest = new Map<RecordPart, (typeof h.records)[number]>();
      for (const r of h.records) {
        newest.set(r.part, r);
        if (r.ok) lastGood[r.part] = r.at;
      }
      const failing = [...newest.values()].filter((r) => !r.ok).map((r) => ({ part: r.part, at: r.at, error: r.error ?? 'failed' }));
      return { project: h.project, lastGood, ...(failing.length > 0 ? { failing } : {}) };
    });
}

/** One markdown line per project. */
export function backupText(b: ReportBackup): string {
  const parts = (['database', 'files', 'drill'] as const)
    .filter((p) => b.lastGood[p] !== undefined)
    .map((p) => `${p === 'drill' ? 'restore drill passed' : p} ${b.lastGood[p]}`);
  const failing = (b.failing ?? []).map((f) => `${f.part} FAILED ${f.at}`);
  return [...parts, ...failing].join(', ') || '(none yet)';
}
