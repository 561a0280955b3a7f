import { formatLocation, type Diagnostic } from '../core/diagnostics.js';
import { errorMessage } from '../core/errors.js';
import type { Redactor } from '../core/secrets.js';
import { PENDING_ACTIONS, type Change, type FieldChange, type Plan } from '../diff/model.js';
import type { HealthResult } from '../apply/executor.js';
import type { ReconcileOutcome } from '../engine.js';
import { backupText, type ReportBackup } from './backups.js';
import type { ReportRelease } from './releases.js';

export type ReportResult = 'applied' | 'no-changes' | 'rolled-back' | 'held' | 'invalid' | 'error';

const RESULT_TEXT: Record<ReportResult, string> = {
  applied: 'applied',
  'no-changes': 'no changes',
  'rolled-back': 'failed and rolled back',
  held: 'held: the commit is quarantined after a failure',
  invalid: 'invalid manifests',
  error: 'failed before applying anything',
};

export type ResourceStateName =
  'created' | 'updated' | 'replaced' | 'deleted' | 'unchanged' | 'orphan kept' | 'unsupported' | 'failed' | 'rolled back' | 'not applied' | 'pending';

export interface ResourceState {
  id: string;
  kind: string;
  state: ResourceStateName;
  ms?: number;
}

export interface DriftEntry {
  id: string;
  action: Change['action'];
  fields: FieldChange[];
  /** Owed to time passing (a certificate due for renewal), not to a hand edit. */
  owedBy?: 'time';
}

export interface DriftSection {
  checkedAt: string;
  /** The commit the host was compared with. */
  commit: string;
  policy: 'report' | 'heal';
  resources: DriftEntry[];
  /** Hand edits applied back (policy heal). */
  healed: string[];
  /** Changes owed by time (certificate renewals) applied, whatever the policy. */
  renewed: string[];
  /** Not applied although the policy (or time) called for it: the project is paused or the commit quarantined. */
  held: { id: string; reason: string }[];
  /** Applying them failed and was rolled back (the commit is then quarantined). */
  failed?: { id: string; error: string };
  /** Warnings of the run that applied them (e.g. a renewal the CA refused: the old certificate stays). */
  warnings?: string[];
  /** Drifting again and again: healing waits (flap back-off). */
  backingOff: { id: string; until: string }[];
}

export interface HostReport {
  host: string;
  commit?: string;
  result: ReportResult;
  summary: string;
  trigger: string[];
  startedAt: string;
  finishedAt: string;
  timings: { fetchMs?: number; reconcileMs?: number; totalMs: number };
  resources: ResourceState[];
  failed?: { id: string; error: string };
  /** Warnings of the run that applied them (e.g. a renewal the CA refused: the old certificate stays). */
  warnings?: string[];
  rollbackErrors?: { id: string; error: string }[];
  diagnostics: { severity: string; summary: string; detail: string; location?: string }[];
  /** The health checks the run made, with the URL each HTTP check asked. */
  health?: HealthResult[];
  /** Each project with a source: the release it serves after the run (read from the host). */
  releases?: ReportRelease[];
  /** Each project's backups: the last good one of each part and the last restore drill that passed (read from the host). */
  backups?: ReportBackup[];
  drift?: DriftSection;
  /** Each certificate's expiry as last observed (the run's plan, or the last drift check). */
  certificates?: { id: string; notAfter: string }[];
  /** The host's place in a rollout (.hostkit/rollout.yaml), and the newer commit it holds back from, if any. */
  rollout?: RolloutSection;
}

export interface RolloutSection {
  /** The wave and batch the host belongs to at the commit last tried; absent: outside every wave. */
  wave?: number;
  batch?: number;
  /** A newer commit the host does not apply yet: the report's commit stays the one it runs. */
  held?: { commit: string; state: 'waiting' | 'halted' | 'paused' | 'aborted'; wave: number; reason: string; since: string };
}

const PAST: Partial<Record<Change['action'], ResourceStateName>> = { create: 'created', update: 'updated', replace: 'replaced', delete: 'deleted' };

function diagnosticsOf(list: readonly Diagnostic[]): HostReport['diagnostics'] {
  return list.map((d) => ({ severity: d.severity, summary: d.summary, detail: d.detail, ...(d.location ? { location: formatLocation(d.location) } : {}) }));
}

/** Each resource's state after a run, from the plan and what the executor did. */
export function resourceStates(plan: Plan, outcome: ReconcileOutcome): ResourceState[] {
  const result = outcome.stage === 'applied' ? outcome.result : undefined;
  const steps = new Map((result?.steps ?? []).map((s) => [s.id, s.ms]));
  const failedId = result?.status === 'rolled-back' ? result.failed.id : undefined;
  return plan.changes.map((c) => {
    const base = { id: c.id, kind: c.kind };
    if (c.action === 'unsupported') return { ...base, state: 'unsupported' };
    if (c.action === 'noop') return { ...base, state: c.orphan ? 'orphan kept' : 'unchanged' };
    if (!result) return { ...base, state: 'pending' };
    if (c.id === failedId) return { ...base, state: 'failed' };
    const ms = steps.get(c.id);
    if (result.status === 'rolled-back') return { ...base, state: ms !== undefined ? 'rolled back' : 'not applied' };
    return ms !== undefined ? { ...base, state: PAST[c.action] ?? 'unchanged', ms } : { ...base, state: 'not applied' };
  });
}

export interface RunFacts {
  host: string;
  commit?: string;
  trigger: string[];
  startedAt: Date;
  finishedAt: Date;
  timings: { fetchMs?: number; reconcileMs?: number };
}

export function reportFromOutcome(facts: RunFacts, outcome: ReconcileOutcome): HostReport {
  const base = reportBase(facts);
  if (outcome.stage === 'invalid') {
    const errors = outcome.repo.diagnostics.filter((d) => d.severity === 'error').length;
    return {
      ...base,
      result: 'invalid',
      summary: `${errors} error(s) in the manifests; nothing was applied`,
      diagnostics: diagnosticsOf(outcome.repo.diagnostics),
    };
  }
  const plan = outcome.planned.plan;
  const certificates = certificateExpiries(plan);
  if (certificates.length > 0) base.certificates = certificates;
  const resources = resourceStates(plan, outcome);
  const diagnostics = diagnosticsOf(plan.diagnostics);
  if (outcome.stage === 'planned') {
    return { ...base, result: 'invalid', summary: 'the plan has errors; nothing was applied', resources, diagnostics };
  }
  if (outcome.stage === 'held') return { ...base, result: 'held', summary: outcome.hold.message, resources, diagnostics };
  const r = outcome.result;
  if (r.health) base.health = r.health;
  if (r.status === 'rolled-back') {
    return {
      ...base,
      result: 'rolled-back',
      summary: `${r.failed.id} failed; ${r.steps.length} applied change(s) rolled back`,
      resources,
      diagnostics: [...diagnostics, ...diagnosticsOf(r.failed.diagnostics)],
      failed: { id: r.failed.id, error: r.failed.error },
      rollbackErrors: r.rollbackErrors,
    };
  }
  const paused = r.paused?.length ? `; held back for paused project(s): ${r.paused.map((p) => p.project).join(', ')}` : '';
  if (r.status === 'no-changes') return { ...base, result: 'no-changes', summary: `the host matches the manifests${paused}`, resources, diagnostics };
  return {
    ...base,
    result: 'applied',
    summary: `${r.steps.length} change(s) applied${paused}`,
    resources,
    diagnostics: [...diagnostics, ...diagnosticsOf(r.warnings)],
  };
}

export function reportFromError(facts: RunFacts, cause: unknown): HostReport {
  return { ...reportBase(facts), result: 'error', summary: errorMessage(cause), diagnostics: [] };
}

function reportBase(facts: RunFacts): Omit<HostReport, 'result' | 'summary' | 'diagnostics'> {
  return {
    host: facts.host,
    ...(facts.commit ? { commit: facts.commit } : {}),
    trigger: facts.trigger,
    startedAt: facts.startedAt.toISOString(),
    finishedAt: facts.finishedAt.toISOString(),
    timings: { ...facts.timings, totalMs: facts.finishedAt.getTime() - facts.startedAt.getTime() },
    resources: [],
  };
}

/**
 * Certificates' expiry as the plan observed them. A certificate the plan (re)issues is left out: what it
 * observed is the old one, and the next drift check reads the new one.
 */
export function certificateExpiries(plan: Plan): { id: string; notAfter: string }[] {
  const out: { id: string; notAfter: string }[] = [];
  for (const c of plan.changes) {
    const notAfter = (c.observed as { info?: { notAfter?: unknown } } | undefined)?.info?.notAfter;
    if (c.kind === 'certificate' && c.action === 'noop' && typeof notAfter === 'number') out.push({ id: c.id, notAfter: new Date(notAfter).toISOString() });
  }
  return out;
}

/** Changes a plan against the last applied commit would make: the drift. */
export function driftEntries(plan: Plan): DriftEntry[] {
  return plan.changes
    .filter((c) => PENDING_ACTIONS.includes(c.action))
    .map((c) => ({ id: c.id, action: c.action, fields: c.fields, ...(c.owedBy ? { owedBy: c.owedBy } : {}) }));
}

export function resultText(result: ReportResult): string {
  return RESULT_TEXT[result];
}

function releaseText(r: ReportRelease): string {
  if (!r.id) return 'none yet';
  const content = r.commit ? ` (commit \`${r.commit}\`)` : r.archiveSha256 ? ` (archive sha256 \`${r.archiveSha256}\`)` : '';
  return `\`${r.id}\`${content}`;
}

// GitHub keeps 140 characters of a commit status's description.
const MAX_DESCRIPTION = 140;

/**
 * A commit status's description: the run's summary, then the release each project
 * with a source serves (`app 20261207T101500Z-1a2b3c4d5e6f-b9c8`), as many as fit,
 * and how many more there are.
 */
export function statusDescription(report: Pick<HostReport, 'summary' | 'releases'>, max = MAX_DESCRIPTION): string {
  const named = (report.releases ?? []).map((r) => `${r.project} ${r.id ?? '(none yet)'}`);
  if (named.length === 0) return report.summary;
  const head = `${report.summary}; ${named.length === 1 ? 'release' : 'releases'}: `;
  let text = report.summary;
  for (let n = 1; n <= named.length; n++) {
    const rest = named.length - n;
    const candidate = `${head}${named.slice(0, n).join(', ')}${rest > 0 ? ` (+${rest} more)` : ''}`;
    if (candidate.length > max) break;
    text = candidate;
  }
  return text;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const value = (v: unknown) => (v === undefined ? '(none)' : `\`${cell(typeof v === 'string' ? v : JSON.stringify(v))}\``);

export function renderStatusMarkdown(report: HostReport): string {
  const out: string[] = [`# HostKit status: \`${report.host}\``, ''];
  out.push(`- **Result:** ${resultText(report.result)} (${report.summary})`);
  out.push(`- **Commit:** ${report.commit ? `\`${report.commit}\`` : '(none)'}`);
  out.push(`- **Trigger:** ${report.trigger.join(', ') || '(none)'}`);
  out.push(`- **Finished:** ${report.finishedAt} after ${report.timings.totalMs} ms`);
  const t = report.timings;
  const parts = [t.fetchMs !== undefined ? `fetch ${t.fetchMs} ms` : '', t.reconcileMs !== undefined ? `validate, plan and apply ${t.reconcileMs} ms` : ''];
  if (parts.some(Boolean)) out.push(`- **Timings:** ${parts.filter(Boolean).join(', ')}`);
  for (const h of report.health ?? []) out.push(`- **Health of ${h.project}:** ${h.ok ? 'healthy' : 'failed'}${h.url ? ` (${cell(h.url)})` : ''}`);
  for (const r of report.releases ?? []) out.push(`- **Release of ${r.project}:** ${releaseText(r)}`);
  for (const b of report.backups ?? []) out.push(`- **Backups of ${b.project}:** ${backupText(b)}`);
  if (report.drift) {
    const d = report.drift;
    const counts: [number, string][] = [
      [d.renewed.length, 'renewed'],
      [d.healed.length, 'healed'],
      [d.held.length, 'held'],
    ];
    const done = counts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
    out.push(`- **Drift:** ${d.resources.length} resource(s) at ${d.checkedAt} (policy: ${d.policy})${done.length > 0 ? `; ${done.join(', ')}` : ''}`);
  }
  if (report.rollout?.held) {
    const h = report.rollout.held;
    out.push(`- **Rollout:** \`${h.commit}\` not applied yet (${h.state}): ${cell(h.reason)}`);
  } else if (report.rollout?.wave !== undefined) out.push(`- **Rollout:** wave ${report.rollout.wave}, batch ${report.rollout.batch ?? 1}`);
  out.push('');
  if (report.failed) out.push(`**Failed at \`${report.failed.id}\`:** ${cell(report.failed.error)}`, '');
  for (const e of report.rollbackErrors ?? []) out.push(`- rollback of \`${e.id}\` failed: ${cell(e.error)}`);
  if (report.resources.length > 0) {
    out.push('| Resource | State |', '|---|---|');
    for (const r of report.resources) out.push(`| \`${r.id}\` | ${r.state}${r.ms !== undefined ? ` (${r.ms} ms)` : ''} |`);
    out.push('');
  }
  if (report.diagnostics.length > 0) {
    out.push('## Diagnostics', '');
    for (const d of report.diagnostics) out.push(`- **${d.severity}** \`${d.location ?? 'hostkit'}\`: ${d.summary}: ${cell(d.detail)}`);
    out.push('');
  }
  return out.join('\n');
}

export function renderDriftMarkdown(report: HostReport): string | undefined {
  const drift = report.drift;
  if (!drift || drift.resources.length === 0) return undefined;
  const out: string[] = [`# HostKit drift: \`${report.host}\``, ''];
  out.push(`${drift.resources.length} resource(s) differ from commit \`${drift.commit}\` (checked ${drift.checkedAt}; policy: ${drift.policy}).`, '');
  if (drift.renewed.length > 0) out.push(`Renewed (owed by time, applied whatever the policy): ${drift.renewed.map((id) => `\`${id}\``).join(', ')}.`, '');
  if (drift.healed.length > 0) out.push(`Healed: ${drift.healed.map((id) => `\`${id}\``).join(', ')}.`, '');
  if (drift.failed) out.push(`Applying failed at \`${drift.failed.id}\` and was rolled back: ${cell(drift.failed.error)}`, '');
  for (const w of drift.warnings ?? []) out.push(`- warning: ${cell(w)}`);
  if (drift.warnings?.length) out.push('');
  for (const h of drift.held) out.push(`- \`${h.id}\` held, not applied: ${cell(h.reason)}`);
  if (drift.held.length > 0) out.push('');
  for (const b of drift.backingOff) out.push(`- \`${b.id}\` keeps drifting: healing paused until ${b.until}.`);
  if (drift.backingOff.length > 0) out.push('');
  for (const r of drift.resources) {
    out.push(`## \`${r.id}\` (${r.action}${r.owedBy === 'time' ? ', owed by time' : ''})`, '');
    for (const f of r.fields) {
      if (f.diff !== undefined)
        out.push(`\`${f.field}\`${f.redacted ? ' (secret values redacted)' : ''}`, '', '```diff', f.diff.replace(/```/g, '`\u200b``'), '```', '');
      else out.push(`- \`${f.field}\`: live ${value(f.before)}, wanted ${value(f.after)}${f.redacted ? ' (secret: fingerprints only)' : ''}`);
    }
    if (r.fields.length === 0) out.push(`- ${r.action === 'create' ? 'missing on the host' : r.action}`);
    out.push('');
  }
  return out.join('\n');
}

/** The files one host owns on the report branch; undefined means "remove". Every text passes the redactor. */
export function reportFiles(report: HostReport, redactor: Redactor): Record<string, string | undefined> {
  const drift = renderDriftMarkdown(report);
  return {
    [`status/${report.host}.json`]: redactor.scrub(JSON.stringify(report, null, 2) + '\n'),
    [`status/${report.host}.md`]: redactor.scrub(renderStatusMarkdown(report)),
    [`drift/${report.host}.md`]: drift === undefined ? undefined : redactor.scrub(drift),
  };
}

/** Whether a path is a report file (of any host): report commits never trigger a reconcile. */
export function isReportPath(file: string): boolean {
  return /^(status\/[^/]+\.(json|md)|drift\/[^/]+\.md|rollout\/decision\.json)$/.test(file);
}
