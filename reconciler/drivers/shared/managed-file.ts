import { missingParents } from './undo.js';
import { error, type Diagnostic } from '../../core/diagnostics.js';
import type { Resource } from '../../core/resource.js';
import { changeBase, diffFields, hasOp, octal, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import type { FileType, Host } from '../../hosts/types.js';
import type { DriverContext } from '../types.js';
import { UserDb } from './users.js';
import { unifiedDiff } from './text-diff.js';
import { fileDigest } from './inputs.js';
import { recordWritten, shownLive } from './owned.js';
import { symlinkedAncestor, symlinkRefusal } from './paths.js';

/** A file HostKit writes: its bytes and who owns it. */
export interface DesiredFile {
  path: string;
  content: string;
  owner: string;
  group: string;
  mode: number;
  /** The content as it may be shown (secrets replaced); defaults to content. */
  display?: string;
  /** Turns observed content into what may be shown (redacts secrets in it). */
  redactObserved?: (content: string) => string;
}

export interface ObservedFile {
  type: FileType;
  content?: Buffer;
  owner: string;
  group: string;
  mode: number;
  /** The content is HostKit's own last write (drivers/shared/owned.ts): only then may a plan show it. */
  owned?: boolean;
  /** What a plan says of content that is not HostKit's own: size and fingerprint. */
  unowned?: string;
  /** A directory on the way to the path is a symlink (nothing was read through it). */
  symlinkedParent?: string;
}

/**
 * What apply does to a managed file (the file and envfile kinds, sysctl's file): write its
 * bytes with their ownership, or only chown/chmod it (one setOwnership call for both), or
 * remove it. Each of those driver folders names this union as its own.
 */
export type ManagedFileOp = { op: 'write' } | { op: 'chown' } | { op: 'chmod' } | { op: 'remove' };

/** What rollback needs: the bytes and ownership before apply, and the directories apply created. */
export interface FileUndo {
  previous?: { content: Buffer; uid: number; gid: number; mode: number };
  createdDirs: string[];
}

/** Publish the digest of a file's desired bytes, for units whose service reads it and for the inventory. */
export function publishDigest(ctx: DriverContext, desired: DesiredFile, resourceId: string): void {
  ctx.fileDigests.set(desired.path, fileDigest(ctx, desired.content));
  recordWritten(ctx, resourceId, desired.path, desired.content);
}

/** Observe path resources (file, envfile) by id. */
export async function observeFileResources(ctx: DriverContext, resources: readonly Resource<{ path: string }>[]): Promise<Map<string, ObservedFile>> {
  const byPath = await observeFiles(
    ctx.host,
    resources.map((r) => r.spec.path),
    await ctx.run.users.get(),
  );
  const out = new Map<string, ObservedFile>();
  for (const r of resources) {
    const o = byPath.get(r.spec.path);
    if (!o) continue;
    if (o.content) {
      const shown = shownLive(ctx, r.id, r.spec.path, o.content);
      out.set(r.id, shown.owned ? { ...o, owned: true } : { ...o, unowned: shown.summary });
    } else out.set(r.id, o);
  }
  return out;
}

// stat + read of each path, and one read of the user database for owner names. A path
// with a symlink among its directories is not read (a manifest could point it anywhere).
export async function observeFiles(host: Host, paths: readonly string[], known?: UserDb): Promise<Map<string, ObservedFile>> {
  const users = known ?? (await UserDb.read(host));
  const out = new Map<string, ObservedFile>();
  const seen = new Map<string, Promise<string | undefined>>();
  await Promise.all(
    paths.map(async (p) => {
      // The way, the path and its bytes asked at once (one round trip over SSH): a managed read is refused
      // through a symlinked directory and never follows or blocks, so nothing is read that is not used.
      const [symlinkedParent, st, early] = await Promise.all([
        symlinkedAncestor(host, p, seen),
        host.stat(p),
        host.readFile(p, { managed: true }).catch(() => undefined),
      ]);
      if (symlinkedParent) {
        out.set(p, { type: 'other', owner: '', group: '', mode: 0, symlinkedParent });
        return;
      }
      if (!st) return;
      const observed: ObservedFile = { type: st.type, owner: users.userName(st.uid), group: users.groupName(st.gid), mode: st.mode };
      if (st.type === 'file') observed.content = early ?? (await host.readFile(p, { managed: true })) ?? Buffer.alloc(0);
      out.set(p, observed);
    }),
  );
  return out;
}

// Pure: desired vs observed file -> Change. Content differences become a unified diff of the
// displayable (redacted) texts; ownership differences become field changes.
export function planFile<S extends { path: string }>(
  resource: Resource<S>,
  desired: DesiredFile | undefined,
  observed: ObservedFile | undefined,
  options: { orphan: boolean; secret?: boolean },
): Change<DesiredFile, ObservedFile, S, ManagedFileOp> {
  const base = { ...changeBase(resource), disruptive: false };
  const p = (resource.spec as { path: string }).path;
  if (observed?.symlinkedParent) return refusedChange(base, symlinkRefusal(p, observed.symlinkedParent, resource.origin), desired);
  if (observed && observed.type !== 'file') {
    const refusal = error(
      'path is not a file',
      `${p} exists on the host as a ${observed.type}; HostKit will not replace it. Move it away or change the path.`,
      resource.origin,
    );
    return refusedChange(base, refusal, desired, observed);
  }
  if (options.orphan || !desired) {
    if (!observed) return { ...base, action: 'noop', fields: [], ops: [], reason: 'already removed' };
    return { ...base, action: 'delete', fields: [], ops: [{ op: 'remove' }], reason: 'no manifest declares it any more', observed };
  }
  const shownAfter = desired.display ?? desired.content;
  if (!observed) {
    const fields: FieldChange[] = [
      { field: '/content', after: summarizeText(shownAfter), diff: unifiedDiff('', shownAfter), ...(options.secret ? { redacted: true } : {}) },
      ...diffFields(desired, undefined, ['owner', 'group', 'mode'], (k, v) => (k === 'mode' ? octal(v) : v)),
    ];
    return { ...base, action: 'create', fields, ops: [{ op: 'write' }], desired };
  }
  const fields: FieldChange[] = [];
  const before = observed.content ?? Buffer.alloc(0);
  const rewrite = !before.equals(Buffer.from(desired.content, 'utf8'));
  if (rewrite && observed.owned !== true) {
    // Not HostKit's bytes: their size and fingerprint, never their text.
    fields.push({
      field: '/content',
      before: observed.unowned ?? `exists, ${before.length} bytes`,
      after: summarizeText(shownAfter),
      ...(options.secret ? { redacted: true } : {}),
    });
  } else if (rewrite) {
    const beforeText = before.toString('utf8');
    const shownBefore = desired.redactObserved ? desired.redactObserved(beforeText) : beforeText;
    fields.push({
      field: '/content',
      before: summarizeText(shownBefore),
      after: summarizeText(shownAfter),
      diff: unifiedDiff(shownBefore, shownAfter),
      ...(options.secret ? { redacted: true } : {}),
    });
  }
  fields.push(...diffFields(desired, observed, ['owner', 'group', 'mode'], (k, v) => (k === 'mode' ? octal(v) : v)));
  // New bytes are written with their ownership; otherwise only what differs of it is set.
  const ops: ManagedFileOp[] = rewrite
    ? [{ op: 'write' }]
    : [
        ...(observed.owner !== desired.owner || observed.group !== desired.group ? [{ op: 'chown' as const }] : []),
        ...(observed.mode !== desired.mode ? [{ op: 'chmod' as const }] : []),
      ];
  return { ...base, action: fields.length > 0 ? 'update' : 'noop', fields, ops, desired, observed };
}

function summarizeText(text: string): string {
  const lines = text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  return `${lines} line${lines === 1 ? '' : 's'}, ${Buffer.byteLength(text)} bytes`;
}

// Create missing parent directories (root, 0755); return the ones created, outermost first.
export async function ensureParents(host: Host, filePath: string): Promise<string[]> {
  return makeParents(host, await missingParents(host, filePath));
}

// Make the directories missingParents found (root, 0755), outermost first; returns them.
async function makeParents(host: Host, missing: string[]): Promise<string[]> {
  for (const d of missing) await host.mkdir(d, { uid: 0, gid: 0, mode: 0o755 }, { managed: true });
  return missing;
}

/**
 * Write the desired file. If this throws, the target has its previous bytes
 * (writes are atomic) and any parent directory created is listed in the error's
 * undo by rollback being a no-op for them; the caller's rollback removes nothing else.
 */
export async function applyFile(host: Host, change: Change<DesiredFile, ObservedFile, unknown, ManagedFileOp>, ctx?: DriverContext): Promise<FileUndo> {
  const p = (change.resource!.spec as { path: string }).path;
  const undo: FileUndo = { createdDirs: [] };
  // What is there, its bytes and the directories missing on its way, asked at once (one round trip over SSH).
  const [st, early, missing] = await Promise.all([host.stat(p), host.readFile(p, { managed: true }).catch(() => undefined), missingParents(host, p)]);
  if (st?.type === 'file') {
    // Read again when the first read failed: a refusal (a symlink on the way) is thrown from here, as before.
    const content = early ?? (await host.readFile(p, { managed: true })) ?? Buffer.alloc(0);
    undo.previous = { content, uid: st.uid, gid: st.gid, mode: st.mode };
  }
  if (hasOp(change, 'remove')) {
    await host.remove(p, { managed: true });
    return undo;
  }
  const write = hasOp(change, 'write');
  if (!write && !hasOp(change, 'chown') && !hasOp(change, 'chmod')) return undo;
  const desired = change.desired!;
  const users = ctx ? await ctx.run.users.get() : await UserDb.read(host); // the run's copy is read again after any account change
  const ownership = { uid: users.uid(desired.owner), gid: users.gid(desired.group), mode: desired.mode };
  undo.createdDirs = await makeParents(host, missing);
  // A file gone since the plan is written whole, whatever else its operations said.
  if (write || !undo.previous) await host.writeFile(p, desired.content, ownership, { managed: true });
  else await host.setOwnership(p, ownership, { managed: true });
  return undo;
}

export async function verifyFile(ctx: DriverContext, change: Change<DesiredFile, ObservedFile, unknown, ManagedFileOp>): Promise<Diagnostic[]> {
  const p = (change.resource!.spec as { path: string }).path;
  const observed = (await observeFiles(ctx.host, [p], await ctx.run.users.get())).get(p);
  if (hasOp(change, 'remove')) {
    return observed ? [error('verification failed', `${p} still exists after it was removed`, change.origin)] : [];
  }
  const again = planFile(change.resource as Resource<{ path: string }>, change.desired, observed, { orphan: false });
  return again.action === 'noop' && again.diagnostics.length === 0
    ? []
    : [error('verification failed', `${p} differs from what was written: ${again.fields.map((f) => f.field).join(', ')}`, change.origin)];
}

/** Put the previous bytes and ownership back, or remove what apply created. */
export async function rollbackFile(host: Host, change: Change<DesiredFile, ObservedFile>, undo: FileUndo): Promise<void> {
  const p = (change.resource!.spec as { path: string }).path;
  if (undo.previous) {
    await host.writeFile(p, undo.previous.content, { uid: undo.previous.uid, gid: undo.previous.gid, mode: undo.previous.mode }, { managed: true });
  } else {
    await host.remove(p, { managed: true });
  }
  for (const dir of [...undo.createdDirs].reverse()) await host.remove(dir, { managed: true });
}
