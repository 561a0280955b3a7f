import type { Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import type { Restore } from '../types.js';
import { describeRemoveDirectories, missingParents, removeDirectories, type RemoveDirectoriesStep } from '../shared/undo.js';
import type { DirectorySpec } from '../../core/specs.js';

// The undo of a Directory change. A directory a run created (with the parents
// made for it) goes again while it is empty; once anything is in it, it is kept,
// with its inventory entry: it may hold data. One whose owner or mode a run
// changed gets them back from the run journal.

interface OwnershipRecord {
  uid: number;
  gid: number;
  mode: number;
}

type OwnershipStep = { action: 'restore-ownership'; resource: string; path: string; uid: number; gid: number; mode: number; unchanged: boolean };
type DirectoryStep = OwnershipStep | RemoveDirectoriesStep;
type DirectoryRecord = (OwnershipRecord & { path: string }) | { created: string[] };

export const directoryRestore: Restore<Change<DirectorySpec, unknown, DirectorySpec>, DirectoryRecord, DirectoryStep> = {
  keeps: 'directories are kept once they hold anything (they may hold data)',

  async backup(change, journal) {
    const p = change.resource?.spec.path;
    if (!p || change.action === 'delete') return;
    const st = await journal.host.stat(p);
    if (st?.type === 'directory') await journal.backupState('ownership', { path: p, uid: st.uid, gid: st.gid, mode: st.mode });
    else if (!st) await journal.backupState('created', { created: [...(await missingParents(journal.host, p)), p] });
  },

  // An empty directory the run created is removed (no step: kept, with its inventory entry).
  async plan(change, host) {
    const steps: DirectoryStep[] = [];
    for (const { key, data } of change.records) {
      if (key === 'created' && 'created' in data) {
        const target = data.created.at(-1)!;
        const st = await host.stat(target);
        if (st?.type === 'directory' && ((await host.readdir(target)) ?? []).length > 0) continue;
        steps.push({ action: 'remove-directories', resource: change.id, paths: data.created, unchanged: st === undefined });
      }
      if (key !== 'ownership' || !('path' in data)) continue;
      const st = await host.stat(data.path);
      if (st?.type !== 'directory') continue; // gone since: nothing to put the ownership on
      const unchanged = st.uid === data.uid && st.gid === data.gid && st.mode === data.mode;
      steps.push({ action: 'restore-ownership', resource: change.id, ...data, unchanged });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.action === 'remove-directories') return removeDirectories(ctx.host, step);
    if (step.unchanged) return;
    // `hostkit rollback` records what it replaces, so it can be undone in turn.
    if (ctx.record) await ctx.record.backupState('ownership', await currentOwnership(ctx.host, step.path));
    await ctx.host.setOwnership(step.path, { uid: step.uid, gid: step.gid, mode: step.mode }, { managed: true });
  },

  describe: (step) =>
    step.action === 'remove-directories'
      ? describeRemoveDirectories(step)
      : `  chown   ${step.path} back to ${step.uid}:${step.gid} 0${step.mode.toString(8)}${step.unchanged ? ' - already as before' : ''}`,
};

async function currentOwnership(host: Host, p: string): Promise<OwnershipRecord & { path: string }> {
  const st = (await host.stat(p))!;
  return { path: p, uid: st.uid, gid: st.gid, mode: st.mode };
}
