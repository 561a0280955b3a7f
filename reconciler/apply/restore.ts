import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import { loadTransaction, disarmRevert, listTableText, revertArmed } from '../drivers/nftables/nft.js';
import { restoreTransaction } from '../drivers/nftables/index.js';
import { readPending, writePending } from '../drivers/systemd/pending.js';
import { runCommand } from '../drivers/command/index.js';
import { describeExec, type Host } from '../hosts/types.js';
import { isNginxPath, isUnitPath, unitRuns } from './backups.js';
import { reload as reloadNginx, testConfig as testNginx } from '../drivers/nginx/nginx.js';
import { inventoryPath, readInventory, writeInventory, type InventoryEntry } from './inventory.js';
import { KEPT, type RunJournal, type PlannedStep, type RunEvent } from './journal.js';
import type { HostSpec } from '../manifests/types.js';
import type { RoleSettings } from '../drivers/postgresql/role.js';

// Down plans: what restores the state before a run, computed from its journal
// and backups, and the code that applies it. The same restore finishes a run
// interrupted by a crash (it is idempotent: restoring bytes twice is harmless,
// and down commands already run are recorded).

export type RestoreStep =
  | { action: 'restore-file'; resource: string; path: string; bytes: number; unchanged: boolean; backup: string; mode: number; uid: number; gid: number }
  | { action: 'remove-file'; resource: string; path: string; unchanged: boolean }
  | { action: 'restore-link'; resource: string; path: string; target: string; unchanged: boolean }
  | { action: 'restore-firewall'; resource: string; backup: string; unchanged: boolean }
  | { action: 'restore-role'; resource: string; role: string; backup: string; postgresql?: HostSpec['postgresql'] }
  | { action: 'run-down'; resource: string; command: string[]; step: PlannedStep }
  | { action: 'skip-irreversible'; resource: string; detail: string }
  | { action: 'keep'; resource: string; detail: string; entry?: InventoryEntry };

export interface RestorePlan {
  run: string;
  commit?: string;
  previousCommit?: string;
  steps: RestoreStep[];
  /** Units restarted (or stopped) once the files are back; `enable`: put back, enabled again, not started (the firewall boot unit). */
  units: { restart: string[]; stop: string[]; enable: string[] };
  /** nginx files (sites, certificates) come back: one `nginx -t` and one reload. */
  reloadNginx: boolean;
}

/** The steps that put back what `journal`'s run changed, newest change first. Reads the host, changes nothing. */
export async function planRestore(journal: RunJournal): Promise<RestorePlan> {
  const host = journal.host;
  const begun = new Set(journal.events.filter((e) => e.ev === 'begin').map((e) => (e as { id: string }).id));
  const applied = new Set(journal.events.filter((e) => e.ev === 'applied').map((e) => (e as { id: string }).id));
  const downDone = new Set(journal.events.filter((e) => e.ev === 'down').map((e) => (e as { id: string }).id));
  const backups = journal.events.filter((e): e is Extract<RunEvent, { ev: 'backup' }> => e.ev === 'backup');
  const steps: RestoreStep[] = [];
  const restart: string[] = [];
  const stop: string[] = [];
  const enable: string[] = [];
  const plannedById = new Map(journal.record.planned.map((p) => [p.id, p]));

  // Changes in reverse order of their start; the inventory (backed up first, under "(inventory)") last.
  const order = journal.events.filter((e) => e.ev === 'begin').map((e) => (e as { id: string }).id);
  const ids = [...new Set([...order].reverse()), '(inventory)'];
  for (const id of ids) {
    const step = plannedById.get(id);
    for (const b of backups.filter((x) => x.id === id)) {
      if (b.target.type === 'firewall') {
        // Already as before (e.g. the commit-confirmed revert timer restored it): no transaction.
        const saved = (await journal.readBackup(b.file!))?.toString('utf8');
        const live = restoreTransaction(await listTableText(host));
        steps.push({ action: 'restore-firewall', resource: id, backup: b.file!, unchanged: saved === live });
        continue;
      }
      if (b.target.type === 'pgrole') {
        // Whether it is as before is asked when it is put back (one query, in the same session).
        const { role, postgresql } = b.target;
        steps.push({ action: 'restore-role', resource: id, role, backup: b.file!, ...(postgresql ? { postgresql } : {}) });
        continue;
      }
      const p = b.target.path;
      if (b.link !== undefined) {
        steps.push({ action: 'restore-link', resource: id, path: p, target: b.link, unchanged: (await host.readlink(p)) === b.link });
        continue;
      }
      const now = await host.readFile(p);
      if (b.absent) {
        steps.push({ action: 'remove-file', resource: id, path: p, unchanged: now === undefined });
        if (isUnitPath(p)) stop.push(path.posix.basename(p));
      } else {
        const before = await journal.readBackup(b.file!);
        if (!before) continue; // the backup itself is missing: nothing trustworthy to restore
        const st = await host.stat(p);
        const unchanged = now !== undefined && now.equals(before) && st?.mode === b.mode && st?.uid === b.uid && st?.gid === b.gid;
        steps.push({
          action: 'restore-file',
          resource: id,
          path: p,
          bytes: before.length,
          unchanged,
          backup: b.file!,
          mode: b.mode!,
          uid: b.uid!,
          gid: b.gid!,
        });
        if (isUnitPath(p) && unitRuns(path.posix.basename(p), before)) restart.push(path.posix.basename(p));
        else if (isUnitPath(p) && /^\[Install\]$/m.test(before.toString('utf8'))) enable.push(path.posix.basename(p));
      }
    }
    if (!step) continue;
    if (step.kind === 'command' && begun.has(id) && step.action !== 'delete') {
      const c = step.command;
      if (c?.irreversible) steps.push({ action: 'skip-irreversible', resource: id, detail: 'declared irreversible: not undone' });
      else if (c?.down && applied.has(id) && !downDone.has(id)) steps.push({ action: 'run-down', resource: id, command: c.down, step });
      else if (!c?.down) steps.push({ action: 'keep', resource: id, detail: 'no down command declared: not undone' });
    } else if (KEPT[step.kind] && begun.has(id) && step.action === 'create') {
      steps.push({ action: 'keep', resource: id, detail: KEPT[step.kind]!, ...(step.entry ? { entry: step.entry } : {}) });
    }
  }
  // A driver may create its resources together when the first of them applies (accounts: one systemd-sysusers),
  // so a kept kind's creates that never began may exist too: kept, and HostKit's, like those that began.
  const beganKinds = new Set([...begun].map((id) => plannedById.get(id)?.kind));
  for (const step of journal.record.planned) {
    if (!begun.has(step.id) && step.action === 'create' && KEPT[step.kind] && beganKinds.has(step.kind)) {
      steps.push({ action: 'keep', resource: step.id, detail: KEPT[step.kind]!, ...(step.entry ? { entry: step.entry } : {}) });
    }
  }
  return {
    run: journal.record.id,
    ...(journal.record.commit ? { commit: journal.record.commit } : {}),
    ...(journal.record.previousCommit ? { previousCommit: journal.record.previousCommit } : {}),
    steps,
    units: { restart: [...new Set(restart)], stop: [...new Set(stop)], enable: [...new Set(enable)] },
    reloadNginx: steps.some((s) => (s.action === 'restore-file' || s.action === 'remove-file') && isNginxPath(s.path)),
  };
}

export interface RestoreResult {
  errors: { resource: string; error: string }[];
  warnings: string[];
}

/**
 * Apply a restore plan: stop units that did not exist before, put files and
 * the firewall table back, run down commands, then one daemon-reload and one
 * restart of the restored units. `record` (the journal of the run doing the
 * restore) backs up each path before it is overwritten; `source` records the
 * down commands that ran, so a repeated restore does not run them twice.
 */
export async function applyRestore(plan: RestorePlan, source: RunJournal, options: { log: Logger; record?: RunJournal }): Promise<RestoreResult> {
  const host = source.host;
  const errors: RestoreResult['errors'] = [];
  const warnings: string[] = [];
  const attempt = async (resource: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (cause) {
      errors.push({ resource, error: errorMessage(cause) });
      options.log.error({ resource, error: errorMessage(cause) }, 'restore step failed');
    }
  };
  for (const unit of plan.units.stop) await host.exec('systemctl', ['disable', '--now', unit]); // best effort: it may not be loaded
  for (const step of plan.steps) {
    switch (step.action) {
      case 'restore-file':
        if (step.unchanged) break;
        await attempt(step.resource, async () => {
          await options.record?.event({ ev: 'begin', id: step.resource });
          await options.record?.backupFile(step.resource, step.path);
          const bytes = await source.readBackup(step.backup);
          if (!bytes) throw new Error(`backup ${step.backup} of ${step.path} is missing`);
          await host.writeFile(step.path, bytes, { mode: step.mode, uid: step.uid, gid: step.gid });
        });
        break;
      case 'remove-file':
        if (step.unchanged) break;
        await attempt(step.resource, async () => {
          await options.record?.event({ ev: 'begin', id: step.resource });
          await options.record?.backupFile(step.resource, step.path);
          await host.remove(step.path);
        });
        break;
      case 'restore-link':
        if (step.unchanged) break;
        await attempt(step.resource, async () => {
          await options.record?.event({ ev: 'begin', id: step.resource });
          await options.record?.backupFile(step.resource, step.path);
          await host.symlink(step.target, step.path);
        });
        break;
      case 'restore-firewall':
        await attempt(step.resource, async () => {
          if (step.unchanged) {
            if (await revertArmed(host)) await disarmRevert(host);
            return;
          }
          const text = (await source.readBackup(step.backup))?.toString('utf8');
          if (text === undefined) throw new Error(`backup ${step.backup} of the firewall table is missing`);
          if (options.record) {
            await options.record.event({ ev: 'begin', id: step.resource });
            const { backupChange } = await import('./backups.js');
            await backupChange(
              options.record,
              { id: step.resource, kind: 'firewall', action: 'update', fields: [], ops: [{ op: 'load' }], disruptive: false, diagnostics: [] },
              undefined,
            );
          }
          await loadTransaction(host, text);
          if (await revertArmed(host)) await disarmRevert(host);
        });
        break;
      case 'restore-role':
        await attempt(step.resource, async () => {
          const saved = (await source.readBackup(step.backup))?.toString('utf8');
          if (saved === undefined) throw new Error(`backup ${step.backup} of role ${step.role}'s settings is missing`);
          await options.record?.event({ ev: 'begin', id: step.resource });
          const { restoreRoleSettings } = await import('./restore-role.js');
          await restoreRoleSettings({
            host,
            stateDirectory: source.stateDirectory,
            log: options.log,
            role: step.role,
            settings: JSON.parse(saved) as RoleSettings,
            postgresql: step.postgresql,
            resource: step.resource,
            ...(options.record ? { record: options.record } : {}),
          });
        });
        break;
      case 'run-down':
        await attempt(step.resource, async () => {
          const c = step.step.command!;
          const result = await runCommand(host, {
            argv: step.command,
            user: c.user,
            workingDirectory: c.workingDirectory,
            ...(c.environmentFile ? { environmentFile: c.environmentFile } : {}),
            ...(c.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}),
            project: c.project,
          });
          await source.event({ ev: 'down', id: step.resource, ok: result.exitCode === 0 });
          if (result.exitCode !== 0) throw new Error(`down command failed: ${describeExec(step.command[0]!, step.command.slice(1), result)}`);
          options.log.info({ resource: step.resource }, 'down command ran');
        });
        break;
      case 'skip-irreversible':
      case 'keep':
        warnings.push(`${step.resource}: ${step.detail}`);
        break;
    }
  }
  // What the restore kept is still HostKit's: the inventory it put back lists it again (else a project could not adopt its own account).
  const kept = plan.steps.flatMap((s) => (s.action === 'keep' && s.entry ? [s.entry] : []));
  if (kept.length > 0) {
    await attempt('(inventory)', async () => {
      await options.record?.backupFile('(inventory)', inventoryPath(source.stateDirectory));
      const inventory = await readInventory(host, source.stateDirectory, source.record.host);
      for (const entry of kept) inventory.resources[entry.id] ??= entry;
      await writeInventory(host, source.stateDirectory, inventory);
    });
  }
  const touchedUnits = plan.units.restart.length > 0 || plan.units.stop.length > 0 || plan.units.enable.length > 0;
  if (touchedUnits) {
    await attempt('(systemd)', async () => {
      // Links only: the daemon-reload below loads them.
      if (plan.units.enable.length > 0) {
        const r = await host.exec('systemctl', ['enable', '--no-reload', '--', ...plan.units.enable]);
        if (r.exitCode !== 0) throw new Error(describeExec('systemctl', ['enable', '--no-reload', '--', ...plan.units.enable], r));
      }
      const reload = await host.exec('systemctl', ['daemon-reload']);
      if (reload.exitCode !== 0) throw new Error(describeExec('systemctl', ['daemon-reload'], reload));
      if (plan.units.restart.length > 0) {
        await host.exec('systemctl', ['enable', '--', ...plan.units.restart]);
        const r = await host.exec('systemctl', ['restart', '--', ...plan.units.restart]);
        if (r.exitCode !== 0) throw new Error(describeExec('systemctl', ['restart', ...plan.units.restart], r));
      }
      const pending = await readPending(host, source.stateDirectory);
      for (const u of [...plan.units.restart, ...plan.units.stop]) pending.delete(u);
      await writePending(host, source.stateDirectory, pending);
    });
  }
  if (plan.reloadNginx) {
    await attempt('(nginx)', async () => {
      const test = await testNginx(host);
      if (!test.ok) throw new Error(`nginx -t rejected the restored configuration; nginx was not reloaded:\n${test.message}`);
      await reloadNginx(host);
    });
  }
  return { errors, warnings };
}

/**
 * Start-up check: a run left open by a process that died (SIGKILL, power loss)
 * is rolled back from its backups before anything new is planned. Returns the
 * run that was recovered, if any.
 */
export async function recoverInterruptedRun(
  host: Host,
  stateDirectory: string,
  log: Logger,
): Promise<{ run: string; plan: RestorePlan; result: RestoreResult } | undefined> {
  const { openRun } = await import('./journal.js');
  const journal = await openRun(host, stateDirectory);
  if (!journal) return undefined;
  log.warn({ run: journal.record.id }, 'an interrupted run was found; rolling it back before anything new is applied');
  const plan = await planRestore(journal);
  const result = await applyRestore(plan, journal, { log });
  // The inventory comes back with the files; a broken one would stop every later run.
  await readInventory(host, stateDirectory, journal.record.host).catch(async () => host.remove(inventoryPath(stateDirectory)));
  await journal.close(
    'interrupted-rolled-back',
    result.errors.length > 0 ? result.errors.map((e) => `${e.resource}: ${e.error}`).join('; ') : 'interrupted; rolled back at start-up',
  );
  return { run: journal.record.id, plan, result };
}
