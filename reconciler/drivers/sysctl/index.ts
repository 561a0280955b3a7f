import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { HostKitError, errorMessage } from '../../core/errors.js';
import { hasOp, type Change, type FieldChange } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import {
  applyFile,
  observeFileResources,
  planFile,
  rollbackFile,
  type DesiredFile,
  type FileUndo,
  type ManagedFileOp,
  type ObservedFile,
} from '../shared/managed-file.js';
import { recordWritten } from '../shared/owned.js';
import type { Driver, WithManifests } from '../types.js';
import { parameterField, type sysctlPrimitive } from './manifest.js';
import type { SysctlSpec } from './spec.js';
import { loadFile, readLive, sameValue, writeValues } from './sysctl.js';
import { sysctlDefinition } from './definition.js';
import { sysctlRestore } from './restore.js';

/** The file as written (root's, 0644) and the values it sets. */
export interface DesiredSysctl extends DesiredFile {
  parameters: Record<string, string>;
}

export interface ObservedSysctl {
  /** The file in /etc/sysctl.d; undefined when there is none. */
  file?: ObservedFile;
  /** Live values of the desired keys (as `sysctl` prints them). */
  live: Record<string, string>;
  /** Keys `sysctl` could not read, with what it said. */
  problems: Record<string, string>;
  /** A dry run (possibly not as root): an unreadable value is a warning there, not an error. */
  dryRun?: boolean;
}

/** What rollback puts back: the file's previous bytes, and the values the kernel had before apply. */
export interface SysctlUndo {
  file: FileUndo;
  live: Record<string, string>;
}

/**
 * What apply does: the file's operations (write it, chown or chmod it, or remove it), then
 * `sysctl --load` of it where the file has new values or the kernel's differ.
 */
export type SysctlOp = ManagedFileOp | { op: 'load' };

type SysctlChange = Change<DesiredSysctl, ObservedSysctl, SysctlSpec, SysctlOp>;

function render(resourceId: string, parameters: Record<string, string>): string {
  const lines = Object.entries(parameters).map(([k, v]) => `${k} = ${v}`);
  return `# Written by HostKit (${resourceId}); a change here is undone on its next run.\n${lines.join('\n')}\n`;
}

// The file part of a change, as the managed-file helpers take it.
function fileChange(change: SysctlChange): Change<DesiredFile, ObservedFile, unknown, ManagedFileOp> {
  const { desired, observed, ops, ...rest } = change;
  const fileOps = ops.filter((o): o is ManagedFileOp => o.op !== 'load');
  return { ...rest, ops: fileOps, ...(desired ? { desired } : {}), ...(observed?.file ? { observed: observed.file } : {}) };
}

// Values the kernel has that differ from the desired ones (keys it cannot read are diagnostics instead).
function liveFields(desired: DesiredSysctl, observed: ObservedSysctl): FieldChange[] {
  const fields: FieldChange[] = [];
  for (const [key, value] of Object.entries(desired.parameters)) {
    const live = observed.live[key];
    if (live !== undefined && !sameValue(live, value)) fields.push({ field: `/parameters/${key}`, before: live, after: value });
  }
  return fields;
}

/**
 * Kernel parameters: one file per Sysctl manifest in /etc/sysctl.d (read at every
 * boot by systemd-sysctl), applied now with `sysctl --load FILE`. A key the kernel
 * lacks is a plan error. Orphans: the file is removed, the values stay as they are
 * until the next boot (there is no "default" to go back to).
 */
export const sysctlDriver: Driver<SysctlSpec, DesiredSysctl, ObservedSysctl, SysctlUndo, 'sysctl', void, SysctlOp> & WithManifests<typeof sysctlPrimitive> = {
  ...sysctlDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredSysctl; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const content = render(r.id, r.spec.parameters);
      recordWritten(ctx, r.id, r.spec.path, content);
      out.set(r.id, { desired: { path: r.spec.path, content, owner: 'root', group: 'root', mode: 0o644, parameters: r.spec.parameters }, diagnostics: [] });
    }
    return out;
  },

  // The files, and every resource's live values in one `sysctl` process.
  async observe(resources, ctx) {
    const files = await observeFileResources(ctx, resources);
    const live = await readLive(ctx.host, [...new Set(resources.flatMap((r) => Object.keys(r.spec.parameters)))]);
    const out = new Map<string, ObservedSysctl>();
    for (const r of resources) {
      const observed: ObservedSysctl = { live: {}, problems: {}, ...(ctx.mode === 'plan' ? { dryRun: true } : {}) };
      const file = files.get(r.id);
      if (file) observed.file = file;
      for (const key of Object.keys(r.spec.parameters)) {
        if (key in live.values) observed.live[key] = live.values[key]!;
        else observed.problems[key] = live.problems[key] ?? 'not read';
      }
      out.set(r.id, observed);
    }
    return out;
  },

  plan({ resource, desired, observed, orphan }) {
    const { desired: _file, observed: _observedFile, ...base } = planFile(resource, orphan ? undefined : desired, observed?.file, { orphan });
    const change: SysctlChange = { ...base, ...(desired && !orphan ? { desired } : {}), ...(observed ? { observed } : {}) };
    if (orphan || !desired) {
      if (change.action === 'delete') change.reason = 'no manifest declares it any more; the live values stay as they are until the next boot';
      return change;
    }
    if (change.diagnostics.length > 0) return change;
    const problems = Object.entries(observed?.problems ?? {}).map(([key, said]) => {
      const at = resource.fieldOrigins?.[parameterField(key)] ?? resource.origin;
      // A key the kernel lacks cannot be set; one a dry run may not read can.
      return /permission denied/.test(said) && observed?.dryRun
        ? warning('sysctl value unreadable', `${key}: its live value cannot be read here (${said}); whether it changes is not known`, at)
        : error('unknown kernel parameter', `${key} cannot be read on this host: ${said}; check the name (sysctl -a lists them)`, at);
    });
    const live = observed ? liveFields(desired, observed) : [];
    const fields = [...change.fields, ...live];
    const action = change.action === 'create' ? 'create' : fields.length > 0 ? 'update' : 'noop';
    // The kernel takes the values when the file has new ones or its live values differ (not for a chmod).
    const ops: SysctlOp[] = [...change.ops, ...(hasOp(change, 'write') || live.length > 0 ? [{ op: 'load' as const }] : [])];
    return { ...change, action, fields, ops, diagnostics: problems };
  },

  /**
   * Writes the file, then `sysctl --load` it. If the load fails (a key refused,
   * e.g. read-only in a container), the previous file and the values read just
   * before are put back before the error is thrown: the host is as before.
   */
  async apply(change, ctx) {
    const spec = change.resource!.spec;
    if (!hasOp(change, 'load')) return { file: await applyFile(ctx.host, fileChange(change), ctx), live: {} };
    const before = await readLive(ctx.host, Object.keys(spec.parameters));
    const file = await applyFile(ctx.host, fileChange(change), ctx);
    try {
      await loadFile(ctx.host, spec.path);
    } catch (cause) {
      try {
        await restore(ctx.host, change, { file, live: before.values });
      } catch (again) {
        throw new HostKitError(
          'COMMAND_FAILED',
          `${errorMessage(cause)}; putting back ${spec.path} and the previous values also failed: ${errorMessage(again)}`,
          {
            cause,
            data: { resourceId: change.id },
          },
        );
      }
      throw cause;
    }
    return { file, live: before.values };
  },

  // One `sysctl` for the values; the file is read again.
  async verify(change, ctx) {
    const spec = change.resource!.spec;
    const observed = (await sysctlDriver.observe([change.resource!], ctx)).get(change.id)!;
    if (hasOp(change, 'remove')) return observed.file ? [error('verification failed', `${spec.path} still exists after it was removed`, change.origin)] : [];
    const again = sysctlDriver.plan({ resource: change.resource!, desired: change.desired, observed, orphan: false });
    if (again.action === 'noop' && again.diagnostics.length === 0) return [];
    const what = [...again.fields.map((f) => f.field), ...again.diagnostics.map((d) => d.detail)].join(', ');
    return [error('verification failed', `${spec.path} or the live values differ from what was applied: ${what}`, change.origin)];
  },

  // The previous file and the previous live values, from the run journal (restore.ts).
  restore: sysctlRestore,
};

// The previous file (or none), then the values the kernel had before apply.
async function restore(host: Host, change: SysctlChange, undo: SysctlUndo): Promise<void> {
  await rollbackFile(host, fileChange(change), undo.file);
  await writeValues(host, undo.live);
}

export type { SysctlSpec } from './spec.js';
