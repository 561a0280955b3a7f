import type { Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import { run } from '../shared/exec.js';
import { UserDb } from '../shared/users.js';
import type { Restore } from '../types.js';
import type { ObservedAccount } from './index.js';

// The undo of an Account change. An account a run created is kept, with its
// inventory entry (files may belong to it by then); one a run changed gets its
// primary group, home, shell and groups back from the run journal (one usermod).

interface AccountRecord {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
}

type AccountStep = { action: 'restore-account'; resource: string; unchanged: boolean } & AccountRecord;

async function current(host: Host, user: string): Promise<AccountRecord | undefined> {
  const db = await UserDb.read(host);
  const u = db.users.get(user);
  return u ? { user, group: db.groupName(u.gid), home: u.home, shell: u.shell, groups: db.memberOf(user) } : undefined;
}

const same = (a: AccountRecord, b: AccountRecord) =>
  a.group === b.group && a.home === b.home && a.shell === b.shell && [...a.groups].sort().join(',') === [...b.groups].sort().join(',');

export const accountRestore: Restore<Change<unknown, ObservedAccount>, AccountRecord, AccountStep> = {
  keeps: 'accounts are kept (they may own files)',

  async backup(change, journal) {
    const o = change.observed;
    if (change.action === 'update' && o?.user) {
      await journal.backupState('previous', { user: o.user, group: o.group, home: o.home, shell: o.shell, groups: o.groups } satisfies AccountRecord);
    }
  },

  async plan(change, host) {
    const steps: AccountStep[] = [];
    for (const { key, data } of change.records) {
      if (key !== 'previous') continue;
      const now = await current(host, data.user);
      if (!now) continue; // gone since: nothing to put back
      steps.push({ action: 'restore-account', resource: change.id, ...data, unchanged: same(now, data) });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.unchanged) return;
    const now = await current(ctx.host, step.user);
    if (ctx.record && now) await ctx.record.backupState('previous', now);
    await run(ctx.host, 'usermod', ['--gid', step.group, '--home', step.home, '--shell', step.shell, '--groups', step.groups.join(','), step.user]);
  },

  describe: (step) =>
    `  usermod ${step.user}: group ${step.group}, home ${step.home}, shell ${step.shell}, groups ${step.groups.join(',') || '(none)'}${step.unchanged ? ' - already as before' : ''}`,
};
