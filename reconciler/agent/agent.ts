import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { hasErrors, type Location } from '../core/diagnostics.js';
import { errorMessage, isRetryable } from '../core/errors.js';
import type { ResourceKind } from '../core/resource.js';
import type { Redactor } from '../core/secrets.js';
import { isQuarantined } from '../apply/quarantine.js';
import { stateDirectoryFor } from '../apply/safe.js';
import { renderMarkdown } from '../diff/render/markdown.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { PLAIN } from '../diff/render/style.js';
import type { AnyDriver } from '../drivers/types.js';
import { reconcileHost, type ReconcileInput, type ReconcileOutcome } from '../engine.js';
import type { Host } from '../hosts/types.js';
import {
  certificateExpiries,
  driftEntries,
  isReportPath,
  reportFiles,
  reportFromError,
  reportFromOutcome,
  resultText,
  statusDescription,
  type DriftSection,
  type HostReport,
} from '../report/status.js';
import { backupSummaries } from '../report/backups.js';
import { currentReleases, sourceProjects } from '../report/releases.js';
import type { Forge } from '../report/forge.js';
import type { ReportWriter } from '../report/writeback.js';
import type { WebhookEvent } from '../sources/webhook.js';
import { commitTime, type GitSource } from '../sources/git.js';
import { startPoller, type Poller } from '../sources/poll.js';
import type { GateResult } from '../fleet/gate.js';
import type { RolloutGate } from '../fleet/agent-gate.js';
import type { AgentConfig } from './config.js';
import { FlapGuard } from './flap.js';
import type { AgentMetrics } from './metrics.js';
import { CoalescingQueue } from './queue.js';
import { retrying } from './retry.js';

/** What the webhook server hands the loop (the fields the loop reads). */
export type AgentEvent = Pick<WebhookEvent, 'kind' | 'deliveryId' | 'ref' | 'pullRequest' | 'headMessage'>;

/** The forge calls the loop makes. */
export type AgentForge = Pick<Forge, 'setCommitStatus' | 'upsertPlanComment'>;

export interface AgentDeps {
  config: AgentConfig;
  host: Host;
  source: GitSource;
  log: Logger;
  metrics: AgentMetrics;
  /** Shared with the logger, so a secret resolved in any run is scrubbed from every line. */
  redactor: Redactor;
  reports?: ReportWriter;
  forge?: AgentForge;
  drivers?: ReadonlyMap<ResourceKind, AnyDriver>;
  env?: NodeJS.ProcessEnv;
  /** Override the Host manifest's state directory (tests). */
  hostStateDirectory?: string;
  flap?: FlapGuard;
  now?: () => number;
  /** Runs of one kind start at least this long after the previous one ended (default 1 s): bursts fold into one run. */
  runSpacingMs?: number;
  /** Waits between retries (tests make them instant). */
  sleep?: (ms: number) => Promise<void>;
  /** With a rollout policy in the repository: whether a new commit may be applied yet. */
  rollout?: Pick<RolloutGate, 'check'>;
  /** Told every report the agent publishes (notifications); never throws. */
  notify?: (report: HostReport) => Promise<void>;
}

/** A quiet host still reports this often (its drift check), so `hostkit fleet status` can tell silence from death. */
export const HEARTBEAT_MS = 3_600_000;

/** A report whose push failed is pushed again after about this long. */
const REPUBLISH_MS = 5_000;

interface PersistedState {
  /** The last commit the loop finished with (applied, failed or skipped): not run again. */
  considered?: string;
  /** The last commit applied successfully (drift is measured against it). */
  applied?: string;
  appliedAt?: string;
  /** The considered commit failed (rolled back or held): `hostkit resume` makes it eligible again. */
  failed?: boolean;
  /** Where the engine keeps the host's state (quarantine, runs), as of the last run. */
  hostState?: string;
}

/**
 * The long-running loop for one host. Every piece of work (reconcile, drift
 * check, pull-request plan) goes through one queue with concurrency 1, so runs
 * never interleave; a burst of triggers folds into one next run. Triggers only
 * wake the loop: the commit always comes from git.
 */
export class Agent {
  private readonly deps: AgentDeps;
  private readonly queue: CoalescingQueue;
  private readonly flap: FlapGuard;
  private readonly now: () => number;
  private readonly statePath: string;
  private state: PersistedState = {};
  private lastReport: HostReport | undefined;
  private lastDriftKey = '';
  private lastPublished = 0;
  private unpublished: { report: HostReport; message: string } | undefined;
  private republishTimer: NodeJS.Timeout | undefined;
  private poller: Poller | undefined;
  private driftTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** A newer commit waits for the rollout: pushes to the report branch wake the loop too. */
  private heldKey = '';
  /** While held: hosts whose reports cannot move the rollout for this host (GateResult.unaffectedBy). */
  private heldUnaffectedBy = new Set<string>();
  /** While the rollout gate reads the report branch: who pushed to it meanwhile (undefined: a push not naming its host). */
  private reportPushesDuringCheck: (string | undefined)[] | undefined;
  private stopped = false;
  /** Start and end of every run, for tests and the health endpoint. */
  readonly runs: { kind: string; start: number; end: number }[] = [];

  constructor(deps: AgentDeps) {
    this.deps = deps;
    this.queue = new CoalescingQueue({ spacingMs: deps.runSpacingMs ?? 1000 });
    this.flap = deps.flap ?? new FlapGuard({ baseMs: deps.config.drift.intervalMs });
    this.now = deps.now ?? Date.now;
    this.statePath = path.join(deps.config.stateDirectory, 'agent', `${deps.config.host}.json`);
  }

  get lastApplied(): string | undefined {
    return this.state.applied;
  }

  get report(): HostReport | undefined {
    return this.lastReport;
  }

  async start(options: { poll?: boolean; drift?: boolean } = {}): Promise<void> {
    await this.loadState();
    const { config, log, metrics } = this.deps;
    if (options.poll !== false) {
      this.poller = startPoller({
        intervalMs: config.pollIntervalMs,
        remoteHead: async () => {
          const head = await this.deps.source.remoteHead();
          metrics.polls.inc({ ...metrics.label(), result: head && head !== this.state.considered ? 'changed' : 'unchanged' });
          return head;
        },
        lastSeen: () => this.state.considered,
        onChange: () => void this.trigger('poll'),
        log,
      });
    }
    if (options.drift !== false) {
      this.driftTimer = setInterval(() => void this.checkDrift('timer'), config.drift.intervalMs);
    }
    log.info({ host: config.host, branch: config.repository.branch, applied: this.state.applied }, 'agent started');
    // First the commit applied last, once (a reboot loses what lives in memory, e.g. the firewall table), then the branch head.
    void this.queue.trigger('converge', 'startup', () => this.timed('converge', () => this.converge()));
    void this.trigger('startup');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poller?.stop();
    if (this.driftTimer) clearInterval(this.driftTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.republishTimer) clearTimeout(this.republishTimer);
    await this.queue.onIdle();
  }

  /** Wake the loop: fetch the branch and reconcile its commit if it is new. */
  trigger(reason: string): Promise<void> {
    return this.queue.trigger('reconcile', reason, (reasons) => this.timed('reconcile', () => this.reconcile(reasons)));
  }

  checkDrift(reason: string): Promise<void> {
    return this.queue.trigger('drift', reason, () => this.timed('drift', () => this.drift()));
  }

  planPullRequest(pr: NonNullable<AgentEvent['pullRequest']>): Promise<void> {
    return this.queue.trigger(`pr:${pr.number}`, `pull request #${pr.number}`, () => this.timed('pull-request', () => this.planPr(pr)));
  }

  /** The webhook server's onEvent: never throws, only queues work. */
  onWebhook(event: AgentEvent): void {
    const { metrics, config, log } = this.deps;
    metrics.webhooks.inc({ ...metrics.label(), kind: event.kind });
    if (this.stopped) return;
    if (event.kind === 'push') {
      if (event.ref === `refs/heads/${config.report.branch}`) this.reportPushesDuringCheck?.push(reporterOf(event.headMessage));
      if (this.heldKey && event.ref === `refs/heads/${config.report.branch}`) {
        // Another host reported: the rollout may have moved on, unless that host is one the wait does not depend on
        // (a hundred waiting hosts would otherwise each fetch the report branch for every report of the others).
        const reporter = reporterOf(event.headMessage);
        if (reporter !== undefined && this.heldUnaffectedBy.has(reporter)) {
          log.debug({ reporter, delivery: event.deliveryId }, 'report of a host the rollout wait does not depend on');
          return;
        }
        void this.trigger(`report push ${event.deliveryId}`);
        return;
      }
      if (event.ref && event.ref !== `refs/heads/${config.repository.branch}`) {
        log.debug({ ref: event.ref, delivery: event.deliveryId }, 'push to another branch ignored');
        return;
      }
      void this.trigger(`webhook ${event.deliveryId}`);
    } else if (event.kind === 'pull_request' && event.pullRequest && this.deps.forge && config.forge?.pullRequests !== false) {
      if (['opened', 'synchronize', 'reopened', 'ready_for_review', 'open', 'update', 'reopen'].includes(event.pullRequest.action)) {
        void this.planPullRequest(event.pullRequest);
      }
    }
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    return {
      ok: !this.stopped,
      detail: { host: this.deps.config.host, applied: this.state.applied ?? null, result: this.lastReport?.result ?? null, queued: this.queue.size },
    };
  }

  idle(): Promise<void> {
    return this.queue.onIdle();
  }

  private async timed(kind: string, work: () => Promise<void>): Promise<void> {
    const start = performance.now();
    try {
      await work();
    } catch (cause) {
      this.deps.log.error({ kind, err: errorMessage(cause) }, 'run failed');
    } finally {
      this.runs.push({ kind, start, end: performance.now() });
    }
  }

  private async reconcile(reasons: string[]): Promise<void> {
    const { config, source, log, metrics } = this.deps;
    const startedAt = new Date(this.now());
    const t0 = performance.now();
    let commit: string;
    try {
      commit = await retrying(config.retry, () => source.fetch(), {
        retryable: (o) => 'error' in o && isRetryable(o.error),
        onRetry: (attempt, waitMs, o) => log.warn({ attempt, waitMs, err: 'error' in o ? errorMessage(o.error) : '' }, 'fetch failed; retrying'),
        ...(this.deps.sleep ? { sleep: this.deps.sleep } : {}),
      });
    } catch (cause) {
      log.warn({ err: errorMessage(cause) }, 'fetch failed');
      metrics.run('error', (performance.now() - t0) / 1000, 0);
      return;
    }
    const fetchMs = Math.round(performance.now() - t0);
    if (commit === this.state.considered && !(await this.resumed(commit))) {
      log.debug({ commit, reasons }, 'commit already reconciled');
      return;
    }
    if (this.state.considered && (await this.onlyReports(this.state.considered, commit))) {
      log.info({ commit }, 'only report files changed; not reconciling');
      this.state.considered = commit;
      await this.saveState();
      return;
    }
    let slot: HostReport['rollout'];
    if (this.deps.rollout) {
      const snapshot = await source.snapshot(commit);
      const pushes: (string | undefined)[] = [];
      this.reportPushesDuringCheck = pushes;
      let decided: GateResult;
      try {
        decided = await this.deps.rollout.check(commit, snapshot);
      } finally {
        this.reportPushesDuringCheck = undefined;
      }
      if (!decided.go) {
        await this.holdForRollout(commit, decided);
        // A report that landed while the gate read the branch may be one the wait depends on: its webhook came before
        // this host was held, so look again (a later report by a host the wait does not depend on would not wake it).
        if (pushes.some((by) => by === undefined || !this.heldUnaffectedBy.has(by))) void this.trigger('report pushed during the rollout check');
        return;
      }
      this.heldKey = '';
      this.heldUnaffectedBy = new Set();
      slot = decided.wave !== undefined ? { wave: decided.wave, ...(decided.batch !== undefined ? { batch: decided.batch } : {}) } : undefined;
    }
    log.info({ commit, reasons }, 'reconciling');
    await this.forgeStatus(commit, 'pending', 'reconciling');
    const t1 = performance.now();
    let report: HostReport;
    const facts = () => ({
      host: config.host,
      commit,
      trigger: reasons,
      startedAt,
      finishedAt: new Date(this.now()),
      timings: { fetchMs, reconcileMs: Math.round(performance.now() - t1) },
    });
    let changes = 0;
    let transient = false;
    try {
      const outcome = await this.applyCommit(commit);
      report = withHostFacts(reportFromOutcome(facts(), outcome), await this.hostFactsAfter(outcome));
      if (outcome.stage !== 'invalid') this.state.hostState = stateDirectoryFor(outcome.repo.manifests, config.host, this.deps.hostStateDirectory);
      if (outcome.stage === 'applied' && outcome.result.status === 'applied') changes = outcome.result.steps.length;
    } catch (cause) {
      report = reportFromError(facts(), cause);
      transient = isRetryable(cause);
    }
    if (slot) report.rollout = slot;
    metrics.run(report.result, (performance.now() - t0) / 1000, changes);
    // A commit that could not be tried for a transient reason (the lock held, a server down past every retry) is tried
    // again on the next trigger; one that was applied, rolled back or refused is not.
    if (!transient) this.state.considered = commit;
    this.state.failed = report.result === 'rolled-back' || report.result === 'held';
    if (report.result === 'applied' || report.result === 'no-changes') {
      this.state.applied = commit;
      this.state.appliedAt = report.finishedAt;
      metrics.applied(await commitTime(source.gitdir, commit), this.now());
      metrics.drifted(0);
      this.lastDriftKey = '';
    } else if (this.lastReport?.drift) {
      report.drift = this.lastReport.drift; // the host is still as the drift check last saw it
    }
    await this.saveState();
    log.info({ commit, result: report.result, ms: report.timings.totalMs, changes }, 'reconciled');
    this.lastReport = report;
    await this.publish(report, `${config.host}: ${resultText(report.result)} at ${commit}`);
    await this.forgeStatus(commit, report.result === 'applied' || report.result === 'no-changes' ? 'success' : 'failure', statusDescription(report));
  }

  /**
   * A newer commit the rollout does not let through yet. The host keeps the commit it runs (nothing is applied,
   * the commit is not marked handled) and reports why, once per state; it asks again on the next poll,
   * on a push to the report branch, or when the bake it waits for ends.
   */
  private async holdForRollout(commit: string, decided: Extract<GateResult, { go: false }>): Promise<void> {
    const { config, log } = this.deps;
    if (decided.retryAt !== undefined) {
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      this.wakeTimer = setTimeout(() => void this.trigger('rollout bake ended'), Math.max(0, decided.retryAt - this.now()) + 20);
    }
    // Waiting is reported once per commit, not at every wave it passes: each report is a push the whole fleet races
    // for (`hostkit fleet rollout` shows live progress); halted, paused and aborted are reported with their wave.
    this.heldUnaffectedBy = new Set(decided.unaffectedBy ?? []);
    const key = JSON.stringify(decided.state === 'waiting' ? [commit, 'waiting'] : [commit, decided.state, decided.wave]);
    if (key === this.heldKey) return;
    this.heldKey = key;
    log.info({ commit, state: decided.state, wave: decided.wave, reason: decided.reason }, 'held by rollout');
    const now = new Date(this.now()).toISOString();
    const base =
      this.lastReport ??
      ({
        host: config.host,
        ...(this.state.applied ? { commit: this.state.applied } : {}),
        result: 'no-changes',
        summary: 'nothing applied yet: waiting for the rollout',
        trigger: [],
        startedAt: now,
        finishedAt: now,
        timings: { totalMs: 0 },
        resources: [],
        diagnostics: [],
      } satisfies HostReport);
    const held = { commit, state: decided.state, wave: decided.wave, reason: decided.reason, since: now };
    this.lastReport = { ...base, rollout: { ...base.rollout, held } };
    await this.publish(this.lastReport, `${config.host}: ${decided.reason} (${commit})`);
    await this.forgeStatus(commit, 'pending', decided.reason);
  }

  /**
   * Apply a commit through the one door (reconcileHost: hostname check, run lock, recovery, holds, journal,
   * health, quarantine), trying again with capped back-off while it fails for a transient reason. Failures of
   * the tries before the last are rolled back but not counted towards quarantine or pause.
   */
  private async applyCommit(commit: string, options: { keepPauses?: boolean } = {}): Promise<ReconcileOutcome> {
    const { config, log } = this.deps;
    const input = { ...(await this.runInput(commit, `commit ${commit.slice(0, 12)}`)), ...(options.keepPauses ? { keepPauses: true } : {}) };
    return retrying(config.retry, (_attempt, last) => reconcileHost({ ...input, deferRetryable: !last }), {
      retryable: (o) =>
        'error' in o
          ? isRetryable(o.error)
          : o.value.stage === 'applied' && o.value.result.status === 'rolled-back' && o.value.result.failed.retryable === true,
      onRetry: (attempt, waitMs, o) =>
        log.warn(
          {
            commit,
            attempt,
            waitMs,
            err:
              'error' in o ? errorMessage(o.error) : o.value.stage === 'applied' && o.value.result.status === 'rolled-back' ? o.value.result.failed.error : '',
          },
          'run failed for a transient reason; retrying',
        ),
      ...(this.deps.sleep ? { sleep: this.deps.sleep } : {}),
    });
  }

  /** What every run of `commit` hands reconcileHost (`purpose` names the run to a process waiting on its lock). */
  private async runInput(commit: string, purpose: string): Promise<ReconcileInput> {
    const { config, source, log, redactor } = this.deps;
    return {
      repoDir: await source.snapshot(commit),
      repository: displayUrl(config.repository.url),
      hostName: config.host,
      host: this.deps.host,
      dryRun: false,
      log,
      redactor,
      commit,
      keepRuns: config.keepRuns,
      lockTimeoutMs: config.lockTimeoutMs,
      lockCommand: `hostkit agent (${purpose})`,
      ...(config.hostMismatchOk ? { hostMismatchOk: true } : {}),
      ...(this.deps.env ? { env: this.deps.env } : {}),
      ...(this.deps.drivers ? { drivers: this.deps.drivers } : {}),
      ...(this.deps.hostStateDirectory ? { stateDirectory: this.deps.hostStateDirectory } : {}),
    };
  }

  // At start-up: apply the commit applied last once more, so the host is as it says (observe, apply only what
  // differs). What a quarantine or a pause holds stays held; nothing is reported when nothing changed.
  private async converge(): Promise<void> {
    const { config, log, metrics } = this.deps;
    const commit = this.state.applied;
    if (!commit) return;
    const startedAt = new Date(this.now());
    const t0 = performance.now();
    let report: HostReport;
    try {
      // Not a new commit: a project paused since stays paused (only a commit that changes it, or resume, un-pauses).
      const outcome = await this.applyCommit(commit, { keepPauses: true });
      report = withHostFacts(
        reportFromOutcome(
          { host: config.host, commit, trigger: ['startup: the commit applied last'], startedAt, finishedAt: new Date(this.now()), timings: {} },
          outcome,
        ),
        await this.hostFactsAfter(outcome),
      );
    } catch (cause) {
      report = reportFromError(
        { host: config.host, commit, trigger: ['startup: the commit applied last'], startedAt, finishedAt: new Date(this.now()), timings: {} },
        cause,
      );
    }
    report.finishedAt = new Date(this.now()).toISOString();
    log.info({ commit, result: report.result }, 'converged at start-up');
    if (report.result === 'no-changes') return;
    metrics.run(
      report.result,
      (performance.now() - t0) / 1000,
      report.resources.filter((r) => ['created', 'updated', 'replaced', 'deleted'].includes(r.state)).length,
    );
    this.lastReport = report;
    await this.publish(report, `${config.host}: ${resultText(report.result)} at ${commit} (start-up)`);
  }

  // Observe the host against the last applied commit and report. What is owed by time (a certificate
  // due for renewal) is applied whatever the policy; hand edits only under `heal`, and not while they
  // flap. Applying goes through reconcileHost like every run: recovery, quarantine, paused-project
  // holds, journal, health checks and pruning, limited to those changes.
  private async drift(): Promise<void> {
    const { config, log, metrics } = this.deps;
    const commit = this.state.applied;
    if (!commit) return;
    const run = await this.runInput(commit, `drift check of ${commit.slice(0, 12)}`);
    const checked = await reconcileHost({ ...run, dryRun: true });
    if (checked.stage !== 'planned') return; // invalid manifests: the commit's own run reported them
    const entries = driftEntries(checked.planned.plan);
    const now = this.now();
    const heal = config.drift.policy === 'heal';
    const due = entries.filter((e) => e.owedBy === 'time' || (heal && this.flap.allowed(e.id, now)));
    const healed: string[] = [];
    const renewed: string[] = [];
    const held: DriftSection['held'] = [];
    let failed: DriftSection['failed'];
    let warnings: string[] | undefined;
    if (due.length > 0 && !hasErrors(checked.planned.plan.diagnostics)) {
      const outcome = await reconcileHost({ ...run, dryRun: false, only: new Set(due.map((e) => e.id)) });
      if (outcome.stage === 'held') {
        for (const e of due) held.push({ id: e.id, reason: outcome.hold.message });
      } else if (outcome.stage === 'applied') {
        const changes = new Map(outcome.planned.plan.changes.map((c) => [c.id, c]));
        const result = outcome.result;
        for (const id of result.held ?? []) held.push({ id, reason: changes.get(id)?.reason ?? 'held' });
        if (result.warnings.length > 0) warnings = result.warnings.map((w) => `${w.summary}: ${w.detail}`);
        if (result.status === 'applied') {
          for (const step of result.steps) {
            const change = changes.get(step.id);
            if (change?.owedBy === 'time') {
              // A renewal the CA refused is a warning at its origin (the old certificate stays): not renewed.
              if (!result.warnings.some((w) => sameOrigin(w.location, change.origin))) renewed.push(step.id);
            } else {
              this.flap.healed(step.id, now);
              healed.push(step.id);
            }
          }
          metrics.run('applied', 0, result.steps.length);
        } else if (result.status === 'rolled-back') {
          failed = { id: result.failed.id, error: result.failed.error };
          log.error({ commit, resource: result.failed.id, error: result.failed.error, quarantined: result.quarantined }, 'drift apply failed; rolled back');
        }
      } else if (outcome.stage === 'planned') {
        log.warn({ commit, errors: outcome.planned.plan.diagnostics.filter((d) => d.severity === 'error').length }, 'drift not applied: the plan has errors');
      }
    }
    let checkOutcome = entries.length > 0 ? 'drift' : 'clean';
    if (held.length > 0) checkOutcome = 'held';
    if (renewed.length > 0) checkOutcome = 'renewed';
    if (healed.length > 0) checkOutcome = 'healed';
    if (failed) checkOutcome = 'heal-failed';
    metrics.driftChecks.inc({ ...metrics.label(), outcome: checkOutcome });
    this.flap.settle(new Set(entries.map((e) => e.id)), now);
    const applied = new Set([...healed, ...renewed]);
    metrics.drifted(entries.filter((e) => !applied.has(e.id)).length);
    const section: DriftSection = {
      checkedAt: new Date(now).toISOString(),
      commit,
      policy: config.drift.policy,
      resources: entries,
      healed,
      renewed,
      held,
      ...(failed ? { failed } : {}),
      ...(warnings ? { warnings } : {}),
      backingOff: this.flap.backingOff(now).map((b) => ({ id: b.id, until: new Date(b.until).toISOString() })),
    };
    if (entries.length > 0) log.warn({ commit, drifted: entries.map((e) => e.id), healed, renewed, held: held.map((h) => h.id) }, 'drift');
    // Write only when what drifted changed, not on every quiet check.
    const key = JSON.stringify([entries.map((e) => [e.id, e.fields]), healed, renewed, held, failed, warnings, section.backingOff.map((b) => b.id)]);
    if (key === this.lastDriftKey && now - this.lastPublished < HEARTBEAT_MS) return;
    this.lastDriftKey = key;
    const base =
      this.lastReport ??
      ({
        host: config.host,
        commit,
        result: 'no-changes',
        summary: 'drift check',
        trigger: [],
        startedAt: section.checkedAt,
        finishedAt: section.checkedAt,
        timings: { totalMs: 0 },
        resources: [],
        diagnostics: [],
      } satisfies HostReport);
    const certificates = certificateExpiries(checked.planned.plan);
    this.lastReport = withHostFacts({ ...base, drift: section, ...(certificates.length > 0 ? { certificates } : {}) }, await this.hostFactsAfter(checked));
    await this.publish(this.lastReport, `${config.host}: ${driftText(section)} against ${commit}`);
  }

  private async planPr(pr: NonNullable<AgentEvent['pullRequest']>): Promise<void> {
    const { config, source, log, redactor, forge } = this.deps;
    if (!forge) return;
    const sha = await source.fetchPullRequest(pr);
    // A plan only: no lock is taken and nothing is written.
    const outcome = await reconcileHost({ ...(await this.runInput(sha, `pull request #${pr.number}`)), dryRun: true });
    const markdown =
      outcome.stage === 'invalid'
        ? [
            `### HostKit plan for \`${config.host}\` at \`${sha.slice(0, 12)}\``,
            '',
            'The manifests are invalid; nothing would be applied.',
            '',
            '```',
            ...outcome.repo.diagnostics.map((d) => renderDiagnostic(d, PLAIN)),
            '```',
            '',
          ].join('\n')
        : renderMarkdown(outcome.planned.plan);
    const posted = await forge.upsertPlanComment(pr.number, config.host, redactor.scrub(markdown));
    log.info({ pr: pr.number, commit: sha, comment: posted.id, created: posted.created }, 'plan posted');
  }

  /** A failed commit is not retried, unless `hostkit resume` has lifted its quarantine since. */
  private async resumed(commit: string): Promise<boolean> {
    if (!this.state.failed || !this.state.hostState) return false;
    const quarantined = await isQuarantined(this.deps.host, this.state.hostState, commit);
    if (!quarantined) this.deps.log.info({ commit }, 'quarantine lifted (hostkit resume): reconciling the commit again');
    return !quarantined;
  }

  private async onlyReports(from: string, to: string): Promise<boolean> {
    try {
      const files = await this.deps.source.changedFiles(from, to);
      return files.length > 0 && files.every(isReportPath);
    } catch {
      return false; // e.g. the old commit is gone after a force push: reconcile
    }
  }

  // What the host says after a run, for the report: the release each project with a source serves now (also
  // for the commit status), and each project's backups and drills. A read that fails leaves its part out.
  private async hostFactsAfter(outcome: ReconcileOutcome): Promise<HostFacts> {
    if (outcome.stage === 'invalid') return {};
    const stateDirectory = outcome.planned.context.stateDirectory;
    const projects = sourceProjects(outcome);
    const read = async <T>(what: string, work: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await work();
      } catch (cause) {
        this.deps.log.warn({ err: errorMessage(cause) }, `${what} not read`);
        return undefined;
      }
    };
    const releases = projects.length > 0 ? await read('current releases', () => currentReleases(this.deps.host, stateDirectory, projects)) : undefined;
    const backups = await read('backup records', () => backupSummaries(this.deps.host, stateDirectory));
    return { ...(releases ? { releases } : {}), ...(backups && backups.length > 0 ? { backups } : {}) };
  }

  private async publish(report: HostReport, message: string): Promise<void> {
    await this.deps.notify?.(report);
    await this.writeReport(report, message);
  }

  // A report whose push failed (every retry lost the race, or the remote was down) is pushed again a little later,
  // through the queue, unless a newer report went out meanwhile: the report branch never stays behind the host.
  private async writeReport(report: HostReport, message: string): Promise<void> {
    const { reports, log, redactor } = this.deps;
    if (!reports) return;
    this.lastPublished = this.now();
    this.unpublished = undefined;
    try {
      await reports.write(reportFiles(report, redactor), redactor.scrub(message));
    } catch (cause) {
      log.error({ err: errorMessage(cause) }, 'report not written; trying again shortly');
      this.unpublished = { report, message };
      if (this.republishTimer || this.stopped) return;
      this.republishTimer = setTimeout(
        () => {
          this.republishTimer = undefined;
          const pending = this.unpublished;
          if (pending && !this.stopped) {
            void this.queue.trigger('publish', 'report push retry', () => this.timed('publish', () => this.writeReport(pending.report, pending.message)));
          }
        },
        REPUBLISH_MS * (0.5 + Math.random()),
      );
    }
  }

  private async forgeStatus(commit: string, state: 'pending' | 'success' | 'failure', description: string): Promise<void> {
    const { forge, config, log, redactor } = this.deps;
    if (!forge) return;
    try {
      await forge.setCommitStatus(commit, config.host, state, redactor.scrub(description).slice(0, 140));
    } catch (cause) {
      log.warn({ err: errorMessage(cause), commit, state }, 'commit status not set');
    }
  }

  private async loadState(): Promise<void> {
    try {
      this.state = JSON.parse(await readFile(this.statePath, 'utf8')) as PersistedState;
    } catch {
      this.state = {};
    }
  }

  // Atomically: a unique temporary file, synced, renamed over the old one (a crash leaves one or the other).
  private async saveState(): Promise<void> {
    await mkdir(path.dirname(this.statePath), { recursive: true, mode: 0o700 });
    const temp = `${this.statePath}.${randomBytes(6).toString('hex')}.tmp`;
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify(this.state, null, 2) + '\n');
      await handle.sync();
    } catch (cause) {
      await handle.close();
      await rm(temp, { force: true });
      throw cause;
    }
    await handle.close();
    await rename(temp, this.statePath);
  }
}

type HostFacts = Pick<HostReport, 'releases' | 'backups'>;

function withHostFacts(report: HostReport, facts: HostFacts): HostReport {
  return { ...report, ...facts };
}

/** The host a report commit is by: its message starts with "HOST: " (see publish); undefined for any other commit. */
export function reporterOf(message: string | undefined): string | undefined {
  return /^([A-Za-z0-9][A-Za-z0-9.-]*): /.exec(message ?? '')?.[1];
}

/** A remote URL without credentials, for plans and reports. */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');
}

function sameOrigin(a: Location | undefined, b: Location | undefined): boolean {
  return a !== undefined && b !== undefined && a.file === b.file && a.line === b.line && a.pointer === b.pointer;
}

// The report commit's message: what drifted by hand, and what was renewed, healed or held.
function driftText(d: DriftSection): string {
  const byHand = d.resources.filter((e) => e.owedBy !== 'time').length;
  const parts = [
    byHand > 0 ? `drift in ${byHand} resource(s)` : '',
    d.renewed.length > 0 ? `${d.renewed.length} renewed` : '',
    d.healed.length > 0 ? `${d.healed.length} healed` : '',
    d.held.length > 0 ? `${d.held.length} held` : '',
    d.failed ? `applying failed at ${d.failed.id}, rolled back` : '',
  ].filter(Boolean);
  if (parts.length > 0) return parts.join(', ');
  return d.resources.length === 0 ? 'no drift' : `${d.resources.length} change(s) owed by time`;
}
