import { hasOp, type Change } from '../../diff/model.js';
import type { Restore } from '../types.js';
import { backupPath, describeRemoveDirectories, planRemoveDirectories, removeDirectories, type RemoveDirectoriesStep } from '../shared/undo.js';
import type { ObservedSysctl, SysctlOp } from './index.js';
import type { SysctlSpec } from './spec.js';
import { readLive, sameValue, writeValues } from './sysctl.js';

// The undo of a Sysctl change: its file from the run journal, and the values the
// kernel had before (a record of the journal: a restored file alone would change
// them only at the next boot).

interface ValuesRecord {
  values: Record<string, string>;
}

type SysctlRestoreStep = RemoveDirectoriesStep | { action: 'restore-values'; resource: string; values: Record<string, string>; unchanged: boolean };

export const sysctlRestore: Restore<Change<unknown, ObservedSysctl, SysctlSpec, SysctlOp>, ValuesRecord, SysctlRestoreStep> = {
  // The live values of its keys as observed: apply sets no other, and only when it loads the file.
  async backup(change, journal) {
    const spec = change.resource?.spec;
    if (!spec) return;
    if (hasOp(change, 'load')) await journal.backupState('values', { values: change.observed?.live ?? {} } satisfies ValuesRecord);
    await backupPath(journal, spec.path);
  },

  // One `sysctl` read per change, to say whether its values are already as before.
  async plan(change, host) {
    const steps: SysctlRestoreStep[] = [...(await planRemoveDirectories(change as never, host))];
    const values = Object.assign({}, ...change.records.filter((r) => r.key === 'values').map((r) => (r.data as ValuesRecord).values)) as Record<string, string>;
    const keys = Object.keys(values);
    if (keys.length > 0) {
      const live = await readLive(host, keys);
      const unchanged = keys.every((k) => live.values[k] !== undefined && sameValue(live.values[k]!, values[k]!));
      steps.unshift({ action: 'restore-values', resource: change.id, values, unchanged });
    }
    return steps;
  },

  // The values in one `sysctl --write`, after the file came back (a file step runs first).
  async apply(step, ctx) {
    if (step.action === 'remove-directories') return removeDirectories(ctx.host, step);
    if (!step.unchanged) await writeValues(ctx.host, step.values);
  },

  describe: (step) =>
    step.action === 'remove-directories'
      ? describeRemoveDirectories(step)
      : `  set     ${Object.entries(step.values)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')} back (one sysctl --write)${step.unchanged ? ' - already as before' : ''}`,
};
