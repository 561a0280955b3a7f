import { error, type Diagnostic } from '../../core/diagnostics.js';
import type { Resource } from '../../core/resource.js';
import type { Change, FieldChange } from '../../diff/model.js';
import { applyFile, observeFiles, planFile, type DesiredFile, type FileUndo, type ManagedFileOp, type ObservedFile } from '../shared/managed-file.js';
import { recordWritten, shownLive } from '../shared/owned.js';
import type { Driver, DriverContext } from '../types.js';
import { aptSourceDefinition } from './definition.js';
import { aptSourceRestore } from './restore.js';
import type { AptSourceSpec } from './spec.js';

export type { AptSourceSpec } from './spec.js';

/** The source's deb822 file, and its key file when the key is inline (root's, 0644 both). */
export interface DesiredAptSource {
  sources: DesiredFile;
  key?: DesiredFile;
}

export interface ObservedAptSource {
  sources?: ObservedFile;
  key?: ObservedFile;
}

/** What apply does to each of its two files: a managed file's operation, naming the path. */
export type AptSourceOp = ManagedFileOp & { path: string };

/** The deb822 source: Signed-By names the key file (HostKit's, or the keyring the manifest names). */
export function renderSource(id: string, s: AptSourceSpec): string {
  const lines = [
    `# Written by HostKit (${id}); a change here is undone on its next run.`,
    'Types: deb',
    `URIs: ${s.uris.join(' ')}`,
    `Suites: ${s.suites.join(' ')}`,
    ...(s.components ? [`Components: ${s.components.join(' ')}`] : []),
    ...(s.architectures ? [`Architectures: ${s.architectures.join(' ')}`] : []),
    `Signed-By: ${'path' in s.signedBy ? s.signedBy.path : s.keyPath}`,
  ];
  return lines.join('\n') + '\n';
}

const rootFile = (path: string, content: string): DesiredFile => ({ path, content, owner: 'root', group: 'root', mode: 0o644 });

// One of the resource's two files, as the managed-file helpers take a resource.
function fileResource(r: Resource<AptSourceSpec>, path: string): Resource<{ path: string }> {
  return { ...r, spec: { path } };
}

/**
 * Vendor apt sources: /etc/apt/sources.list.d/hostkit-NAME.sources (deb822), and for an
 * inline key /etc/apt/keyrings/hostkit-NAME.asc, which Signed-By names. A change marks the
 * run's apt lists out of date (ctx.run.apt): the package driver runs `apt-get update`
 * before its next install. Orphans: both files are removed. A restore puts the previous
 * files back from the run journal (or removes what the run created).
 */
export const aptSourceDriver: Driver<AptSourceSpec, DesiredAptSource, ObservedAptSource, FileUndo[], 'aptsource', void, AptSourceOp> = {
  ...aptSourceDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredAptSource; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const sources = rootFile(r.spec.path, renderSource(r.id, r.spec));
      recordWritten(ctx, r.id, sources.path, sources.content);
      const desired: DesiredAptSource = { sources };
      if ('key' in r.spec.signedBy) {
        desired.key = rootFile(r.spec.keyPath, r.spec.signedBy.key.trim() + '\n');
        recordWritten(ctx, r.id, desired.key.path, desired.key.content);
      }
      out.set(r.id, { desired, diagnostics: [] });
    }
    return out;
  },

  // stat + read of both files of every source (a key file may be left from an earlier inline key).
  async observe(resources, ctx) {
    const files = await observeFiles(
      ctx.host,
      resources.flatMap((r) => [r.spec.path, r.spec.keyPath]),
      await ctx.run.users.get(),
    );
    const out = new Map<string, ObservedAptSource>();
    for (const r of resources) {
      const o: ObservedAptSource = {};
      const sources = shown(ctx, r.id, r.spec.path, files.get(r.spec.path));
      const key = shown(ctx, r.id, r.spec.keyPath, files.get(r.spec.keyPath));
      if (sources) o.sources = sources;
      if (key) o.key = key;
      out.set(r.id, o);
    }
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const gone = orphan || !desired;
    const sources = planFile(fileResource(resource, resource.spec.path), gone ? undefined : desired.sources, observed?.sources, { orphan: gone });
    const key = planFile(fileResource(resource, resource.spec.keyPath), gone ? undefined : desired.key, observed?.key, { orphan: gone || !desired.key });
    const ops: AptSourceOp[] = [
      ...key.ops.filter((o) => o.op !== 'remove').map((o) => ({ ...o, path: resource.spec.keyPath })),
      ...sources.ops.map((o) => ({ ...o, path: resource.spec.path })),
      ...key.ops.filter((o) => o.op === 'remove').map((o) => ({ ...o, path: resource.spec.keyPath })),
    ];
    const fields: FieldChange[] = [
      ...sources.fields.map((f) => ({ ...f, field: `/sources${f.field}` })),
      ...key.fields.map((f) => ({ ...f, field: `/key${f.field}` })),
    ];
    const action = gone ? (ops.length > 0 ? 'delete' : 'noop') : sources.action === 'create' ? 'create' : ops.length > 0 ? 'update' : 'noop';
    const diagnostics = [...sources.diagnostics, ...key.diagnostics];
    const refused = diagnostics.some((d) => d.severity === 'error');
    return {
      id: resource.id,
      kind: resource.kind,
      origin: resource.origin,
      resource,
      ...(resource.project ? { project: resource.project } : {}),
      disruptive: false,
      action: refused ? 'noop' : action,
      fields: refused ? [] : fields,
      ops: refused ? [] : ops,
      diagnostics,
      ...(gone ? { reason: sources.reason ?? 'no manifest declares it any more' } : {}),
      ...(desired && !gone ? { desired } : {}),
      ...(observed ? { observed } : {}),
    };
  },

  /**
   * The key first, then the source that names it (each an atomic rename): if this throws
   * part-way, the key may be new and the source old; the run's restore puts both back.
   * The lists apt installs from are out of date from the first write on (ctx.run.apt).
   */
  async apply(change, ctx) {
    ctx.run.apt.changedBy(change.id);
    const undo: FileUndo[] = [];
    for (const path of [...new Set(change.ops.map((o) => o.path))]) {
      const isKey = path === change.resource!.spec.keyPath;
      const desired = isKey ? change.desired?.key : change.desired?.sources;
      const seen = isKey ? change.observed?.key : change.observed?.sources;
      const ops: ManagedFileOp[] = change.ops.filter((o) => o.path === path).map(({ op }) => ({ op }) as ManagedFileOp);
      const { desired: _d, observed: _o, ...rest } = change;
      const one: Change<DesiredFile, ObservedFile, unknown, ManagedFileOp> = {
        ...rest,
        resource: fileResource(change.resource!, path),
        ops,
        ...(desired ? { desired } : {}),
        ...(seen ? { observed: seen } : {}),
      };
      undo.push(await applyFile(ctx.host, one, ctx));
    }
    return undo;
  },

  // Both files as planned, read again (one stat and read each).
  async verify(change, ctx) {
    const r = change.resource!;
    const files = await observeFiles(ctx.host, [r.spec.path, r.spec.keyPath], await ctx.run.users.get());
    const again = aptSourceDriver.plan({
      resource: r,
      desired: change.action === 'delete' ? undefined : change.desired,
      observed: {
        ...(files.get(r.spec.path) ? { sources: files.get(r.spec.path)! } : {}),
        ...(files.get(r.spec.keyPath) ? { key: files.get(r.spec.keyPath)! } : {}),
      },
      orphan: change.action === 'delete',
    });
    if (again.ops.length === 0) return [];
    const what = [...new Set(again.ops.map((o) => o.path))].join(' and ');
    return [error('verification failed', `${what} differ from what was written`, change.origin)];
  },

  restore: aptSourceRestore,
};

// A file as a plan may show it: its text only when the bytes are HostKit's own.
function shown(ctx: DriverContext, id: string, path: string, o: ObservedFile | undefined): ObservedFile | undefined {
  if (!o?.content) return o;
  const live = shownLive(ctx, id, path, o.content);
  return live.owned ? { ...o, owned: true } : { ...o, unowned: live.summary };
}
