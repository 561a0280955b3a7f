import path from 'node:path';
import { hasOp, octal, type Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import { run } from '../shared/exec.js';
import { backupPath, describeRemoveDirectories, planRemoveDirectories, removeDirectories, type RemoveDirectoriesStep } from '../shared/undo.js';
import { UserDb } from '../shared/users.js';
import type { Restore } from '../types.js';
import type { AccountOp, ObservedAccount } from './index.js';
import type { KeysOp, ObservedKeys } from './keys.js';
import type { AccountSpec, AuthorizedKeysSpec } from './spec.js';

// The undo of an Account change. An account a failed or interrupted run created
// goes again (userdel, and its own group): nothing used it yet. One a completed run
// created is kept by `hostkit rollback`, with its inventory entry (files may belong
// to it by then). One a run changed gets its primary group, home, shell and groups
// back from the run journal (one usermod).

interface AccountRecord {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
}

type AccountStep =
  | ({ action: 'restore-account'; resource: string; unchanged: boolean } & AccountRecord)
  | { action: 'remove-account'; resource: string; user: string; group: string };

async function current(host: Host, user: string): Promise<AccountRecord | undefined> {
  const db = await UserDb.read(host);
  const u = db.users.get(user);
  return u ? { user, group: db.groupName(u.gid), home: u.home, shell: u.shell, groups: db.memberOf(user) } : undefined;
}

const same = (a: AccountRecord, b: AccountRecord) =>
  a.group === b.group && a.home === b.home && a.shell === b.shell && [...a.groups].sort().join(',') === [...b.groups].sort().join(',');

export const accountRestore: Restore<Change<unknown, ObservedAccount, unknown, AccountOp>, AccountRecord, AccountStep> = {
  keeps: 'accounts are kept (they may own files)',
  // `plan` removes what an unfinished run created: the accounts a completed run created are the ones kept.

  async backup(change, journal) {
    const o = change.observed;
    if (hasOp(change, 'modify') && o?.user) {
      await journal.backupState('previous', { user: o.user, group: o.group, home: o.home, shell: o.shell, groups: o.groups } satisfies AccountRecord);
    }
  },

  async plan(change, host) {
    const steps: AccountStep[] = [];
    // Created by this run (it planned a create: the account did not exist then), and the run never completed.
    const spec = change.planned?.entry?.spec as Partial<AccountSpec> | undefined;
    if (!change.finished && change.planned?.action === 'create' && spec?.user && (await UserDb.read(host)).users.has(spec.user)) {
      steps.push({ action: 'remove-account', resource: change.id, user: spec.user, group: spec.group ?? spec.user });
    }
    for (const { key, data } of change.records) {
      if (key !== 'previous') continue;
      const now = await current(host, data.user);
      if (!now) continue; // gone since: nothing to put back
      steps.push({ action: 'restore-account', resource: change.id, ...data, unchanged: same(now, data) });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.action === 'remove-account') return removeAccount(ctx.host, step.user, step.group);
    if (step.unchanged) return;
    const now = await current(ctx.host, step.user);
    if (ctx.record && now) await ctx.record.backupState('previous', now);
    await run(ctx.host, 'usermod', ['--gid', step.group, '--home', step.home, '--shell', step.shell, '--groups', step.groups.join(','), step.user]);
  },

  describe: (step) =>
    step.action === 'remove-account'
      ? `  userdel ${step.user} (created by this run, which never completed), and its group ${step.group} if no one else uses it`
      : `  usermod ${step.user}: group ${step.group}, home ${step.home}, shell ${step.shell}, groups ${step.groups.join(',') || '(none)'}${step.unchanged ? ' - already as before' : ''}`,
};

// userdel, then the group if userdel left it (USERGROUPS_ENAB removes a user's own group) and no account uses it.
async function removeAccount(host: Host, user: string, group: string): Promise<void> {
  if ((await UserDb.read(host)).users.has(user)) await run(host, 'userdel', [user]);
  const db = await UserDb.read(host);
  const gid = db.groups.get(group)?.gid;
  if (gid === undefined) return;
  const used = [...db.users.values()].some((u) => u.gid === gid) || db.groups.get(group)!.members.length > 0;
  if (!used) await run(host, 'groupdel', [group]);
}

// The undo of an authorized_keys change: the file from the run journal (its previous
// bytes, or removed again), the home and .ssh directory made for it removed again once
// empty (key `parents`), and the .ssh directory's previous owner and mode.

interface SshDirRecord {
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

type KeysStep = RemoveDirectoriesStep | ({ action: 'restore-ssh-directory'; resource: string; unchanged: boolean } & SshDirRecord);

export const keysRestore: Restore<Change<unknown, ObservedKeys, AuthorizedKeysSpec, KeysOp>, SshDirRecord | { created: string[] }, KeysStep> = {
  async backup(change, journal) {
    const spec = change.resource?.spec;
    if (!spec) return;
    const dir = path.posix.dirname(spec.path);
    const st = await journal.host.stat(dir);
    if (st?.type === 'directory' && hasOp(change, 'ssh-directory'))
      await journal.backupState('ssh-directory', { path: dir, uid: st.uid, gid: st.gid, mode: st.mode } satisfies SshDirRecord);
    await backupPath(journal, spec.path);
  },

  async plan(change, host) {
    const steps: KeysStep[] = await planRemoveDirectories(change as never, host);
    for (const { key, data } of change.records) {
      if (key !== 'ssh-directory' || !('path' in data)) continue;
      const st = await host.stat(data.path);
      if (st?.type !== 'directory') continue; // gone since: nothing to put the ownership on
      steps.push({
        action: 'restore-ssh-directory',
        resource: change.id,
        ...data,
        unchanged: st.uid === data.uid && st.gid === data.gid && st.mode === data.mode,
      });
    }
    return steps;
  },

  async apply(step, ctx) {
    if (step.action === 'remove-directories') return removeDirectories(ctx.host, step);
    if (step.unchanged) return;
    const st = await ctx.host.stat(step.path);
    if (ctx.record && st) await ctx.record.backupState('ssh-directory', { path: step.path, uid: st.uid, gid: st.gid, mode: st.mode } satisfies SshDirRecord);
    await ctx.host.setOwnership(step.path, { uid: step.uid, gid: step.gid, mode: step.mode }, { managed: true });
  },

  describe: (step) =>
    step.action === 'remove-directories'
      ? describeRemoveDirectories(step)
      : `  chown   ${step.path} back to ${step.uid}:${step.gid} ${octal(step.mode)}${step.unchanged ? ' - already as before' : ''}`,
};
