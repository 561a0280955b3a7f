import { findOp, type Change } from '../../diff/model.js';
import { heldRelease, holdRelease, releaseHold, type HoldEntry } from '../../apply/quarantine.js';
import type { Host } from '../../hosts/types.js';
import type { Restore } from '../types.js';
import { currentLink, historyPath } from './records.js';
import type { ReleaseOp } from './index.js';
import type { ReleaseSpec } from './spec.js';

// The undo of a release change: `current` points back where it pointed (the
// journal backs up a symlink as its target; a link the run made is removed) and
// the switch history is put back, both from the run journal. The release the
// run built stays, complete, for a later run to reuse or prune. A hold the change
// ended (its release spec changed) is a record of the journal, put back in
// STATE/safety.json. The units that run the release restart onto it as any
// restored unit does: the run rewrote their files for the new release (an
// input), and systemd's after-restore work restarts those that were running.

interface HoldRecord {
  stateDirectory: string;
  project: string;
  /** The hold as it was; absent: there was none. */
  hold?: HoldEntry;
}

type HoldStep = { action: 'restore-hold'; resource: string; unchanged: boolean } & HoldRecord;

const same = (a: HoldEntry | undefined, b: HoldEntry | undefined) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

async function putHold(host: Host, record: HoldRecord): Promise<void> {
  if (record.hold) await holdRelease(host, record.stateDirectory, { ...record.hold, at: new Date(record.hold.at) });
  else await releaseHold(host, record.stateDirectory, record.project);
}

export const releaseRestore: Restore<Change<unknown, unknown, ReleaseSpec, ReleaseOp>, HoldRecord, HoldStep> = {
  async backup(change, journal) {
    const spec = change.resource?.spec;
    if (!spec) return;
    if (findOp(change, 'end-hold')) {
      const hold = await heldRelease(journal.host, journal.stateDirectory, spec.project);
      await journal.backupState('hold', { stateDirectory: journal.stateDirectory, project: spec.project, ...(hold ? { hold } : {}) } satisfies HoldRecord);
    }
    await journal.backupFile(currentLink(spec.project));
    await journal.backupFile(historyPath(journal.stateDirectory, spec.project));
  },

  // One read of STATE/safety.json per hold record, to say whether it is already as before.
  async plan(change, host) {
    const steps: HoldStep[] = [];
    for (const { key, data } of change.records) {
      if (key !== 'hold') continue;
      const now = await heldRelease(host, data.stateDirectory, data.project);
      steps.push({ action: 'restore-hold', resource: change.id, ...data, unchanged: same(now, data.hold) });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.unchanged) return;
    // `hostkit rollback` records the hold it replaces, so it can be undone in turn.
    if (ctx.record) {
      const now = await heldRelease(ctx.host, step.stateDirectory, step.project);
      await ctx.record.backupState('hold', { stateDirectory: step.stateDirectory, project: step.project, ...(now ? { hold: now } : {}) } satisfies HoldRecord);
    }
    await putHold(ctx.host, step);
  },

  describe: (step) =>
    `  hold    ${step.hold ? `project ${step.project} on release ${step.hold.release} again` : `no release of project ${step.project}`}${step.unchanged ? ' - already as before' : ''}`,
};
