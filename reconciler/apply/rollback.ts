import type { Logger } from 'pino';
import { HostKitError } from '../core/errors.js';
import type { ResourceKind } from '../core/resource.js';
import type { AnyDriver } from '../drivers/types.js';
import type { Host } from '../hosts/types.js';
import { listRuns, RunJournal, type RunStatus } from './journal.js';
import { applyRestore, planRestore, type RestorePlan, type RestoreResult } from './restore.js';

// `hostkit rollback`: the down plan of an earlier run, from its journal and
// backups, applied as a run of its own (journaled, with backups of what it
// overwrites, so it is crash-safe and can itself be undone).

export interface RunSummary {
  id: string;
  type: RunJournal['record']['type'];
  status: RunStatus | 'open';
  commit?: string;
  previousCommit?: string;
  startedAt: string;
  endedAt?: string;
  changes: number;
  target?: string;
  /** Set when a later rollback run restored the state before this one. */
  rolledBackBy?: string;
  failed?: { id: string; error: string };
}

export function summarize(run: RunJournal, all: readonly RunJournal[]): RunSummary {
  const end = [...run.events].reverse().find((e) => e.ev === 'end');
  const failed = run.events.find((e) => e.ev === 'failed');
  const by = all.find((r) => r.record.type === 'rollback' && r.record.target === run.record.id && r.status === 'restored');
  return {
    id: run.record.id,
    type: run.record.type,
    status: run.status,
    ...(run.record.commit ? { commit: run.record.commit } : {}),
    ...(run.record.previousCommit ? { previousCommit: run.record.previousCommit } : {}),
    startedAt: run.record.startedAt,
    ...(end ? { endedAt: end.t } : {}),
    changes: run.record.planned.length,
    ...(run.record.target ? { target: run.record.target } : {}),
    ...(by ? { rolledBackBy: by.record.id } : {}),
    ...(failed && failed.ev === 'failed' ? { failed: { id: failed.id, error: failed.error } } : {}),
  };
}

/** The run `--last` means (the newest applied run not rolled back yet), or the one named (a unique prefix is enough). */
export async function findRun(host: Host, stateDirectory: string, which: { last: true } | { id: string }): Promise<RunJournal> {
  const runs = await listRuns(host, stateDirectory);
  if ('id' in which) {
    const matches = runs.filter((r) => r.record.id.startsWith(which.id));
    if (matches.length !== 1) {
      throw new HostKitError(
        'RUN_NOT_FOUND',
        matches.length === 0
          ? `No run ${which.id} in ${stateDirectory}/runs; \`hostkit runs\` lists them`
          : `${which.id} matches ${matches.length} runs; give more of the id`,
      );
    }
    return matches[0]!;
  }
  const undone = new Set(runs.filter((r) => r.record.type === 'rollback' && r.status === 'restored').map((r) => r.record.target));
  const last = [...runs].reverse().find((r) => r.record.type === 'apply' && r.status === 'applied' && !undone.has(r.record.id));
  if (!last) throw new HostKitError('RUN_NOT_FOUND', `No applied run to roll back in ${stateDirectory}/runs; \`hostkit runs\` lists them`);
  return last;
}

export async function rollbackRun(
  target: RunJournal,
  options: { dryRun: boolean; log: Logger; drivers?: ReadonlyMap<ResourceKind, AnyDriver>; withData?: boolean },
): Promise<{ plan: RestorePlan; result?: RestoreResult; run?: string }> {
  if (target.status === 'open') {
    throw new HostKitError('RUN_OPEN', `Run ${target.record.id} is still open (in progress, or interrupted: the next apply rolls it back first)`);
  }
  const plan = await planRestore(target, options.drivers, { withData: options.withData === true });
  if (options.dryRun) return { plan };
  const record = await RunJournal.open(target.host, target.stateDirectory, {
    type: 'rollback',
    host: target.record.host,
    ...(target.record.hostnames ? { hostnames: target.record.hostnames } : {}),
    target: target.record.id,
    ...(target.record.previousCommit ? { commit: target.record.previousCommit } : {}),
    ...(target.record.commit ? { previousCommit: target.record.commit } : {}),
    planned: [],
  });
  const result = await applyRestore(plan, target, { log: options.log, record, ...(options.drivers ? { drivers: options.drivers } : {}) });
  await record.close(
    result.errors.length > 0 ? 'failed' : 'restored',
    result.errors.length > 0 ? result.errors.map((e) => `${e.resource}: ${e.error}`).join('; ') : undefined,
  );
  await target.host.flush?.(); // the journal closed on the host before the rollback is reported done
  return { plan, result, run: record.record.id };
}
