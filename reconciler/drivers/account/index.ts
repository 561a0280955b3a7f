import { error, type Diagnostic } from '../../core/diagnostics.js';
import type { AccountSpec } from '../../core/specs.js';
import { changeBase, diffFields, type Change } from '../../diff/model.js';
import { run } from '../shared/exec.js';
import { UserDb } from '../shared/users.js';
import type { Driver } from '../types.js';

export interface ObservedAccount {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
  /** The primary group exists (it may exist without the user). */
  groupExists: boolean;
}

export interface AccountUndo {
  createdUser: boolean;
  createdGroup: boolean;
  previous?: ObservedAccount;
}

// System users and their groups, through the host's useradd/usermod. Orphans are
// reported, never deleted: files on the host may still belong to them.
export const accountDriver: Driver<AccountSpec, AccountSpec, ObservedAccount, AccountUndo> = {
  kind: 'account',
  orphans: 'report',

  async desire(resources) {
    return new Map(resources.map((r) => [r.id, { desired: { ...r.spec, groups: [...r.spec.groups].sort() }, diagnostics: [] as Diagnostic[] }]));
  },

  async observe(resources, ctx) {
    const db = await UserDb.read(ctx.host);
    const out = new Map<string, ObservedAccount>();
    for (const r of resources) {
      const u = db.users.get(r.spec.user);
      if (u) {
        out.set(r.id, { user: u.name, group: db.groupName(u.gid), home: u.home, shell: u.shell, groups: db.memberOf(u.name), groupExists: true });
      } else if (db.groups.has(r.spec.group)) {
        out.set(r.id, { user: '', group: r.spec.group, home: '', shell: '', groups: [], groupExists: true });
      }
    }
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = { ...changeBase(resource), disruptive: false };
    const exists = observed !== undefined && observed.user !== '';
    if (orphan || !desired) {
      return {
        ...base,
        action: 'noop',
        fields: [],
        orphan: exists,
        reason: exists ? 'no manifest declares it any more; kept (files may belong to it)' : 'already removed',
      };
    }
    const fields = diffFields(desired, exists ? observed : undefined, ['group', 'home', 'shell', 'groups']);
    const action = !exists ? 'create' : fields.length > 0 ? 'update' : 'noop';
    return { ...base, action, fields, desired, ...(observed ? { observed } : {}) } as Change<AccountSpec, ObservedAccount, AccountSpec>;
  },

  // If useradd fails after groupadd succeeded, the new group stays and is reported
  // by the error; rollback of this change is not called (it did not complete).
  async apply(change, ctx) {
    const d = change.desired!;
    const o = change.observed;
    const db = await UserDb.read(ctx.host);
    const undo: AccountUndo = { createdUser: false, createdGroup: false, ...(o?.user ? { previous: o } : {}) };
    if (!db.groups.has(d.group)) {
      await run(ctx.host, 'groupadd', ['--system', d.group]);
      undo.createdGroup = true;
    }
    const groupArgs = d.groups.length > 0 ? ['--groups', d.groups.join(',')] : [];
    if (!db.users.has(d.user)) {
      await run(ctx.host, 'useradd', ['--system', '--gid', d.group, '--home-dir', d.home, '--no-create-home', '--shell', d.shell, ...groupArgs, d.user]);
      undo.createdUser = true;
    } else {
      await run(ctx.host, 'usermod', ['--gid', d.group, '--home', d.home, '--shell', d.shell, '--groups', d.groups.join(','), d.user]);
    }
    return undo;
  },

  async verify(change, ctx) {
    const observed = (await this.observe([change.resource!], ctx)).get(change.id);
    const again = this.plan({ resource: change.resource!, desired: change.desired, observed, orphan: false });
    return again.action === 'noop' ? [] : [error('verification failed', `account ${change.desired!.user} is not as applied`, change.origin)];
  },

  async rollback(change, undo, ctx) {
    const d = change.desired!;
    if (undo.createdUser) await run(ctx.host, 'userdel', [d.user]);
    else if (undo.previous) {
      const p = undo.previous;
      await run(ctx.host, 'usermod', ['--gid', p.group, '--home', p.home, '--shell', p.shell, '--groups', p.groups.join(','), d.user]);
    }
    // userdel may already have removed the user's own group (USERGROUPS_ENAB on Debian).
    if (undo.createdGroup && (await UserDb.read(ctx.host)).groups.has(d.group)) await run(ctx.host, 'groupdel', [d.group]);
  },
};
