import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Each project's backup outcomes, read when the metrics are scraped (backups run between runs, from their timers). */
export type BackupReader = () => Promise<readonly { project: string; records: readonly { part: string; at: string; ok: boolean; bytes?: number }[] }[]>;

export type RunResult = 'applied' | 'no-changes' | 'rolled-back' | 'held' | 'invalid' | 'error';

// The agent's Prometheus metrics, in a registry of its own (no global state).
export class AgentMetrics {
  readonly registry = new Registry();
  readonly runs: Counter<'host' | 'result'>;
  readonly duration: Histogram<'host'>;
  readonly changes: Counter<'host'>;
  readonly failures: Counter<'host'>;
  readonly drift: Gauge<'host'>;
  readonly driftChecks: Counter<'host' | 'outcome'>;
  readonly lastApplied: Gauge<'host'>;
  readonly lastAppliedCommitTime: Gauge<'host'>;
  readonly polls: Counter<'host' | 'result'>;
  readonly webhooks: Counter<'host' | 'kind'>;
  readonly webhookRequests: Counter<'host' | 'outcome'>;
  private readonly host: string;

  constructor(host: string) {
    this.host = host;
    const registers = [this.registry];
    this.runs = new Counter({ name: 'hostkit_agent_runs_total', help: 'Reconcile runs by result.', labelNames: ['host', 'result'], registers });
    this.duration = new Histogram({
      name: 'hostkit_agent_run_duration_seconds',
      help: 'Duration of reconcile runs (fetch to report).',
      labelNames: ['host'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.changes = new Counter({ name: 'hostkit_agent_changes_applied_total', help: 'Changes applied to the host.', labelNames: ['host'], registers });
    this.failures = new Counter({
      name: 'hostkit_agent_failures_total',
      help: 'Runs that failed (rolled back, invalid or errored).',
      labelNames: ['host'],
      registers,
    });
    this.drift = new Gauge({
      name: 'hostkit_agent_drifted_resources',
      help: 'Resources that differ from the last applied commit.',
      labelNames: ['host'],
      registers,
    });
    this.driftChecks = new Counter({ name: 'hostkit_agent_drift_checks_total', help: 'Drift checks by outcome.', labelNames: ['host', 'outcome'], registers });
    this.lastApplied = new Gauge({
      name: 'hostkit_agent_last_applied_timestamp_seconds',
      help: 'When a commit was last applied successfully (Unix time).',
      labelNames: ['host'],
      registers,
    });
    this.lastAppliedCommitTime = new Gauge({
      name: 'hostkit_agent_last_applied_commit_timestamp_seconds',
      help: 'Committer time of the last applied commit (Unix time).',
      labelNames: ['host'],
      registers,
    });
    this.polls = new Counter({ name: 'hostkit_agent_polls_total', help: 'Polls of the remote by result.', labelNames: ['host', 'result'], registers });
    this.webhookRequests = new Counter({
      name: 'hostkit_agent_webhook_requests_total',
      help: 'Webhook requests by answer (accepted, duplicate, unauthorized, too_large, ...).',
      labelNames: ['host', 'outcome'],
      registers,
    });
    this.webhooks = new Counter({
      name: 'hostkit_agent_webhooks_total',
      help: 'Webhook events that reached the loop.',
      labelNames: ['host', 'kind'],
      registers,
    });
  }

  run(result: RunResult, seconds: number, changes: number): void {
    const host = this.host;
    this.runs.inc({ host, result });
    this.duration.observe({ host }, seconds);
    if (changes > 0) this.changes.inc({ host }, changes);
    if (result === 'rolled-back' || result === 'invalid' || result === 'error') this.failures.inc({ host });
  }

  applied(commitTime: number | undefined, now = Date.now()): void {
    this.lastApplied.set({ host: this.host }, now / 1000);
    if (commitTime !== undefined) this.lastAppliedCommitTime.set({ host: this.host }, commitTime);
  }

  webhookRequest(outcome: string): void {
    this.webhookRequests.inc({ host: this.host, outcome });
  }

  drifted(count: number): void {
    this.drift.set({ host: this.host }, count);
  }

  /**
   * Backup gauges, read at each scrape: when each project's part last succeeded, whether its
   * last backup failed, and how many bytes that good backup read. A read that fails leaves them out.
   */
  watchBackups(read: BackupReader): void {
    const host = this.host;
    const registers = [this.registry];
    const labelNames = ['host', 'project', 'part'] as const;
    type Gauges = { success: Gauge<(typeof labelNames)[number]>; failed: Gauge<(typeof labelNames)[number]>; bytes: Gauge<(typeof labelNames)[number]> };
    const gauges = {} as Gauges;
    let pending: ReturnType<BackupReader> | undefined;
    // One read per scrape serves the three gauges.
    const fill = async () => {
      pending ??= read().finally(() => (pending = undefined));
      const histories = await pending.catch(() => []);
      for (const g of Object.values(gauges)) g.reset();
      for (const h of histories) {
        for (const part of new Set(h.records.map((r) => r.part))) {
          const mine = h.records.filter((r) => r.part === part);
          const last = mine.at(-1)!;
          const good = mine.filter((r) => r.ok).at(-1);
          const labels = { host, project: h.project, part };
          gauges.failed.set(labels, last.ok ? 0 : 1);
          if (good) {
            gauges.success.set(labels, Date.parse(good.at) / 1000);
            if (good.bytes !== undefined) gauges.bytes.set(labels, good.bytes);
          }
        }
      }
    };
    gauges.success = new Gauge({
      name: 'hostkit_backup_last_success_timestamp_seconds',
      help: "When each project's backup of a part (database, files) last succeeded (Unix time).",
      labelNames,
      registers,
      collect: fill,
    });
    gauges.failed = new Gauge({
      name: 'hostkit_backup_last_failed',
      help: 'Whether the last backup of the part failed (1) or not (0).',
      labelNames,
      registers,
      collect: fill,
    });
    gauges.bytes = new Gauge({ name: 'hostkit_backup_last_bytes', help: 'Bytes the last good backup of the part read.', labelNames, registers, collect: fill });
  }

  label(): { host: string } {
    return { host: this.host };
  }

  /** For the webhook server's GET /metrics. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
