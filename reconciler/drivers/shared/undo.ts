import path from 'node:path';
import type { Host } from '../../hosts/types.js';
import type { ChangeJournal, JournaledChange, Restore } from '../types.js';

// The undo of drivers that write files at paths (file, envfile, sysctl): the
// journal backs up each path, and records the directories a write would have
// to create, so a restore removes them again once they are empty.

/** The directories missing on the way to `filePath`, outermost first (what a write creates). */
export async function missingParents(host: Host, filePath: string): Promise<string[]> {
  const missing: string[] = [];
  let dir = path.posix.dirname(filePath);
  while (dir !== '/' && !(await host.stat(dir))) {
    missing.unshift(dir);
    dir = path.posix.dirname(dir);
  }
  return missing;
}

/** Back up `filePath`, and record the directories its write would create (key `parents`). */
export async function backupPath(journal: ChangeJournal, filePath: string): Promise<void> {
  // Both looked at at once (one round trip over SSH); a restore reads the two records by their kind, not their order.
  const [created] = await Promise.all([missingParents(journal.host, filePath), journal.backupFile(filePath)]);
  if (created.length > 0) await journal.backupState('parents', { created } satisfies ParentsRecord);
}

interface ParentsRecord {
  created: string[];
}

/** Remove the directories a change created, innermost first, those still there and empty (anything in one keeps it). */
export interface RemoveDirectoriesStep {
  action: 'remove-directories';
  resource: string;
  paths: string[];
  unchanged: boolean;
}

export async function planRemoveDirectories(change: JournaledChange<ParentsRecord>, host: Host): Promise<RemoveDirectoriesStep[]> {
  const paths = change.records.filter((r) => r.key === 'parents').flatMap((r) => r.data.created);
  if (paths.length === 0) return [];
  const present = await Promise.all(paths.map(async (p) => (await host.stat(p)) !== undefined));
  return [{ action: 'remove-directories', resource: change.id, paths, unchanged: !present.some(Boolean) }];
}

export async function removeDirectories(host: Host, step: RemoveDirectoriesStep): Promise<void> {
  for (const dir of [...step.paths].reverse()) {
    if ((await host.stat(dir))?.type !== 'directory') continue;
    if (((await host.readdir(dir)) ?? []).length > 0) continue; // something else lives there now: kept
    await host.remove(dir, { managed: true });
  }
}

export function describeRemoveDirectories(step: RemoveDirectoriesStep): string {
  return `  remove  ${step.paths.join(' ')} (created for it; kept if not empty)${step.unchanged ? ' - already gone' : ''}`;
}

/** The undo of a driver of one file per resource: its path backed up, and the directories created for it removed again. */
export function fileRestore<C>(pathOf: (change: C) => string | undefined): Restore<C, ParentsRecord, RemoveDirectoriesStep> {
  return {
    async backup(change, journal) {
      const p = pathOf(change);
      if (p) await backupPath(journal, p);
    },
    plan: planRemoveDirectories,
    apply: async (step, ctx) => removeDirectories(ctx.host, step),
    describe: describeRemoveDirectories,
  };
}
