import { stringify } from 'yaml';
import { createLogger } from '../core/log.js';
import { COLOR, PLAIN, useColor, type Style } from '../diff/render/style.js';
import { DEFAULT_STATE_DIRECTORY } from '../manifests/expand.js';
import { DEFAULT_KEEP_RUNS, listRuns, pruneRuns } from '../apply/journal.js';
import { resume as liftAll, safetyStatus } from '../apply/quarantine.js';
import type { RestorePlan, RestoreStep } from '../apply/restore.js';
import { drivers } from '../drivers/registry.js';
import { hasRestore, isFileStep } from '../drivers/types.js';
import { findRun, rollbackRun, summarize } from '../apply/rollback.js';
import { DEFAULT_LOCK_TIMEOUT_MS, withRunLock } from '../apply/lock.js';
import { recoverBeforePlan } from '../apply/safe.js';
import { HostKitError } from '../core/errors.js';
import type { Host } from '../hosts/types.js';
import { namesMachine } from '../core/hostname.js';
import { parseLockTimeout } from './failure.js';
import { note } from './quiet.js';
import { renderRunsMarkdown } from './runs-markdown.js';
import { holdText } from '../drivers/release/holds.js';
import { hostOf, type OnHost } from './run-input.js';

// `hostkit runs`, `hostkit rollback` and `hostkit resume`: the run journal,
// down plans and the deploy-loop protection, on this machine's state directory.

export interface StateOptions {
  stateDir?: string;
  root?: string;
  output: string;
  logLevel?: string;
  lockTimeout?: string;
  hostMismatchOk?: boolean;
  /** A --target's host (commands/targets.ts); this machine when absent. */
  on?: OnHost;
}

// What changes the state directory or the host holds the run lock, as every apply does.
function locked<T>(opts: StateOptions, command: string, work: () => Promise<T>): Promise<T> {
  const { host, stateDirectory } = target(opts);
  const timeoutMs = parseLockTimeout(opts.lockTimeout) ?? DEFAULT_LOCK_TIMEOUT_MS;
  return withRunLock(host, stateDirectory, { timeoutMs, command, onWait: note }, work);
}

function target(opts: StateOptions) {
  return { host: hostOf(opts), stateDirectory: opts.stateDir ?? DEFAULT_STATE_DIRECTORY };
}

// Text (valid markdown too) unless JSON or YAML was asked for.
function emit(opts: StateOptions, data: unknown, text: () => string): void {
  if (opts.output === 'json') process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(stringify(data));
  else process.stdout.write(text());
}

export async function runs(opts: StateOptions & { verbose?: boolean; prune?: boolean; keep?: string }): Promise<number> {
  const { host, stateDirectory } = target(opts);
  if (opts.prune) {
    const keep = opts.keep === undefined ? DEFAULT_KEEP_RUNS : Number(opts.keep);
    if (!Number.isInteger(keep) || keep < 0) {
      process.stderr.write(`hostkit: error: --keep expects a whole number of runs to keep, got ${opts.keep}\n`);
      return 1;
    }
    const removed = await locked(opts, 'hostkit runs --prune', () => pruneRuns(host, stateDirectory, keep));
    emit(opts, { removed, kept: keep }, () => `Removed ${removed.length} run(s) from ${stateDirectory}/runs; the newest ${keep} are kept.\n`);
    return 0;
  }
  const all = await listRuns(host, stateDirectory);
  const list = all.map((r) => ({ ...summarize(r, all), ...(opts.verbose ? { planned: r.record.planned, events: r.events } : {}) }));
  const safety = await safetyStatus(host, stateDirectory);
  if (opts.output === 'markdown') {
    process.stdout.write(renderRunsMarkdown(stateDirectory, list, safety));
    return 0;
  }
  emit(opts, { runs: list, ...safety }, () => {
    const style: Style = useColor(process.stdout) ? COLOR : PLAIN;
    const lines: string[] = [];
    if (list.length === 0) lines.push(`No runs recorded in ${stateDirectory}/runs.`);
    for (const r of list) {
      const status =
        r.status === 'applied' || r.status === 'restored' ? style.green(r.status) : r.status === 'open' ? style.yellow(r.status) : style.red(r.status);
      const what = r.type === 'rollback' ? `rollback of ${r.target}` : `${r.changes} change(s)`;
      lines.push(
        `${r.id}  ${r.type.padEnd(8)} ${status.padEnd(12)} ${r.commit ? r.commit.slice(0, 12) : '-'.padEnd(12)}  ${what}${r.rolledBackBy ? style.dim(` (rolled back by ${r.rolledBackBy})`) : ''}`,
      );
      if (r.failed) lines.push(style.red(`    failed at ${r.failed.id}: ${r.failed.error.split('\n')[0]}`));
      if (opts.verbose) {
        for (const e of all.find((x) => x.record.id === r.id)!.events) {
          const { t, ev, ...rest } = e;
          lines.push(style.dim(`    ${t} ${ev} ${JSON.stringify(rest)}`));
        }
      }
    }
    for (const q of safety.quarantined)
      lines.push(style.yellow(`quarantined: commit ${q.commit.slice(0, 12)} since ${q.at} (${q.reason}); \`hostkit resume\` retries it`));
    for (const p of safety.paused)
      lines.push(
        style.yellow(`paused: project ${p.project} since ${p.at} after ${p.failures} failures; a commit that changes it or \`hostkit resume\` un-pauses it`),
      );
    for (const h of safety.held) lines.push(style.yellow(holdText(h)));
    return lines.join('\n') + '\n';
  });
  return 0;
}

function describeStep(s: RestoreStep): string {
  if (!isFileStep(s)) {
    // A driver's own step, in its words (drivers/NAME/restore.ts).
    const driver = drivers.get(s.kind);
    return (hasRestore(driver) && driver.restore.describe?.(s)) || `  ${s.action} ${s.resource}${s.unchanged ? ' - already as before' : ''}`;
  }
  switch (s.action) {
    case 'restore-file':
      return `  restore ${s.path} (${s.bytes} bytes, mode 0${s.mode.toString(8)})${s.unchanged ? ' - already as before' : ''}`;
    case 'remove-file':
      return `  remove  ${s.path} (did not exist before)${s.unchanged ? ' - already gone' : ''}`;
    case 'restore-link':
      return `  relink  ${s.path} -> ${s.target}${s.unchanged ? ' - already as before' : ''}`;
    case 'keep':
      return `  keep    ${s.resource}: ${s.detail}`;
  }
}

export function renderRestorePlan(plan: RestorePlan): string {
  const lines = [
    `Down plan for run ${plan.run}${plan.commit ? ` (commit ${plan.commit.slice(0, 12)})` : ''}: back to the state before it${plan.previousCommit ? ` (commit ${plan.previousCommit.slice(0, 12)})` : ''}`,
    ...plan.steps.map(describeStep),
    ...plan.after.flatMap((a) => a.lines),
  ];
  return lines.join('\n') + '\n';
}

/** The options of `hostkit rollback --project NAME --to ID` (commands/releases.ts). */
export interface RollbackToCliOptions {
  project?: string;
  to?: string;
  repo?: string;
  host?: string;
  cache?: boolean;
}

export async function rollback(
  opts: StateOptions & RollbackToCliOptions & { last?: boolean; run?: string; dryRun?: boolean; withData?: boolean },
): Promise<number> {
  if (opts.project !== undefined || opts.to !== undefined) {
    if (opts.project === undefined || opts.to === undefined) {
      process.stderr.write(
        `hostkit: error: ${opts.to === undefined ? '--project NAME needs --to ID' : '--to ID needs --project NAME'}: \`hostkit rollback --project NAME --to ID\` switches a project to a kept release (see \`hostkit releases\`)\n`,
      );
      return 1;
    }
    if (opts.last || opts.run || opts.dryRun || opts.withData) {
      process.stderr.write(
        'hostkit: error: --project/--to switches to a kept release; it takes neither --last, --run, --dry-run nor --with-data (`hostkit plan` shows a plan)\n',
      );
      return 1;
    }
    const { rollbackTo } = await import('./releases.js');
    return rollbackTo({ ...opts, project: opts.project, to: opts.to, repo: opts.repo ?? '.' });
  }
  if (!opts.last === !opts.run) {
    process.stderr.write('hostkit: error: give exactly one of --last, --run ID, or --project NAME --to ID (see `hostkit runs`, `hostkit releases`)\n');
    return 1;
  }
  const { host, stateDirectory } = target(opts);
  const log = createLogger(opts.logLevel ? { level: opts.logLevel } : {});
  const undo = async () => {
    const run = await findRun(host, stateDirectory, opts.run ? { id: opts.run } : { last: true });
    if (!opts.dryRun && !opts.hostMismatchOk) await assertSameMachine(host, run.record.host, run.record.hostnames ?? []);
    return rollbackRun(run, { dryRun: opts.dryRun === true, log, withData: opts.withData === true });
  };
  // Through the same steps as every apply: the lock; a run a killed process left open is rolled back
  // first (holding the lock, an open run is an interrupted one); old runs are pruned after. A dry run
  // neither waits for nor takes the lock.
  const outcome = opts.dryRun
    ? await undo()
    : await locked(opts, `hostkit rollback ${opts.run ?? '--last'}`, async () => {
        const recovered = await recoverBeforePlan(host, stateDirectory, log);
        if (recovered) note(`an interrupted run (${recovered.run}) was rolled back first`);
        const done = await undo();
        await pruneRuns(host, stateDirectory, DEFAULT_KEEP_RUNS).catch((error: unknown) => log.warn({ error: String(error) }, 'old runs not pruned'));
        return done;
      });
  emit(opts, outcome, () => {
    const lines = [renderRestorePlan(outcome.plan)];
    if (opts.dryRun) lines.push('Dry run: nothing was changed.\n');
    else if (outcome.result && outcome.result.errors.length > 0) {
      lines.push(`Rollback run ${outcome.run} finished with errors:\n${outcome.result.errors.map((e) => `  ${e.resource}: ${e.error}`).join('\n')}\n`);
    } else
      lines.push(
        `Restored the state before run ${outcome.plan.run} (rollback run ${outcome.run}). The next \`hostkit reconcile\` applies the manifests again.\n`,
      );
    for (const w of outcome.result?.warnings ?? []) lines.push(`note: ${w}\n`);
    return lines.join('');
  });
  return outcome.result && outcome.result.errors.length > 0 ? 1 : 0;
}

export async function resume(opts: StateOptions & { project?: string; commit?: string }): Promise<number> {
  const { host, stateDirectory } = target(opts);
  const lifted = await locked(opts, 'hostkit resume', () =>
    liftAll(host, stateDirectory, { ...(opts.project ? { project: opts.project } : {}), ...(opts.commit ? { commit: opts.commit } : {}) }),
  );
  emit(opts, lifted, () => {
    const lines: string[] = [];
    for (const q of lifted.quarantined) lines.push(`commit ${q.commit.slice(0, 12)} is no longer quarantined`);
    for (const p of lifted.paused) lines.push(`project ${p.project} is no longer paused`);
    for (const h of lifted.held) lines.push(`project ${h.project} is no longer held on release ${h.release}`);
    if (lines.length === 0) lines.push('Nothing was quarantined, paused or held.');
    else lines.push('The next `hostkit reconcile` (or the agent) applies them again.');
    return lines.join('\n') + '\n';
  });
  return 0;
}

// A rollback puts back the files of the machine the run was applied to, and no other.
async function assertSameMachine(host: Host, runHost: string, hostnames: readonly string[]): Promise<void> {
  const machine = (await host.hostname()).toLowerCase();
  if (
    namesMachine(
      [runHost, ...hostnames].map((n) => n.toLowerCase()),
      machine,
    )
  )
    return;
  throw new HostKitError(
    'HOST_MISMATCH',
    `The run was applied to Host "${runHost}", but this machine's hostname is "${machine}"; nothing was changed. Pass --host-mismatch-ok if this is that machine under another name.`,
    { data: { host: runHost, machine } },
  );
}
