import type { Change } from '../../diff/model.js';
import type { Restore } from '../types.js';
import { BOOT_UNIT_PATH, bootPath } from './boot.js';
import { restoreTransaction } from './index.js';
import { disarmRevert, listTableText, loadTransaction, revertArmed } from './nft.js';

// The undo of a firewall change: one transaction back to the table saved before
// it (a record of the run journal; it removes the table if there was none), any
// armed revert disarmed, and the boot copy with it (files of the journal: a
// restored run boots into the table it restored; systemd enables the boot unit
// again once it is back, systemd/restore.ts).

interface TableRecord {
  /** `nft -f` text that replaces the table with the saved one, or deletes it. */
  transaction: string;
}

type FirewallStep = { action: 'restore-firewall'; resource: string; transaction: string; unchanged: boolean };

export const firewallRestore: Restore<Change, TableRecord, FirewallStep> = {
  async backup(_change, journal) {
    await journal.backupFiles([bootPath(journal.stateDirectory), BOOT_UNIT_PATH]);
    await journal.backupState('table', { transaction: restoreTransaction(await listTableText(journal.host)) } satisfies TableRecord);
  },

  // Already as before (e.g. the commit-confirmed revert timer restored it): no transaction.
  async plan(change, host) {
    const saved = change.records.filter((r) => r.key === 'table').at(0)?.data.transaction;
    if (saved === undefined) return [];
    const live = restoreTransaction(await listTableText(host));
    return [{ action: 'restore-firewall', resource: change.id, transaction: saved, unchanged: saved === live }];
  },

  async apply(step, ctx) {
    if (!step.unchanged) {
      if (ctx.record) await ctx.record.backupState('table', { transaction: restoreTransaction(await listTableText(ctx.host)) } satisfies TableRecord);
      await loadTransaction(ctx.host, step.transaction);
    }
    if (await revertArmed(ctx.host)) await disarmRevert(ctx.host);
  },

  describe: (step) => `  restore the firewall table (one nft transaction)${step.unchanged ? ' - already as before' : ''}`,
};
