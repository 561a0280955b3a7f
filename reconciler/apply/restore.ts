import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../core/errors.js';
import type { ResourceKind } from '../core/resource.js';
import { drivers as registered } from '../drivers/registry.js';
import {
  hasRestore,
  type AnyDriver,
  type ChangeJournal,
  type FileRestoreStep,
  type JournaledChange,
  type RestoreContext,
  type RestoreStep,
} from '../drivers/types.js';
import type { Host } from '../hosts/types.js';
import type { RemoveDirectoriesStep } from '../drivers/shared/undo.js';
import { inventoryPath, readInventory, writeInventory } from './inventory.js';
import type { BackupTarget, RunEvent, RunJournal } from './journal.js';

// Down plans: what restores the state before a run, computed from its journal
// and backups, and the code that applies it. The one undo path: the in-run
// rollback of a failed run, the recovery of an interrupted one and `hostkit
// rollback` all come here. This file knows files, links, the inventory and the
// order (newest change first); what else a change recorded, its driver turns
// into steps and applies (drivers/types.ts Restore). It is idempotent: restoring
// bytes twice is harmless, and undos that must not run twice are recorded.

export type { RestoreStep } from '../drivers/types.js';

export interface RestorePlan {
  run: string;
  commit?: string;
  previousCommit?: string;
  steps: RestoreStep[];
  /** Each driver's once-per-restore work after the steps (a daemon-reload and restarts, an nginx reload), with the lines that show it. */
  after: { kind: ResourceKind; plan: unknown; lines: string[] }[];
}

type Drivers = ReadonlyMap<ResourceKind, AnyDriver>;
type Backup = Extract<RunEvent, { ev: 'backup' }>;

// A record of live state as its driver wrote it; the two targets versions before driver records wrote, read as such.
async function stateRecord(journal: RunJournal, b: Backup & { target: Exclude<BackupTarget, { type: 'file' }> }) {
  const text = (await journal.readBackup(b.file!))?.toString('utf8');
  if (text === undefined) return undefined; // the backup itself is missing: nothing trustworthy to restore
  const t = b.target;
  if (t.type === 'state') return { kind: t.kind, key: t.key, data: JSON.parse(text) as unknown };
  if (t.type === 'firewall') return { kind: 'firewall' as const, key: 'table', data: { transaction: text } };
  return {
    kind: 'pgrole' as const,
    key: 'settings',
    data: { role: t.role, ...(t.postgresql ? { postgresql: t.postgresql } : {}), settings: JSON.parse(text) as unknown },
  };
}

// The generic step that puts one backed-up path back.
async function fileStep(journal: RunJournal, id: string, b: Backup, p: string): Promise<FileRestoreStep | undefined> {
  const host = journal.host;
  if (b.link !== undefined) return { action: 'restore-link', resource: id, path: p, target: b.link, unchanged: (await host.readlink(p)) === b.link };
  // Not read: a link made since (a release's `current`) may point to a directory, and it is still there to remove.
  if (b.absent) return { action: 'remove-file', resource: id, path: p, unchanged: (await host.stat(p)) === undefined };
  const now = await host.readFile(p);
  const before = await journal.readBackup(b.file!);
  if (!before) return undefined; // the backup itself is missing: nothing trustworthy to restore
  const st = await host.stat(p);
  const unchanged = now !== undefined && now.equals(before) && st?.mode === b.mode && st?.uid === b.uid && st?.gid === b.gid;
  return { action: 'restore-file', resource: id, path: p, bytes: before.length, unchanged, backup: b.file!, mode: b.mode!, uid: b.uid!, gid: b.gid! };
}

/**
 * The steps that put back what `journal`'s run changed, newest change first: each change's
 * files, then the steps its driver makes of its records; what a driver keeps, kept; then
 * each driver's work after them. Reads the host, changes nothing.
 */
export async function planRestore(journal: RunJournal, drivers: Drivers = registered, options: { withData?: boolean } = {}): Promise<RestorePlan> {
  const host = journal.host;
  const idsOf = (ev: RunEvent['ev']) => new Set(journal.events.filter((e) => e.ev === ev).map((e) => (e as { id: string }).id));
  const begun = idsOf('begin');
  const applied = idsOf('applied');
  const ran = idsOf('down');
  const backups = journal.events.filter((e): e is Backup => e.ev === 'backup');
  const plannedById = new Map(journal.record.planned.map((p) => [p.id, p]));
  const driverOf = (kind: ResourceKind | undefined) => (kind ? drivers.get(kind) : undefined);
  const steps: RestoreStep[] = [];
  const changes: JournaledChange[] = [];
  const removed = new Set<string>();
  // Still open: its own rollback, or the recovery of an interrupted run. Closed: `hostkit rollback` of a run that ended.
  const finished = journal.status !== 'open';
  const afterSteps = hostAfter(host, removed);

  // Changes in reverse order of their start; the inventory (backed up first, under "(inventory)") last.
  const order = journal.events.filter((e) => e.ev === 'begin').map((e) => (e as { id: string }).id);
  const ids = [...new Set([...order].reverse()), '(inventory)'];
  for (const id of ids) {
    const planned = plannedById.get(id);
    const records: { kind: ResourceKind; key: string; data: unknown }[] = [];
    const files: FileRestoreStep[] = [];
    for (const b of backups.filter((x) => x.id === id)) {
      if (b.target.type === 'file') {
        const step = await fileStep(journal, id, b, b.target.path);
        if (step) files.push(step);
      } else {
        const record = await stateRecord(journal, b as Backup & { target: Exclude<BackupTarget, { type: 'file' }> });
        if (record) records.push(record);
      }
    }
    const kind = planned?.kind ?? records[0]?.kind;
    const driver = driverOf(kind);
    const change: JournaledChange = {
      id,
      begun: begun.has(id),
      applied: applied.has(id),
      ran: ran.has(id),
      records,
      finished,
      ...(planned ? { planned } : {}),
      ...(options.withData ? { withData: true } : {}),
    };
    changes.push(change);
    const kept = hasRestore(driver) && files.length > 0 ? await driver.restore.keepFiles?.(change, host) : undefined;
    steps.push(...(kept ? [{ action: 'keep' as const, resource: id, detail: kept }] : files));
    for (const f of kept ? [] : files) if (f.action === 'remove-file' && !f.unchanged) removed.add(f.path);
    // The driver sees the host as the steps before its own will have left it (a directory emptied of the files they remove).
    const own = hasRestore(driver) && driver.restore.plan ? await driver.restore.plan(change, afterSteps) : [];
    for (const s of own) if (s.action === 'remove-directories') for (const p of (s as RemoveDirectoriesStep).paths) removed.add(p);
    for (const s of own) steps.push({ ...s, kind: driver!.kind });
    const keeps = hasRestore(driver) ? driver.restore.keeps : undefined;
    if (planned && keeps && begun.has(id) && planned.action === 'create' && own.length === 0) {
      steps.push({ action: 'keep', resource: id, detail: keeps, ...(planned.entry ? { entry: planned.entry } : {}) });
    }
  }
  // A driver may create its resources together when the first of them applies (accounts: one systemd-sysusers),
  // so a kept kind's creates that never began may exist too: kept, and HostKit's, like those that began.
  // Its driver says what undoes them (an unfinished run's accounts go again), else they are kept.
  const beganKinds = new Set([...begun].map((id) => plannedById.get(id)?.kind));
  for (const planned of journal.record.planned) {
    const driver = driverOf(planned.kind);
    const keeps = hasRestore(driver) ? driver.restore.keeps : undefined;
    if (!begun.has(planned.id) && planned.action === 'create' && keeps && beganKinds.has(planned.kind)) {
      const change: JournaledChange = { id: planned.id, planned, begun: false, applied: false, ran: false, records: [], finished };
      const own = driver!.restore.plan ? await driver!.restore.plan(change, afterSteps) : [];
      if (own.length > 0) for (const s of own) steps.push({ ...s, kind: driver!.kind });
      else steps.push({ action: 'keep', resource: planned.id, detail: keeps, ...(planned.entry ? { entry: planned.entry } : {}) });
    }
  }
  const after: RestorePlan['after'] = [];
  for (const driver of drivers.values()) {
    const hook = hasRestore(driver) ? driver.restore.after : undefined;
    const plan = await hook?.plan(steps, changes, host, (file) => journal.readBackup(file));
    if (hook && plan !== undefined) after.push({ kind: driver.kind, plan, lines: hook.describe(plan) });
  }
  return {
    run: journal.record.id,
    ...(journal.record.commit ? { commit: journal.record.commit } : {}),
    ...(journal.record.previousCommit ? { previousCommit: journal.record.previousCommit } : {}),
    steps,
    after,
  };
}

/**
 * `host` as the restore steps planned so far will have left it: the paths they remove
 * read as absent (stat) and are not listed (readdir). Everything else is the host itself.
 */
function hostAfter(host: Host, removed: ReadonlySet<string>): Host {
  const stat: Host['stat'] = async (p) => (removed.has(p) ? undefined : host.stat(p));
  const readdir: Host['readdir'] = async (dir) => (await host.readdir(dir))?.filter((name) => !removed.has(path.posix.join(dir, name)));
  return new Proxy(host, {
    get(target, key) {
      if (key === 'stat') return stat;
      if (key === 'readdir') return readdir;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export interface RestoreResult {
  errors: { resource: string; error: string }[];
  warnings: string[];
}

export interface RestoreOptions {
  log: Logger;
  /** The journal of the run doing the restore (`hostkit rollback`): each step first backs up what it replaces there. */
  record?: RunJournal;
  /** The drivers that planned the steps (default: the registered ones). */
  drivers?: Drivers;
  /** Runs the steps of one change, or a driver's work after them (`after`: its kind); the executor reports them as rollback steps. */
  around?: (step: { id: string; after?: true }, work: () => Promise<void>) => Promise<void>;
}

// A change's journal in the run doing the restore: its first backup records that the change began there.
function recordFor(record: RunJournal, id: string, kind: ResourceKind): ChangeJournal {
  const journal = record.forChange(id, kind);
  let begun = false;
  const begin = async () => {
    if (!begun) await record.event({ ev: 'begin', id });
    begun = true;
  };
  return {
    host: journal.host,
    stateDirectory: journal.stateDirectory,
    backupFile: async (p) => (await begin(), journal.backupFile(p)),
    backupFiles: async (paths) => (await begin(), journal.backupFiles(paths)),
    backupState: async (key, data) => (await begin(), journal.backupState(key, data)),
  };
}

/**
 * Apply a restore plan: each driver's work before the steps (stopping units that did not
 * exist before), every step (files and links put back, the drivers' own steps: the
 * firewall table, a role's settings, down commands), the inventory of what was kept,
 * then each driver's work after them (one daemon-reload and restart, one nginx reload).
 * A step that fails is reported and the others go on. `source` (the run restored)
 * records the undos that must not run twice.
 */
export async function applyRestore(plan: RestorePlan, source: RunJournal, options: RestoreOptions): Promise<RestoreResult> {
  const host = source.host;
  const drivers = options.drivers ?? registered;
  const errors: RestoreResult['errors'] = [];
  const warnings: string[] = [];
  // The barrier inside: a write sent without waiting (SshHost) that failed is this step's failure, and
  // the next step runs, as when the write itself throws.
  const attempt = async (resource: string, work: () => Promise<void>) => {
    try {
      await work();
      await host.flush?.();
    } catch (cause) {
      // A write of this step that failed is acknowledged here (the next step runs); usually it is the cause itself.
      const write = await Promise.resolve(host.flush?.()).then(
        () => '',
        (error: unknown) => (errorMessage(error) === errorMessage(cause) ? '' : `; and ${errorMessage(error)}`),
      );
      const error = errorMessage(cause) + write;
      errors.push({ resource, error });
      options.log.error({ resource, error }, 'restore step failed');
    }
  };
  const context = (resource: string, kind?: ResourceKind): RestoreContext => ({
    host,
    stateDirectory: source.stateDirectory,
    log: options.log,
    ...(options.record && kind ? { record: recordFor(options.record, resource, kind) } : {}),
    ran: (ok) => source.event({ ev: 'down', id: resource, ok }),
  });
  const hooks = plan.after.flatMap((a) => {
    const driver = drivers.get(a.kind);
    return hasRestore(driver) && driver.restore.after ? [{ kind: a.kind, plan: a.plan, hook: driver.restore.after }] : [];
  });
  for (const { kind, plan: p, hook } of hooks) if (hook.before) await attempt(`(${kind})`, () => hook.before!(p, context(`(${kind})`)));

  const one = async (step: RestoreStep) => {
    switch (step.action) {
      case 'restore-file':
      case 'remove-file':
      case 'restore-link': {
        const s = step as FileRestoreStep & { path: string; unchanged: boolean };
        if (s.unchanged) return;
        await attempt(s.resource, async () => {
          await options.record?.event({ ev: 'begin', id: s.resource });
          await options.record?.backupFile(s.resource, s.path);
          if (s.action === 'remove-file') await host.remove(s.path);
          else if (s.action === 'restore-link') await host.symlink(s.target, s.path);
          else if (s.action === 'restore-file') {
            const bytes = await source.readBackup(s.backup);
            if (!bytes) throw new Error(`backup ${s.backup} of ${s.path} is missing`);
            await host.writeFile(s.path, bytes, { mode: s.mode, uid: s.uid, gid: s.gid });
          }
        });
        return;
      }
      case 'keep':
        warnings.push(`${step.resource}: ${(step as { detail: string }).detail}`);
        return;
      default: {
        const kind = (step as { kind: ResourceKind }).kind;
        const driver = drivers.get(kind);
        await attempt(step.resource, async () => {
          if (!hasRestore(driver) || !driver.restore.apply) throw new Error(`no driver of kind ${kind} restores a ${step.action} step`);
          const warning = await driver.restore.apply(step, context(step.resource, kind));
          if (warning) warnings.push(`${step.resource}: ${warning}`);
        });
      }
    }
  };
  // The steps of one change run together (the executor shows them as that change's rollback).
  for (let i = 0; i < plan.steps.length;) {
    const resource = plan.steps[i]!.resource;
    const group: RestoreStep[] = [];
    while (i < plan.steps.length && plan.steps[i]!.resource === resource) group.push(plan.steps[i++]!);
    const work = async () => {
      for (const step of group) await one(step);
    };
    if (options.around && group.some((s) => !('unchanged' in s) || !s.unchanged)) await options.around({ id: resource }, work);
    else await work();
  }
  // What the restore kept is still HostKit's: the inventory it put back lists it again (else a project could not adopt its own account).
  const kept = plan.steps.flatMap((s) => (s.action === 'keep' && 'entry' in s && s.entry ? [s.entry] : []));
  if (kept.length > 0) {
    await attempt('(inventory)', async () => {
      await options.record?.backupFile('(inventory)', inventoryPath(source.stateDirectory));
      const inventory = await readInventory(host, source.stateDirectory, source.record.host);
      for (const entry of kept) inventory.resources[entry.id] ??= entry;
      await writeInventory(host, source.stateDirectory, inventory);
    });
  }
  for (const { kind, plan: p, hook } of hooks) {
    const work = () => attempt(`(${kind})`, () => hook.apply(p, context(`(${kind})`)));
    await (options.around ? options.around({ id: kind, after: true }, work) : work());
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
  drivers: Drivers = registered,
): Promise<{ run: string; plan: RestorePlan; result: RestoreResult } | undefined> {
  const { openRun } = await import('./journal.js');
  const journal = await openRun(host, stateDirectory);
  if (!journal) return undefined;
  log.warn({ run: journal.record.id }, 'an interrupted run was found; rolling it back before anything new is applied');
  const plan = await planRestore(journal, drivers);
  const result = await applyRestore(plan, journal, { log, drivers });
  // The inventory comes back with the files; a broken one would stop every later run.
  await readInventory(host, stateDirectory, journal.record.host).catch(async () => host.remove(inventoryPath(stateDirectory)));
  await journal.close(
    'interrupted-rolled-back',
    result.errors.length > 0 ? result.errors.map((e) => `${e.resource}: ${e.error}`).join('; ') : 'interrupted; rolled back at start-up',
  );
  await host.flush?.();
  return { run: journal.record.id, plan, result };
}
