import { formatLocation, type Diagnostic } from '../../core/diagnostics.js';
import { HostKitError, isHostKitError } from '../../core/errors.js';
import type { SudoersSpec } from '../../core/specs.js';
import { hasOp, type Change } from '../../diff/model.js';
import type { ExecResult } from '../../hosts/types.js';
import { applyFile, observeFileResources, planFile, publishDigest, verifyFile } from '../shared/managed-file.js';
import type { DesiredFile, FileUndo, ManagedFileOp, ObservedFile } from '../shared/managed-file.js';
import { fileRestore } from '../shared/undo.js';
import type { Driver, DriverContext } from '../types.js';
import { sudoersDefinition } from './definition.js';
import { renderSudoers } from './login.js';
import { SUDOERS_DIR } from './manifest.js';

/** What apply does: `check` (visudo -cf of the new text, under a name sudo ignores) before every write; the file's own operations. */
export type SudoersOp = { op: 'check' } | ManagedFileOp;

type SudoersChange = Change<DesiredFile, ObservedFile, SudoersSpec, SudoersOp>;

/** Where the new text is checked: sudo skips a file in sudoers.d whose name has a `.`. */
export const checkPath = (user: string) => `${SUDOERS_DIR}/.hostkit-${user}.check`;

const ROOT_0440 = { uid: 0, gid: 0, mode: 0o440 };

/**
 * The account's sudo rules: /etc/sudoers.d/hostkit-USER, root's, 0440. The new text is
 * written under a name sudo ignores and checked with `visudo -cf`; only text visudo
 * accepts is written to the real name. Orphans: the file is removed (the rules end).
 */
export const sudoersDriver: Driver<SudoersSpec, DesiredFile, ObservedFile, FileUndo, 'sudoers', void, SudoersOp> = {
  ...sudoersDefinition,

  async desire(resources, ctx) {
    const out = new Map<string, { desired: DesiredFile; diagnostics: Diagnostic[] }>();
    for (const r of resources) {
      const desired: DesiredFile = { path: r.spec.path, content: renderSudoers(r.id, r.spec.user, r.spec.rules), owner: 'root', group: 'root', mode: 0o440 };
      publishDigest(ctx, desired, r.id);
      out.set(r.id, { desired, diagnostics: [] });
    }
    return out;
  },

  observe: (resources, ctx) => observeFileResources(ctx, resources),

  plan({ resource, desired, observed, orphan }) {
    const change: SudoersChange = planFile(resource, desired, observed, { orphan });
    if (orphan || !desired) {
      if (change.action === 'delete') change.reason = 'no manifest declares sudo rules for it any more; the file is removed (its rules end)';
      return change;
    }
    return hasOp(change, 'write') ? { ...change, ops: [{ op: 'check' }, ...change.ops] } : change;
  },

  /**
   * Checks, then writes (atomic). If visudo refuses the text or is missing, this throws
   * and the real file was not touched; the checked copy is removed either way.
   */
  async apply(change, ctx) {
    if (hasOp(change, 'check')) await check(ctx, change);
    const fileOps = change.ops.filter((o): o is ManagedFileOp => o.op !== 'check');
    return applyFile(ctx.host, { ...change, ops: fileOps }, ctx);
  },

  verify: (change, ctx) => verifyFile(ctx, { ...change, ops: change.ops.filter((o): o is ManagedFileOp => o.op !== 'check') }),

  // The previous file from the run journal (or none: removed again).
  restore: fileRestore((change) => change.resource?.spec.path),
};

// visudo -cf on the new text, in sudoers.d under a name sudo ignores, removed again whatever the outcome.
async function check(ctx: DriverContext, change: SudoersChange): Promise<void> {
  const spec = change.resource!.spec;
  const where = `sudo rules of account ${spec.user} (${formatLocation(change.origin)})`;
  const temp = checkPath(spec.user);
  let result: ExecResult;
  try {
    if ((await ctx.host.stat(SUDOERS_DIR))?.type !== 'directory') result = { exitCode: 127, stdout: '', stderr: `${SUDOERS_DIR} does not exist` };
    else {
      await ctx.host.writeFile(temp, change.desired!.content, ROOT_0440, { managed: true });
      result = await ctx.host.exec('visudo', ['-c', '-f', temp], { timeoutMs: 30_000 });
    }
  } catch (cause) {
    if (!isHostKitError(cause) || cause.code !== 'EXEC_FAILED') throw cause;
    result = { exitCode: 127, stdout: '', stderr: cause.message };
  } finally {
    // A remove that fails must not hide why the check failed (the next check overwrites the file).
    await ctx.host.remove(temp, { managed: true }).catch(() => undefined);
  }
  if (result.exitCode === 127 || result.exitCode === 126) {
    const why = `sudo is not installed on this host (${oneLine(result)}); install the package sudo (the Host's spec.packages). Nothing was installed`;
    throw new HostKitError('VISUDO_MISSING', `${where}: ${why}`, {
      data: { user: spec.user, resourceId: change.id },
    });
  }
  if (result.exitCode !== 0) {
    throw new HostKitError('SUDOERS_REFUSED', `${where}: visudo -cf refused them: ${oneLine(result)}. Nothing was installed`, {
      data: { user: spec.user, resourceId: change.id, location: change.origin },
    });
  }
}

const oneLine = (r: ExecResult) =>
  (r.stderr || r.stdout)
    .trim()
    .split('\n')
    .filter((l) => !/parsed OK$/.test(l))
    .slice(0, 5)
    .join('; ') || `exit ${r.exitCode}`;
