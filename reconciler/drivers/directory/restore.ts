import type { Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import type { Restore } from '../types.js';
import type { DirectorySpec } from '../../core/specs.js';

// The undo of a Directory change. A directory a run created is kept, with its
// inventory entry (it may hold data by then); one whose owner or mode a run
// changed gets them back from the run journal.

interface OwnershipRecord {
  uid: number;
  gid: number;
  mode: number;
}

type OwnershipStep = { action: 'restore-ownership'; resource: string; path: string; uid: number; gid: number; mode: number; unchanged: boolean };

export const directoryRestore: Restore<Change<DirectorySpec, unknown, DirectorySpec>, OwnershipRecord & { path: string }, OwnershipStep> = {
  keeps: 'directories are kept (they may hold data)',

  async backup(change, journal) {
    const p = change.resource?.spec.path;
    const st = p ? await journal.host.stat(p) : undefined;
    if (p && st?.type === 'directory') await journal.backupState('ownership', { path: p, uid: st.uid, gid: st.gid, mode: st.mode });
  },

  async plan(change, host) {
    const steps: OwnershipStep[] = [];
    for (const { key, data } of change.records) {
      if (key !== 'ownership') continue;
      const st = await host.stat(data.path);
      if (st?.type !== 'directory') continue; // gone since: nothing to put the ownership on
      const unchanged = st.uid === data.uid && st.gid === data.gid && st.mode === data.mode;
      steps.push({ action: 'restore-ownership', resource: change.id, ...data, unchanged });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.unchanged) return;
    // `hostkit rollback` records what it replaces, so it can be undone in turn.
    if (ctx.record) await ctx.record.backupState('ownership', await currentOwnership(ctx.host, step.path));
    await ctx.host.setOwnership(step.path, { uid: step.uid, gid: step.gid, mode: step.mode }, { managed: true });
  },

  describe: (step) => `  chown   ${step.path} back to ${step.uid}:${step.gid} 0${step.mode.toString(8)}${step.unchanged ? ' - already as before' : ''}`,
};

async function currentOwnership(host: Host, p: string): Promise<OwnershipRecord & { path: string }> {
  const st = (await host.stat(p))!;
  return { path: p, uid: st.uid, gid: st.gid, mode: st.mode };
}
