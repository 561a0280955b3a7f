import { error, type Diagnostic } from '../../core/diagnostics.js';
import type { AccountSpec } from '../../core/specs.js';
import { changeBase, diffFields, hasOp, refusedChange, type Change } from '../../diff/model.js';
import { run } from '../shared/exec.js';
import { inInventory, isProjectLevel, notOwnRefusal } from '../shared/owned.js';
import { UserDb } from '../shared/users.js';
import type { Driver, DriverContext, WithManifests } from '../types.js';
import type { accountPrimitive } from './manifest.js';
import { accountDefinition } from './definition.js';
import { accountRestore } from './restore.js';

export interface ObservedAccount {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
  /** The primary group exists (it may exist without the user). */
  groupExists: boolean;
  /** HostKit created it: its inventory lists the account for the same project (shared/owned.ts). */
  hostkit?: boolean;
}

/** What apply does: create the user (and its group; batched with systemd-sysusers), or set its group, home, shell and groups (usermod). */
export type AccountOp = { op: 'create' } | { op: 'modify' };

export interface AccountUndo {
  createdUser: boolean;
  createdGroup: boolean;
  previous?: ObservedAccount;
  /**
   * Other users (each with its own group) this step created in the same batch.
   * Rollback removes those still present: their own steps may never have run.
   */
  batch?: string[];
}

// What one run wants and saw, so the first account it creates can create all of them.
export interface AccountRun {
  desired: Map<string, AccountSpec>;
  observed: Map<string, ObservedAccount | undefined>;
  batch?: Promise<Set<string>>;
}

// systemd-sysusers line: a system user with a group of its own name, home and shell,
// and an empty GECOS ("-"), as useradd leaves it.
function sysusersLines(a: AccountSpec): string[] {
  return [`u ${a.user} - - ${a.home} ${a.shell}`, ...a.groups.map((g) => `m ${a.user} ${g}`)];
}

// Names systemd-sysusers takes as they are: its config is whitespace-separated.
const PLAIN = /^[A-Za-z0-9_/.:-]+$/;

/**
 * Every account of this run that is wholly new (no user, no group of that name,
 * supplementary groups already present) created by ONE systemd-sysusers process:
 * useradd and groupadd cost two processes and a lock cycle per account. Accounts
 * that need anything else go through shadow-utils one by one.
 */
async function createBatch(ctx: DriverContext, state: AccountRun, db: UserDb): Promise<Set<string>> {
  const fresh = [...state.desired.values()].filter(
    (a) =>
      state.observed.has(a.user) &&
      state.observed.get(a.user) === undefined &&
      a.group === a.user &&
      !db.users.has(a.user) &&
      !db.groups.has(a.group) &&
      a.groups.every((g) => db.groups.has(g)) &&
      [a.user, a.home, a.shell, ...a.groups].every((v) => PLAIN.test(v)),
  );
  if (fresh.length === 0) return new Set();
  const result = await ctx.host.exec('systemd-sysusers', ['--inline', ...fresh.flatMap(sysusersLines)]).catch((cause: unknown) => ({
    exitCode: 127,
    stdout: '',
    stderr: cause instanceof Error ? cause.message : String(cause),
  }));
  const after = await UserDb.read(ctx.host);
  const created = new Set(fresh.filter((a) => after.users.has(a.user)).map((a) => a.user));
  if (result.exitCode !== 0) ctx.log.warn({ error: result.stderr.trim().slice(0, 500) }, 'systemd-sysusers failed; creating accounts one by one');
  return created;
}

// System users and their groups, through the host's useradd/usermod. Orphans are
// reported, never deleted: files on the host may still belong to them.
export const accountDriver: Driver<AccountSpec, AccountSpec, ObservedAccount, AccountUndo, 'account', AccountRun, AccountOp> &
  WithManifests<typeof accountPrimitive> = {
  ...accountDefinition,

  createRun: () => ({ desired: new Map(), observed: new Map() }),

  async desire(resources, _ctx, state) {
    return new Map(
      resources.map((r) => {
        const desired = { ...r.spec, groups: [...r.spec.groups].sort() };
        state.desired.set(desired.user, desired);
        return [r.id, { desired, diagnostics: [] as Diagnostic[] }];
      }),
    );
  },

  async observe(resources, ctx, state) {
    const db = await ctx.run.users.get();
    const out = new Map<string, ObservedAccount>();
    for (const r of resources) {
      const u = db.users.get(r.spec.user);
      if (u) {
        const hostkit = inInventory(ctx.inventory, r);
        out.set(r.id, { user: u.name, group: db.groupName(u.gid), home: u.home, shell: u.shell, groups: db.memberOf(u.name), groupExists: true, hostkit });
      } else if (db.groups.has(r.spec.group)) {
        out.set(r.id, { user: '', group: r.spec.group, home: '', shell: '', groups: [], groupExists: true });
      }
      if (!state.batch) state.observed.set(r.spec.user, out.get(r.id));
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
        ops: [],
        orphan: exists,
        reason: exists ? 'no manifest declares it any more; kept (files may belong to it)' : 'already removed',
      };
    }
    if (exists && observed.hostkit === false && isProjectLevel(resource)) {
      // An account HostKit did not create (www-data, postgres, a person's): a project may not take it over,
      // not even unchanged (the next run would then count it as its own).
      const what = `account ${desired.user} exists on the host and HostKit did not create it for this project; a project manifest may not adopt or change it`;
      return refusedChange(base, notOwnRefusal('account-adopt', what, resource.fieldOrigins?.['user'] ?? resource.origin), desired, observed);
    }
    const fields = diffFields(desired, exists ? observed : undefined, ['group', 'home', 'shell', 'groups']);
    const action = !exists ? 'create' : fields.length > 0 ? 'update' : 'noop';
    const ops: AccountOp[] = action === 'create' ? [{ op: 'create' }] : action === 'update' ? [{ op: 'modify' }] : [];
    return { ...base, action, fields, ops, desired, ...(observed ? { observed } : {}) } as Change<AccountSpec, ObservedAccount, AccountSpec, AccountOp>;
  },

  // If useradd fails after groupadd succeeded, the new group stays and is reported
  // by the error; rollback of this change is not called (it did not complete).
  // The first create of a run creates every wholly new account of the run (createBatch);
  // its undo lists them, so a rollback removes them even if their own steps never ran.
  async apply(change, ctx, state) {
    try {
      return await applyAccount(change.desired!, change.observed, hasOp(change, 'create'), ctx, state);
    } finally {
      ctx.run.users.forget(); // later readers in this run read the accounts again
    }
  },

  async verify(change, ctx, state) {
    const observed = (await this.observe([change.resource!], ctx, state)).get(change.id);
    if (observed) observed.hostkit = true; // this run created or changed it: its inventory entry comes after verify
    const again = this.plan({ resource: change.resource!, desired: change.desired, observed, orphan: false });
    return again.action === 'noop' ? [] : [error('verification failed', `account ${change.desired!.user} is not as applied`, change.origin)];
  },

  // An account it created stays (files may belong to it); settings it changed come back (restore.ts).
  restore: accountRestore,
};

async function applyAccount(d: AccountSpec, o: ObservedAccount | undefined, create: boolean, ctx: DriverContext, state: AccountRun): Promise<AccountUndo> {
  let db = await UserDb.read(ctx.host);
  if (create) {
    const first = state.batch === undefined;
    if (first) state.batch = createBatch(ctx, state, db);
    const batch = await state.batch!;
    if (batch.has(d.user)) {
      return { createdUser: true, createdGroup: true, ...(first ? { batch: [...batch].filter((u) => u !== d.user) } : {}) };
    }
    if (first && batch.size > 0) {
      // This account was not in the batch; the batch must still be undone with this step.
      db = await UserDb.read(ctx.host);
      return { ...(await createOne(ctx, d, db, o)), batch: [...batch] };
    }
  }
  return createOne(ctx, d, db, o);
}

// One account through shadow-utils: groupadd and useradd, or usermod.
async function createOne(ctx: DriverContext, d: AccountSpec, db: UserDb, o: ObservedAccount | undefined): Promise<AccountUndo> {
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
}

export { authorizedKeysDriver, type KeysOp, type ObservedKeys } from './keys.js';
export { sudoersDriver, type SudoersOp } from './sudoers.js';
