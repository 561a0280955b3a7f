import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { parseDuration } from '../../core/duration.js';
import { errorMessage, HostKitError, isHostKitError } from '../../core/errors.js';
import type { FirewallSpec } from '../../core/specs.js';
import { changeBase, hasOp, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import { describeExec } from '../../hosts/types.js';
import { unifiedDiff } from '../shared/text-diff.js';
import { verifyUnitFile } from '../shared/unit-files.js';
import type { Driver, DriverContext, WithManifests } from '../types.js';
import type { firewallRulesPrimitive } from './manifest.js';
import {
  BOOT_UNIT,
  bootDifferences,
  bootPath,
  describeBoot,
  hasBoot,
  NO_BOOT,
  readBoot,
  renderBootFile,
  renderBootUnit,
  sameBoot,
  statePath,
  syncBoot,
  type BootState,
} from './boot.js';
import { desiredTable } from './desired.js';
import { TABLE_REF, tableLines, type Table } from './model.js';
import { armRevert, checkTransaction, disarmRevert, listTableText, loadTransaction, readTable, revertArmed, REVERT_UNIT } from './nft.js';
import { DELETE_TRANSACTION, renderTransaction, REPLACE_HEADER } from './render.js';
import { writeRootFile } from '../../hosts/root-files.js';
import { firewallDefinition } from './definition.js';
import { firewallRestore } from './restore.js';

export interface DesiredFirewall {
  table: Table;
  /** The table as normalized lines (model.ts tableLines): what plan compares and diffs. */
  lines: string[];
  /** The nft file that replaces the table in one transaction. */
  transaction: string;
  /** How long a change may stay unconfirmed before the previous table comes back by itself. */
  confirmTimeoutMs: number;
  /** The boot copy once this table is confirmed: the transaction in STATE/firewall/confirmed.nft, the unit, enabled. */
  boot: BootState;
  /** Set when the spec could not be rendered safely: the plan then carries an error and is never applied. */
  refused?: string;
}

export interface LiveTable {
  table: Table;
  lines: string[];
}

/**
 * The live table (absent: none) and the boot copy, or (dry runs only) why they
 * could not be read. Neither a table nor any of the boot copy: no entry.
 */
export type ObservedFirewall = { live?: LiveTable; boot: BootState } | { unreadable: string };

export interface FirewallUndo {
  /** The nft transaction that puts back the table as it was before this run (or removes it); absent when this apply left the table alone. */
  restore?: string;
  /** A timed revert was armed by this apply and is cancelled only once the change is confirmed. */
  armed: boolean;
  /** The boot copy as it was before this run; `changed` once this run began to change it. */
  boot: { before: BootState; changed: boolean };
}

export interface ConfirmInput {
  desired: DesiredFirewall;
  /** The file the timed revert will load (the previous table). */
  revertFile: string;
}

/**
 * The commit-confirmed check, run after the new table is live and before the
 * timed revert is cancelled. Returns what is wrong ([] = confirmed); must not
 * change the host. A check that throws counts as failed.
 */
export type ConfirmCheck = (ctx: DriverContext, input: ConfirmInput) => Promise<string[]>;

export interface NftablesDriverOptions {
  /** Defaults to confirmFirewall. */
  confirm?: ConfirmCheck;
  /** Test seam: rewrite the rendered transaction (e.g. into one nft rejects). Never set outside tests. */
  rewriteTransaction?: (transaction: string) => string;
}

export const DEFAULT_CONFIRM_TIMEOUT_MS = 60_000;
const MIN_CONFIRM_TIMEOUT_MS = 2_000;
export const REVERT_FILE = 'nftables-revert.nft';

/**
 * Default check: a fresh `nft -j list table` shows exactly the desired table,
 * and the saved previous table still passes `nft -c` (so the revert would
 * work). Both are new processes on the host, started after the new rules went
 * live: the host still answers the agent.
 */
export const confirmFirewall: ConfirmCheck = async (ctx, { desired, revertFile }) => {
  const problems: string[] = [];
  const live = await readTable(ctx.host);
  if (!live) problems.push(`table ${TABLE_REF} is missing`);
  else if (!sameLines(tableLines(live), desired.lines)) problems.push(`table ${TABLE_REF} is not the one just loaded`);
  const check = await ctx.host.exec('nft', ['-c', '-f', revertFile]);
  if (check.exitCode !== 0) problems.push(`the saved previous table does not load: ${describeExec('nft', ['-c', '-f', revertFile], check)}`);
  return problems;
};

/**
 * What apply and settle do to the firewall: load the table (one `nft -f` transaction, a
 * revert armed until settle confirms it), write its boot copy (settle, once the table is
 * confirmed), or remove the boot copy and then the table.
 */
export type FirewallOp = { op: 'load' } | { op: 'write-boot' } | { op: 'remove' };

/**
 * HostKit's one nftables table, `inet hostkit`, replaced whole in one `nft -f`
 * transaction; no other table is ever read or touched. Changes are
 * commit-confirmed: the previous table is saved and a systemd timer that
 * restores it is armed before the new one goes live, and cancelled only after
 * the confirm check passes (in settle). Only then is the table written to its
 * boot copy (boot.ts), which hostkit-firewall.service loads before the network
 * comes up; removing the firewall removes that too.
 */
export function createNftablesDriver(
  options: NftablesDriverOptions = {},
): Driver<FirewallSpec, DesiredFirewall, ObservedFirewall, FirewallUndo, 'firewall', void, FirewallOp> & WithManifests<typeof firewallRulesPrimitive> {
  const confirm = options.confirm ?? confirmFirewall;
  const rewrite = options.rewriteTransaction ?? ((t: string) => t);

  return {
    ...firewallDefinition,

    async desire(resources, ctx) {
      const out = new Map<string, { desired: DesiredFirewall; diagnostics: Diagnostic[] }>();
      const timeoutText = ctx.hostManifest.spec?.firewall?.confirmTimeout;
      const timeoutMs = timeoutText === undefined ? DEFAULT_CONFIRM_TIMEOUT_MS : parseDuration(timeoutText);
      for (const r of resources) {
        const diagnostics: Diagnostic[] = [];
        if (timeoutMs === undefined) {
          diagnostics.push(error('invalid confirm timeout', `confirmTimeout ${JSON.stringify(timeoutText)} is not a duration like 60s, 2m or 500ms`, r.origin));
        }
        const confirmTimeoutMs = timeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
        if (confirmTimeoutMs < MIN_CONFIRM_TIMEOUT_MS) {
          diagnostics.push(
            warning(
              'confirm timeout short',
              `confirmTimeout ${timeoutText ?? ''} may restore the previous table before the new one is checked; every change may then fail`,
              r.origin,
            ),
          );
        }
        try {
          const { table, notes } = desiredTable(r.spec);
          for (const note of notes) diagnostics.push(warning('network has host bits', note, r.origin));
          const transaction = rewrite(renderTransaction(table));
          const boot = { file: renderBootFile(transaction), unit: renderBootUnit(bootPath(ctx.stateDirectory)), enabled: true };
          out.set(r.id, { desired: { table, lines: tableLines(table), transaction, confirmTimeoutMs, boot }, diagnostics });
        } catch (cause) {
          if (!isHostKitError(cause)) throw cause;
          diagnostics.push(error('firewall not rendered', cause.message, r.origin));
          out.set(r.id, {
            desired: { table: { chains: [], objects: [] }, lines: [], transaction: '', confirmTimeoutMs, boot: NO_BOOT, refused: cause.message },
            diagnostics,
          });
        }
      }
      return out;
    },

    // One `nft -j list table` whatever the number of openings, and the boot copy's
    // files read directly. A dry run on a machine where nft cannot be run (not
    // installed, not root) still plans.
    async observe(resources, ctx) {
      const out = new Map<string, ObservedFirewall>();
      if (resources.length === 0) return out;
      let observed: ObservedFirewall | undefined;
      try {
        const [table, boot] = await Promise.all([readTable(ctx.host), readBoot(ctx.host, bootPath(ctx.stateDirectory))]);
        if (table || hasBoot(boot)) observed = { ...(table ? { live: { table, lines: tableLines(table) } } : {}), boot };
      } catch (cause) {
        if (ctx.mode !== 'plan') throw cause;
        observed = { unreadable: errorMessage(cause) };
      }
      if (observed) for (const r of resources) out.set(r.id, observed);
      return out;
    },

    plan({ resource, desired, observed, orphan }) {
      const base = changeBase(resource);
      type FirewallChange = Change<DesiredFirewall, ObservedFirewall, FirewallSpec, FirewallOp>;
      if (observed && 'unreadable' in observed) {
        return {
          ...base,
          action: orphan || !desired ? 'delete' : 'update',
          ops: orphan || !desired ? [{ op: 'remove' }] : [{ op: 'load' }, { op: 'write-boot' }],
          fields: [{ field: '/table', before: 'unknown', after: orphan || !desired ? 'absent' : `table ${TABLE_REF}` }],
          disruptive: false,
          reason: 'the live table could not be read',
          diagnostics: [warning('firewall not observed', `nft -j list table ${TABLE_REF} failed: ${observed.unreadable}`, resource.origin)],
          observed,
          ...(desired && !orphan ? { desired } : {}),
        } as FirewallChange;
      }
      const live = observed?.live;
      const boot = observed?.boot ?? NO_BOOT;
      if (orphan || !desired) {
        if (!observed) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, reason: 'already removed' } as FirewallChange;
        return {
          ...base,
          action: 'delete',
          ops: [{ op: 'remove' }],
          fields: [
            ...(live ? [{ field: '/table', before: `table ${TABLE_REF}`, diff: unifiedDiff(text(live.lines), '') }] : []),
            ...(hasBoot(boot) ? [{ field: '/boot', before: describeBoot(boot), after: 'absent' }] : []),
          ],
          disruptive: false,
          reason: `no manifest declares a firewall any more: ${live ? 'the table is removed' : 'its boot copy is removed'}`,
          observed,
        } as FirewallChange;
      }
      if (desired.refused !== undefined) return refusedChange(base, { reason: 'not rendered (see the error)' });
      // The boot copy is part of the table's change: one resource, one field.
      const bootFields: FieldChange[] = sameBoot(boot, desired.boot)
        ? []
        : [
            {
              field: '/boot',
              before: bootDifferences(boot, desired.boot),
              after: `${BOOT_UNIT} loads this table at boot`,
              ...(boot.unit !== desired.boot.unit ? { diff: unifiedDiff(boot.unit ?? '', desired.boot.unit!) } : {}),
            },
          ];
      const bootOps: FirewallOp[] = bootFields.length > 0 ? [{ op: 'write-boot' }] : [];
      if (!live) {
        return {
          ...base,
          action: 'create',
          fields: [{ field: '/table', after: `table ${TABLE_REF}`, diff: unifiedDiff('', text(desired.lines)) }, ...bootFields],
          ops: [{ op: 'load' }, ...bootOps],
          disruptive: false,
          reason: 'table missing',
          desired,
          ...(observed ? { observed } : {}),
        } as FirewallChange;
      }
      if (sameLines(live.lines, desired.lines)) {
        if (bootFields.length === 0) return { ...base, action: 'noop', fields: [], ops: [], disruptive: false, desired, observed } as FirewallChange;
        return {
          ...base,
          action: 'update',
          fields: bootFields,
          ops: bootOps,
          disruptive: false,
          reason: 'the table is live; its boot copy is not',
          desired,
          observed,
        } as FirewallChange;
      }
      const fields: FieldChange[] = [];
      const policy = (t: Table) => t.chains.find((c) => c.name === 'input')?.base?.policy;
      if (policy(live.table) !== policy(desired.table)) fields.push({ field: '/input', before: policy(live.table) ?? 'none', after: policy(desired.table) });
      fields.push({ field: '/rules', diff: unifiedDiff(text(live.lines), text(desired.lines)) }, ...bootFields);
      const { added, removed } = countLines(live.lines, desired.lines);
      return {
        ...base,
        action: 'update',
        fields,
        ops: [{ op: 'load' }, ...bootOps],
        disruptive: false,
        reason: `${added} line(s) to add, ${removed} to remove`,
        desired,
        observed,
      } as FirewallChange;
    },

    // If this throws before `nft -f`, the live table is unchanged and no revert
    // is armed (or the one an interrupted run left stays armed). `nft -f` is one
    // transaction: if it fails, nothing of it was applied. The boot copy is not
    // written here but in settle, once the table is confirmed; a delete removes
    // it here, before the table, and puts it back if the table cannot be removed.
    async apply(change, ctx) {
      const bootFile = bootPath(ctx.stateDirectory);
      const before = await readBoot(ctx.host, bootFile);
      const boot = { before, changed: false };
      if (hasOp(change, 'remove')) {
        const restore = restoreTransaction(await listTableText(ctx.host));
        try {
          boot.changed = true;
          await syncBoot(ctx.host, bootFile, before, NO_BOOT);
          await loadTransaction(ctx.host, DELETE_TRANSACTION);
        } catch (cause) {
          await syncBoot(ctx.host, bootFile, await readBoot(ctx.host, bootFile), before).catch(() => undefined);
          throw cause;
        }
        return { restore, armed: false, boot };
      }
      const desired = change.desired!;
      // Checked before anything changes; an unchanged unit is not checked again.
      if (desired.boot.unit !== before.unit) await verifyUnitFile(ctx, BOOT_UNIT, desired.boot.unit!);
      // Only the boot copy differs: the live table is the confirmed one, unless a revert
      // is still armed for it (a run died before confirming), which this run then confirms.
      if (!hasOp(change, 'load') && !(await revertArmed(ctx.host))) return { armed: false, boot };
      await checkTransaction(ctx.host, desired.transaction);
      const revertFile = revertPath(ctx.stateDirectory);
      // Still armed: an earlier run died before confirming. Its file holds the last
      // confirmed table, which is what must come back, not the unconfirmed live one.
      const pending = await revertArmed(ctx.host);
      const kept = pending ? (await ctx.host.readFile(revertFile))?.toString('utf8') : undefined;
      const restore = kept ?? restoreTransaction(await listTableText(ctx.host));
      if (kept === undefined) await writeRootFile(ctx.host, revertFile, restore);
      if (pending) {
        ctx.log.warn({ resource: change.id, unit: `${REVERT_UNIT}.timer` }, 'an unconfirmed firewall change is pending; keeping its saved table');
        await disarmRevert(ctx.host);
      }
      await armRevert(ctx.host, revertFile, desired.confirmTimeoutMs);
      ctx.log.info({ resource: change.id, unit: `${REVERT_UNIT}.timer`, ms: desired.confirmTimeoutMs }, 'firewall revert armed');
      try {
        await loadTransaction(ctx.host, desired.transaction);
      } catch (cause) {
        // Nothing was applied; an inherited revert stays armed for the unconfirmed table it guards.
        if (!pending) await disarmRevert(ctx.host).catch(() => undefined);
        throw cause;
      }
      return { restore, armed: true, boot };
    },

    // The commit-confirmed step: check the new table, then cancel the revert, then
    // write the boot copy. If this throws, the revert (if any) is still armed, and
    // the run rolls back now, the boot copy with it.
    async settle(items, ctx, phase) {
      if (phase !== 'apply') return;
      for (const { change, undo } of items) {
        if (hasOp(change, 'remove')) continue;
        const desired = change.desired!;
        if (undo.armed) {
          let problems: string[];
          try {
            problems = await confirm(ctx, { desired, revertFile: revertPath(ctx.stateDirectory) });
          } catch (cause) {
            problems = [errorMessage(cause)];
          }
          if (problems.length > 0) {
            throw new HostKitError(
              'FIREWALL_NOT_CONFIRMED',
              `The new firewall table failed its confirm check: ${problems.join('; ')}. ${REVERT_UNIT}.timer restores the previous table within ${desired.confirmTimeoutMs} ms even if this agent cannot reach the host.`,
              { data: { resourceId: change.id, problems }, retryable: true },
            );
          }
          await disarmRevert(ctx.host);
          ctx.log.info({ resource: change.id }, 'firewall confirmed');
        }
        if (!hasOp(change, 'write-boot') || sameBoot(undo.boot.before, desired.boot)) continue;
        undo.boot.changed = true;
        await syncBoot(ctx.host, bootPath(ctx.stateDirectory), undo.boot.before, desired.boot);
        ctx.log.info({ resource: change.id, unit: BOOT_UNIT }, 'firewall boot copy written');
      }
    },

    // Fresh reads: also catches a revert that fired before the change was confirmed.
    async verify(change, ctx) {
      const [live, boot] = await Promise.all([readTable(ctx.host), readBoot(ctx.host, bootPath(ctx.stateDirectory))]);
      if (hasOp(change, 'remove')) {
        const problems = [
          ...(live ? [`table ${TABLE_REF} is still there`] : []),
          ...(hasBoot(boot) ? [`its boot copy is still there: ${describeBoot(boot)}`] : []),
        ];
        return problems.length > 0 ? [error('firewall not removed', problems.join('; '), change.origin)] : [];
      }
      const desired = change.desired!;
      const problems: Diagnostic[] = [];
      if (!sameBoot(boot, desired.boot)) problems.push(error('firewall boot copy not as desired', bootDifferences(boot, desired.boot), change.origin));
      if (!live) return [error('firewall not as desired', `table ${TABLE_REF} is missing after apply`, change.origin), ...problems];
      const lines = tableLines(live);
      if (sameLines(lines, desired.lines)) return problems;
      return [
        error('firewall not as desired', `the live table differs from the applied one:\n${unifiedDiff(text(desired.lines), text(lines))}`, change.origin),
        ...problems,
      ];
    },

    // The saved table, in one transaction, and its boot copy come back from the run journal (restore.ts).
    restore: firewallRestore,
  };
}

export const nftablesDriver = createNftablesDriver();

/** The transaction that restores a saved `nft list table` text, or removes the table when there was none. */
export function restoreTransaction(previous: string | undefined): string {
  return previous === undefined
    ? `# HostKit: table ${TABLE_REF} was absent before the last change\n${DELETE_TRANSACTION}`
    : `# HostKit: table ${TABLE_REF} as it was before the last change\n${REPLACE_HEADER}${previous}`;
}

export function revertPath(stateDirectory: string): string {
  return statePath(stateDirectory, REVERT_FILE, 'the firewall revert file');
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

function text(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function countLines(before: readonly string[], after: readonly string[]): { added: number; removed: number } {
  const counts = new Map<string, number>();
  for (const l of before) counts.set(l, (counts.get(l) ?? 0) + 1);
  let added = 0;
  for (const l of after) {
    const n = counts.get(l) ?? 0;
    if (n > 0) counts.set(l, n - 1);
    else added++;
  }
  const removed = [...counts.values()].reduce((sum, n) => sum + n, 0);
  return { added, removed };
}
