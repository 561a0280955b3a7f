import path from 'node:path';
import { error, type Diagnostic } from '../../core/diagnostics.js';
import { HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import type { AuthorizedKeysSpec } from '../../core/specs.js';
import { hasOp, octal, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import type { FileType, Host } from '../../hosts/types.js';
import {
  applyFile,
  observeFileResources,
  planFile,
  publishDigest,
  type DesiredFile,
  type FileUndo,
  type ManagedFileOp,
  type ObservedFile,
  ensureParents,
} from '../shared/managed-file.js';
import type { UserDb } from '../shared/users.js';
import type { Driver, DriverContext } from '../types.js';
import { authorizedKeysDefinition } from './definition.js';
import { renderKeys } from './login.js';
import { keysRestore } from './restore.js';

/** A directory on the way to the keys: what sshd's StrictModes looks at. */
export interface ObservedDir {
  type: FileType;
  owner: string;
  group: string;
  mode: number;
}

export interface ObservedKeys {
  /** HOME/.ssh/authorized_keys (its text only when HostKit wrote those bytes: managed-file.ts). */
  file?: ObservedFile;
  home?: ObservedDir;
  sshDir?: ObservedDir;
}

/**
 * What apply does: create the home (the account's, 0700) when it is missing, create or
 * set the account's .ssh directory (0700), then the file's own operations (write it with
 * 0600 and the account's ownership, chown or chmod it, or remove it when orphaned).
 */
export type KeysOp = { op: 'home' } | { op: 'ssh-directory' } | ManagedFileOp;

type KeysChange = Change<DesiredFile, ObservedKeys, AuthorizedKeysSpec, KeysOp>;

const sshDirOf = (spec: AuthorizedKeysSpec) => path.posix.dirname(spec.path);

// sshd (StrictModes) ignores the keys when the home is not the account's or root's, or others may write it.
function homeProblem(home: ObservedDir, user: string): string | undefined {
  if (home.type !== 'directory') return `it is a ${home.type}, not a directory`;
  if (home.owner !== user && home.owner !== 'root') return `it is owned by ${home.owner}, not by ${user} or root`;
  if ((home.mode & 0o022) !== 0) return `its mode ${octal(home.mode)} lets its group or others write it`;
  return undefined;
}

async function observeDir(host: Host, p: string, users: UserDb): Promise<ObservedDir | undefined> {
  const st = await host.stat(p);
  return st ? { type: st.type, owner: users.userName(st.uid), group: users.groupName(st.gid), mode: st.mode } : undefined;
}

// The file part of a change, as the managed-file helpers take it.
function fileChange(change: KeysChange): Change<DesiredFile, ObservedFile, unknown, ManagedFileOp> {
  const { desired, observed, ops, ...rest } = change;
  const fileOps = ops.filter((o): o is ManagedFileOp => o.op !== 'home' && o.op !== 'ssh-directory');
  return { ...rest, ops: fileOps, ...(desired ? { desired } : {}), ...(observed?.file ? { observed: observed.file } : {}) };
}

/**
 * The account's SSH keys: HOME/.ssh/authorized_keys, which HostKit owns once declared
 * (the list replaces the file, as Ansible's `exclusive` does). The file is 0600 and the
 * .ssh directory 0700, both the account's; a home that sshd would refuse is a plan error
 * (HostKit never changes a home it did not create). Orphans: the file is removed, the
 * logins it allowed end; the .ssh directory stays.
 */
export const authorizedKeysDriver: Driver<AuthorizedKeysSpec, DesiredFile, ObservedKeys, FileUndo, 'authorizedkeys', void, KeysOp> = {
  ...authorizedKeysDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredFile; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const desired: DesiredFile = { path: r.spec.path, content: renderKeys(r.id, r.spec.keys), owner: r.spec.user, group: r.spec.group, mode: 0o600 };
      publishDigest(ctx, desired, r.id);
      out.set(r.id, { desired, diagnostics: [] });
    }
    return out;
  },

  // The files (read only through no symlink), and a stat of each home and .ssh directory.
  async observe(resources, ctx) {
    const files = await observeFileResources(ctx, resources);
    const users = await ctx.run.users.get();
    const out = new Map<string, ObservedKeys>();
    for (const r of resources) {
      const file = files.get(r.id);
      const home = await observeDir(ctx.host, r.spec.home, users);
      const sshDir = home?.type === 'directory' ? await observeDir(ctx.host, sshDirOf(r.spec), users) : undefined;
      out.set(r.id, { ...(file ? { file } : {}), ...(home ? { home } : {}), ...(sshDir ? { sshDir } : {}) });
    }
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const { desired: _d, observed: _o, ...base } = planFile(resource, orphan ? undefined : desired, observed?.file, { orphan });
    const change: KeysChange = { ...base, ...(desired && !orphan ? { desired } : {}), ...(observed ? { observed } : {}) };
    if (orphan || !desired) {
      if (change.action === 'delete')
        change.reason = 'no manifest declares keys for it any more; the file HostKit wrote is removed (the logins it allowed end)';
      return change;
    }
    if (change.diagnostics.length > 0) return change;
    const spec = resource.spec;
    const problem = observed?.home ? homeProblem(observed.home, spec.user) : undefined;
    if (problem) {
      const why = `sshd (StrictModes) ignores the keys of account ${spec.user}: its home ${spec.home} is not safe (${problem}); HostKit does not change a home it did not create`;
      return refusedChange(base, error('home not safe for sshd', why, resource.origin), desired, observed);
    }
    const sshDir = observed?.sshDir;
    if (sshDir && sshDir.type !== 'directory') {
      const why = `${sshDirOf(spec)} exists on the host as a ${sshDir.type}; HostKit will not replace it`;
      return refusedChange(base, error('path is not a directory', why, resource.origin), desired, observed);
    }
    const fields: FieldChange[] = [];
    const ops: KeysOp[] = [];
    if (!observed?.home) {
      fields.push({ field: '/home', after: `${spec.home} (${spec.user}:${spec.group} 0700)` });
      ops.push({ op: 'home' });
    }
    const wanted = `${spec.user}:${spec.group} 0700`;
    const now = sshDir ? `${sshDir.owner}:${sshDir.group} ${octal(sshDir.mode)}` : undefined;
    if (now !== wanted) {
      fields.push({ field: '/sshDirectory', ...(now ? { before: now } : {}), after: wanted });
      ops.push({ op: 'ssh-directory' });
    }
    const all = [...fields, ...change.fields];
    const action = change.action === 'create' ? 'create' : all.length > 0 ? 'update' : 'noop';
    return { ...change, action, fields: all, ops: [...ops, ...change.ops] };
  },

  /**
   * The home (only when missing), the .ssh directory, then the file (atomic). If this
   * throws, the file has its previous bytes; a home or .ssh directory made here is in
   * the run journal (restore.ts), and the run's rollback removes it again while empty.
   */
  async apply(change, ctx) {
    const spec = change.resource!.spec;
    if (!hasOp(change, 'remove')) await prepareDirectories(ctx, spec, change.origin);
    return applyFile(ctx.host, fileChange(change), ctx);
  },

  async verify(change, ctx) {
    const observed = (await authorizedKeysDriver.observe([change.resource!], ctx)).get(change.id)!;
    if (hasOp(change, 'remove'))
      return observed.file ? [error('verification failed', `${change.resource!.spec.path} still exists after it was removed`, change.origin)] : [];
    const again = authorizedKeysDriver.plan({ resource: change.resource!, desired: change.desired, observed, orphan: false });
    if (again.action === 'noop' && again.diagnostics.length === 0) return [];
    const what = [...again.fields.map((f) => f.field), ...again.diagnostics.map((d) => d.detail)].join(', ');
    return [error('verification failed', `the keys of ${change.resource!.spec.user} differ from what was written: ${what}`, change.origin)];
  },

  // The previous file from the run journal; a home or .ssh made for it goes once empty; .ssh's ownership comes back.
  restore: keysRestore,
};

// The home as sshd wants it (created when missing), and .ssh: the account's, 0700. Checked again here:
// at plan time the home may not have existed yet (a Directory of the same run).
async function prepareDirectories(ctx: DriverContext, spec: AuthorizedKeysSpec, origin?: Resource['origin']): Promise<void> {
  const users = await ctx.run.users.get();
  const own = { uid: users.uid(spec.user), gid: users.gid(spec.group), mode: 0o700 };
  const home = await observeDir(ctx.host, spec.home, users);
  if (!home) {
    await ensureParents(ctx.host, spec.home);
    await ctx.host.mkdir(spec.home, own, { managed: true });
  } else {
    const problem = homeProblem(home, spec.user);
    if (problem) {
      throw new HostKitError('LOGIN_HOME_UNSAFE', `home ${spec.home} of account ${spec.user} is not safe for sshd (${problem}); no key was written`, {
        data: { user: spec.user, home: spec.home, origin },
      });
    }
  }
  const dir = sshDirOf(spec);
  const st = await ctx.host.stat(dir);
  if (!st) await ctx.host.mkdir(dir, own, { managed: true });
  else if (st.uid !== own.uid || st.gid !== own.gid || st.mode !== own.mode) await ctx.host.setOwnership(dir, own, { managed: true });
}
