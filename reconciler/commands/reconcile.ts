import { stringify } from 'yaml';
import { HostKitError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { hostkitVersion } from '../core/version.js';
import { Redactor } from '../core/secrets.js';
import { hasErrors } from '../core/diagnostics.js';
import { pendingChanges, type Plan } from '../diff/model.js';
import { reconcileHost } from '../engine.js';
import type { OnHost } from './run-input.js';
import { toJsonPlan } from '../diff/render/json.js';
import { planOf, savePlan, staleness } from '../diff/saved-plan.js';
import { renderDiagnostic, renderText } from '../diff/render/text.js';
import { renderMarkdown } from '../diff/render/markdown.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { createProgress, type ProgressRenderer } from '../diff/render/progress.js';
import { parseLockTimeout } from './failure.js';
import { isQuiet, note } from './quiet.js';
import { localRunInput } from './run-input.js';
import { approveSaved, assertPlanFor, readSavedPlan, renderSavedCheck, staleError, writeSavedPlan } from './saved-plan.js';

export interface ReconcileCommandOptions {
  repo: string;
  host?: string;
  /** A --target's host (commands/targets.ts); this machine when absent. */
  on?: OnHost;
  dryRun: boolean;
  exitCode?: boolean;
  output: string;
  root?: string;
  stateDir?: string;
  verbose?: boolean;
  logLevel?: string;
  cache?: boolean;
  /** Run journals kept after an apply (a whole number, at least 1). */
  keepRuns?: string;
  lockTimeout?: string;
  hostMismatchOk?: boolean;
  /** Step lines on stderr during an apply: true with --progress, false with --no-progress, else on a terminal only. */
  progress?: boolean;
  /** A dry run: also save the plan to this file (`hostkit plan --out`). */
  out?: string;
  /** Apply exactly the plan saved in this file, or refuse it when stale; with dryRun, show it and whether it is current. */
  plan?: string;
}

// Live on a terminal; as plain lines elsewhere only when asked for (a log or CI keeps its stderr as it was).
function applyProgress(opts: ReconcileCommandOptions, redactor: Redactor): ProgressRenderer | undefined {
  // -q leaves stderr to errors: no progress unless --progress asks for it.
  if (opts.dryRun || opts.progress === false || (isQuiet() && opts.progress !== true)) return undefined;
  const stderr = process.stderr;
  const live = Boolean(stderr.isTTY) && process.env.TERM !== 'dumb';
  if (!live && opts.progress !== true) return undefined;
  return createProgress(stderr, { live, style: useColor(stderr) ? COLOR : PLAIN, scrub: (s) => redactor.scrub(s) });
}

// validate -> plan -> (dry run: render and stop) -> apply -> render the result.
export async function reconcile(opts: ReconcileCommandOptions): Promise<number> {
  const keepRuns = opts.keepRuns === undefined ? undefined : Number(opts.keepRuns);
  if (keepRuns !== undefined && !(Number.isInteger(keepRuns) && keepRuns >= 1)) {
    process.stderr.write(`hostkit: error: --keep-runs expects a whole number of runs, at least 1, got ${opts.keepRuns}\n`);
    return 1;
  }
  if (opts.out !== undefined && (!opts.dryRun || opts.plan !== undefined)) {
    process.stderr.write('hostkit: error: --out saves the plan of a dry run: use it with `hostkit plan` (or reconcile --dry-run), and without --plan\n');
    return 1;
  }
  const lockTimeoutMs = parseLockTimeout(opts.lockTimeout);
  const planFile = opts.plan;
  const saved = planFile !== undefined ? await readSavedPlan(planFile) : undefined;
  const redactor = new Redactor();
  const progress = applyProgress(opts, redactor);
  const log = createLogger({ redactor, ...(opts.logLevel ? { level: opts.logLevel } : {}), ...(progress ? { beforeWrite: () => progress.interrupt() } : {}) });
  const style = useColor(process.stdout) ? COLOR : PLAIN;
  const write = (text: string) => process.stdout.write(redactor.scrub(text));

  const input = await localRunInput(opts, { dryRun: opts.dryRun, log, redactor });
  const { hostName, commit } = input;
  if (saved) assertPlanFor(saved, planFile!, hostName);
  if (opts.out !== undefined && !commit)
    throw new HostKitError(
      'PLAN_NO_COMMIT',
      `${opts.repo} has no git commit: a saved plan names the commit of the manifests it read. Commit them and plan again; nothing was saved.`,
      { data: { repository: opts.repo } },
    );
  // The text plan is printed once: as the apply starts (so ahead of its progress), or when the run stops at the plan.
  let planShown = false;
  const showPlan = (plan: Plan) => {
    if (opts.output === 'text' && !planShown) write(renderText(plan, { style, verbose: opts.verbose === true }));
    planShown = true;
  };
  const outcome = await reconcileHost({
    ...input,
    ...(keepRuns !== undefined ? { keepRuns } : {}),
    ...(lockTimeoutMs !== undefined ? { lockTimeoutMs } : {}),
    ...(opts.hostMismatchOk ? { hostMismatchOk: true } : {}),
    onLockWait: note,
    ...(progress ? { progress: (event) => progress.event(event) } : {}),
    onPlanned: (planned) => showPlan(planned.plan),
    ...(opts.out !== undefined ? { savedPlan: 'save' as const } : {}),
    ...(saved ? { savedPlan: 'check' as const, approve: approveSaved(saved, planFile!, opts.repo) } : {}),
  }).finally(() => progress?.close());
  // Manifests that no longer validate at another commit: the plan is stale before it is planned again.
  if (saved && outcome.stage === 'invalid' && commit !== saved.commit)
    throw staleError(planFile!, { commit: { saved: saved.commit, ...(commit ? { now: commit } : {}) }, resources: [] }, opts.repo);
  if (outcome.stage === 'invalid') {
    for (const d of outcome.repo.diagnostics)
      if (!isQuiet() || d.severity === 'error') process.stderr.write(renderDiagnostic(d, useColor(process.stderr) ? COLOR : PLAIN) + '\n');
    process.stderr.write(
      `hostkit: error: the manifests in ${opts.repo} are invalid; nothing was planned or applied. Run \`hostkit validate --repo ${opts.repo}\` after fixing them.\n`,
    );
    return 1;
  }
  const plan = outcome.planned.plan;
  if (saved && opts.dryRun) {
    const stale = staleness(saved, outcome.planned, outcome.repo.manifests);
    write(renderSavedCheck(saved, planFile!, stale, { output: opts.output, style, verbose: opts.verbose === true, repository: opts.repo }));
    if (stale) return 1;
    return opts.exitCode && (pendingChanges(planOf(saved)).length > 0 || saved.plan.summary.unsupported > 0) ? 2 : 0;
  }

  if (opts.dryRun || hasErrors(plan.diagnostics)) {
    switch (opts.output) {
      case 'json':
        write(JSON.stringify(toJsonPlan(plan), null, 2) + '\n');
        break;
      case 'yaml':
        write(stringify(toJsonPlan(plan)));
        break;
      case 'markdown':
        write(renderMarkdown(plan));
        break;
      default:
        write(renderText(plan, { style, verbose: opts.verbose === true }));
    }
    if (hasErrors(plan.diagnostics)) {
      // A plan an apply of the saved one could not make: the saved plan is stale, if something changed.
      const stale = saved ? staleness(saved, outcome.planned, outcome.repo.manifests) : undefined;
      if (stale) throw staleError(planFile!, stale, opts.repo);
      process.stderr.write(
        `hostkit: error: the plan for ${hostName} has errors (listed above); nothing was ${opts.out !== undefined ? 'saved' : 'applied'}.\n`,
      );
      return 1;
    }
    if (opts.out !== undefined) {
      await writeSavedPlan(opts.out, savePlan(outcome.planned, outcome.repo.manifests, { hostkitVersion: hostkitVersion(), createdAt: new Date() }));
      note(`plan saved to ${opts.out}: \`hostkit reconcile --plan ${opts.out}\` applies exactly it, and refuses it if the host or the manifests changed since`);
    }
    return opts.exitCode && (pendingChanges(plan).length > 0 || plan.summary.unsupported > 0) ? 2 : 0;
  }

  showPlan(plan);
  if (outcome.stage === 'held') {
    const report = { host: hostName, ...(commit ? { commit } : {}), status: 'quarantined', message: outcome.hold.message, quarantine: outcome.hold.quarantine };
    if (opts.output === 'json') write(JSON.stringify(report, null, 2) + '\n');
    else if (opts.output === 'yaml') write(stringify(report));
    else write(`\n${style.yellow(`Not applied: ${outcome.hold.message}`)}\n`);
    return 1;
  }
  if (outcome.stage !== 'applied') return 1;
  const result = outcome.result;
  const report = {
    host: hostName,
    ...(commit ? { commit } : {}),
    status: result.status,
    ...(result.run ? { run: result.run } : {}),
    applied: result.steps,
    skipped: result.skipped,
    warnings: result.warnings,
    ...(result.health ? { health: result.health } : {}),
    ...(result.recovered ? { recovered: result.recovered } : {}),
    ...(result.held ? { held: result.held, paused: result.paused } : {}),
    ...(result.released ? { released: result.released } : {}),
    ...(result.status === 'rolled-back'
      ? { failed: result.failed, rollbackErrors: result.rollbackErrors, quarantined: result.quarantined ?? false, pausedNow: result.pausedNow ?? [] }
      : {}),
  };
  if (opts.output === 'json') write(JSON.stringify(report, null, 2) + '\n');
  else if (opts.output === 'yaml') write(stringify(report));
  else {
    const lines: string[] = [''];
    if (result.recovered) {
      lines.push(style.yellow(`An interrupted run (${result.recovered.run}) was rolled back before this one.`));
      for (const e of result.recovered.errors) lines.push(style.red(`  restore of ${e}`));
    }
    for (const id of result.released ?? []) lines.push(`Project ${id} is no longer paused: this commit changes it.`);
    for (const p of result.paused ?? [])
      lines.push(
        style.yellow(
          `Held back: project ${p.project} is paused since ${p.at} after ${p.failures} failed applies; its changes were not applied. A commit that changes it, or \`hostkit resume --project ${p.project}\`, un-pauses it.`,
        ),
      );
    if (result.status === 'rolled-back') {
      lines.push(style.red(`Failed and rolled back: ${result.failed.id}: ${result.failed.error}`));
      lines.push(`Rolled back ${rolledBackCount(result, plan)} change(s) applied by this run; the host is as it was before.`);
      for (const e of result.rollbackErrors) lines.push(style.red(`  rollback of ${e.id} failed: ${e.error}`));
      if (result.quarantined && commit)
        lines.push(style.yellow(`Commit ${commit.slice(0, 12)} is quarantined: it is not applied again until a new commit, or \`hostkit resume\`.`));
      for (const p of result.pausedNow ?? [])
        lines.push(
          style.yellow(`Project ${p} is now paused after repeated failures: a commit that changes it, or \`hostkit resume --project ${p}\`, un-pauses it.`),
        );
    } else if (result.status === 'no-changes') {
      lines.push('Nothing to apply: the host matches the manifests.');
    } else {
      lines.push(style.green(`Applied ${result.steps.length} change(s) to ${hostName}.`));
      if (result.run) lines.push(style.dim(`Run ${result.run}: \`hostkit runs\` shows it, \`hostkit rollback --last\` undoes it.`));
    }
    for (const h of result.health ?? []) if (h.ok) lines.push(style.green(`healthy: ${h.project}${h.url ? ` (${h.url})` : ''}`));
    for (const w of result.warnings) lines.push(style.yellow(`warning: ${w.summary}: ${w.detail}`));
    if (result.skipped.length > 0) lines.push(style.dim(`${result.skipped.length} resource(s) not applied: their drivers do not exist yet.`));
    write(lines.join('\n') + '\n');
  }
  return result.status === 'rolled-back' ? 1 : 0;
}

/**
 * How many changes a rolled-back run had begun: those it applied, and the
 * failed step when it was a change (perhaps partly done), not when it was a
 * health check, a settle or the run's own bookkeeping.
 */
export function rolledBackCount(result: { steps: readonly unknown[]; failed: { id: string } }, plan: { changes: readonly { id: string }[] }): number {
  return result.steps.length + (plan.changes.some((c) => c.id === result.failed.id) ? 1 : 0);
}
