import { error, type Diagnostic } from '../../core/diagnostics.js';
import type { DirectorySpec } from '../../core/specs.js';
import { changeBase, diffFields, octal, refusedChange, type Change } from '../../diff/model.js';
import type { FileType } from '../../hosts/types.js';
import { ensureParents } from '../shared/managed-file.js';
import { symlinkedAncestor, symlinkRefusal } from '../shared/paths.js';
import type { Driver, WithManifests } from '../types.js';
import type { directoryPrimitive } from './manifest.js';
import { directoryDefinition } from './definition.js';
import { directoryRestore } from './restore.js';

export interface ObservedDirectory {
  type: FileType;
  owner: string;
  group: string;
  mode: number;
  /** A directory on the way to the path is a symlink (the path itself was not looked at). */
  symlinkedParent?: string;
}

/** What apply does: create the directory (and missing parents) with its ownership, or only chown/chmod it (one setOwnership call for both). */
export type DirectoryOp = { op: 'create' } | { op: 'chown' } | { op: 'chmod' };

export interface DirectoryUndo {
  /** Directories apply created (the target and missing parents), outermost first. */
  created: string[];
  previous?: { uid: number; gid: number; mode: number };
}

// Directories with owner, group and mode. A directory HostKit created whose
// manifest is gone is reported as an orphan and kept: it may hold data.
export const directoryDriver: Driver<DirectorySpec, DirectorySpec, ObservedDirectory, DirectoryUndo, 'directory', void, DirectoryOp> &
  WithManifests<typeof directoryPrimitive> = {
  ...directoryDefinition,

  async desire(resources) {
    return new Map(resources.map((r) => [r.id, { desired: r.spec, diagnostics: [] as Diagnostic[] }]));
  },

  async observe(resources, ctx) {
    const users = await ctx.run.users.get();
    const out = new Map<string, ObservedDirectory>();
    const seen = new Map<string, Promise<string | undefined>>();
    await Promise.all(
      resources.map(async (r) => {
        const symlinkedParent = await symlinkedAncestor(ctx.host, r.spec.path, seen);
        if (symlinkedParent) {
          out.set(r.id, { type: 'other', owner: '', group: '', mode: 0, symlinkedParent });
          return;
        }
        const st = await ctx.host.stat(r.spec.path);
        if (st) out.set(r.id, { type: st.type, owner: users.userName(st.uid), group: users.groupName(st.gid), mode: st.mode });
      }),
    );
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = { ...changeBase(resource), disruptive: false };
    if (observed?.symlinkedParent) return refusedChange(base, symlinkRefusal(resource.spec.path, observed.symlinkedParent, resource.origin), desired);
    if (orphan || !desired) {
      return {
        ...base,
        action: 'noop',
        fields: [],
        ops: [],
        orphan: observed !== undefined,
        reason: observed ? 'no manifest declares it any more; kept (it may hold data)' : 'already removed',
      };
    }
    if (observed && observed.type !== 'directory') {
      const refusal = error(
        'path is not a directory',
        `${desired.path} exists on the host as a ${observed.type}; HostKit will not replace it`,
        resource.origin,
      );
      return refusedChange(base, refusal, desired, observed);
    }
    const fields = diffFields(desired, observed, ['owner', 'group', 'mode'], (k, v) => (k === 'mode' ? octal(v) : v));
    const action = !observed ? 'create' : fields.length > 0 ? 'update' : 'noop';
    const ops: DirectoryOp[] = !observed
      ? [{ op: 'create' }]
      : [
          ...(observed.owner !== desired.owner || observed.group !== desired.group ? [{ op: 'chown' as const }] : []),
          ...(observed.mode !== desired.mode ? [{ op: 'chmod' as const }] : []),
        ];
    return { ...base, action, fields, ops, desired, ...(observed ? { observed } : {}) } as Change<DirectorySpec, ObservedDirectory, DirectorySpec, DirectoryOp>;
  },

  // If this throws after creating parents, they are listed in no undo: rollback of earlier
  // changes is unaffected and the empty parents are harmless; the target keeps its old owner/mode.
  async apply(change, ctx) {
    const desired = change.desired!;
    const users = await ctx.run.users.get();
    const ownership = { uid: users.uid(desired.owner), gid: users.gid(desired.group), mode: desired.mode };
    const st = await ctx.host.stat(desired.path);
    if (st) {
      // chown, chmod, or a create of one made since the plan: each ends with the desired ownership (one call).
      if (change.ops.length > 0) await ctx.host.setOwnership(desired.path, ownership, { managed: true });
      return { created: [], previous: { uid: st.uid, gid: st.gid, mode: st.mode } };
    }
    const created = await ensureParents(ctx.host, desired.path);
    await ctx.host.mkdir(desired.path, ownership, { managed: true });
    return { created: [...created, desired.path] };
  },

  async verify(change, ctx) {
    const observed = (await this.observe([change.resource!], ctx)).get(change.id);
    const again = this.plan({ resource: change.resource!, desired: change.desired, observed, orphan: false });
    return again.action === 'noop' && again.diagnostics.length === 0
      ? []
      : [
          error(
            'verification failed',
            `${change.desired!.path} is not as applied: ${again.fields.map((f) => f.field).join(', ') || again.action}`,
            change.origin,
          ),
        ];
  },

  // A directory it created stays (it may hold data); ownership it changed comes back (restore.ts).
  restore: directoryRestore,
};
