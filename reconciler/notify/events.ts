// What is worth telling someone about, from what the agent already knows: its
// report after each run or drift check, the host's backup records, and the
// other hosts' reports on the report branch (a dead agent cannot say it died).
// Pure: each notice carries a key, so the notifier can drop repeats.
import type { BackupHistory } from '../drivers/backup/job.js';
import type { HostReport } from '../report/status.js';

export const NOTICE_KINDS = [
  'failed',
  'rolled-back',
  'quarantined',
  'paused',
  'drift',
  'certificate-renewal-failed',
  'certificate-expiring',
  'backup-failed',
  'stale',
] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

export interface Notice {
  kind: NoticeKind;
  /** The host the notice is about (a stale host is not the sender). */
  host: string;
  /** One line: what happened. */
  subject: string;
  /** More lines, e.g. the error. */
  detail?: string;
  commit?: string;
  /** The same key means the same notice: sent once per dedupe window. */
  key: string;
}

const DAY_MS = 86_400_000;

/** Notices one report calls for. */
export function reportNotices(report: HostReport, options: { now: number; certificateExpiryDays: number }): Notice[] {
  const { host, commit } = report;
  const at = commit ? ` at ${commit.slice(0, 12)}` : '';
  const base = { host, ...(commit ? { commit } : {}) };
  const out: Notice[] = [];
  if (report.result === 'rolled-back') {
    out.push({
      ...base,
      kind: 'rolled-back',
      subject: `${host}: apply failed${at} and was rolled back`,
      detail: report.failed ? `${report.failed.id}: ${report.failed.error}` : report.summary,
      key: `rolled-back/${host}/${commit}`,
    });
  } else if (report.result === 'held') {
    out.push({ ...base, kind: 'quarantined', subject: `${host}: commit${at} is quarantined`, detail: report.summary, key: `quarantined/${host}/${commit}` });
  } else if (report.result === 'error' || report.result === 'invalid') {
    out.push({
      ...base,
      kind: 'failed',
      subject: `${host}: run failed${at} (${report.result})`,
      detail: report.summary,
      key: `failed/${host}/${commit}/${report.result}`,
    });
  }
  const paused = /held back for paused project\(s\): (.+)$/.exec(report.summary)?.[1];
  if (paused) out.push({ ...base, kind: 'paused', subject: `${host}: project(s) paused: ${paused}`, key: `paused/${host}/${paused}` });
  if (report.rollout?.held?.state === 'paused') {
    const held = report.rollout.held;
    // About the commit held back, not the one the host runs.
    out.push({
      host,
      commit: held.commit,
      kind: 'paused',
      subject: `${host}: rollout of ${held.commit.slice(0, 12)} paused`,
      detail: held.reason,
      key: `paused/${host}/rollout/${held.commit}`,
    });
  }
  const drift = report.drift;
  const byHand = (drift?.resources ?? []).filter((e) => e.owedBy !== 'time').map((e) => e.id);
  if (drift && byHand.length > 0) {
    out.push({
      ...base,
      kind: 'drift',
      subject: `${host}: drift in ${byHand.length} resource(s) against ${drift.commit.slice(0, 12)}`,
      detail: byHand.join(', '),
      key: `drift/${host}/${drift.commit}/${[...byHand].sort().join(',')}`,
    });
  }
  const renewal = [
    ...(drift?.warnings ?? []).filter((w) => /certificate/i.test(w)),
    ...(drift?.failed?.id.startsWith('certificate/') ? [drift.failed.error] : []),
  ];
  if (drift && renewal.length > 0) {
    out.push({
      ...base,
      kind: 'certificate-renewal-failed',
      subject: `${host}: certificate renewal failed`,
      detail: renewal.join('\n'),
      key: `renewal/${host}/${drift.checkedAt}`,
    });
  }
  for (const c of report.certificates ?? []) {
    const left = Date.parse(c.notAfter) - options.now;
    if (left < options.certificateExpiryDays * DAY_MS) {
      const when = left <= 0 ? `expired on ${c.notAfter}` : `expires in ${Math.floor(left / DAY_MS)} day(s) (${c.notAfter})`;
      out.push({ ...base, kind: 'certificate-expiring', subject: `${host}: ${c.id} ${when}`, key: `expiring/${host}/${c.id}/${c.notAfter}` });
    }
  }
  return out;
}

/** A notice for each backup part whose newest record failed. */
export function backupNotices(host: string, histories: readonly BackupHistory[]): Notice[] {
  const out: Notice[] = [];
  for (const h of histories) {
    const newest = new Map<string, BackupHistory['records'][number]>();
    for (const r of h.records) newest.set(r.part, r);
    for (const [part, r] of newest) {
      if (r.ok) continue;
      out.push({
        kind: 'backup-failed',
        host,
        subject: `${host}: backup of ${h.project} (${part}) failed at ${r.at}`,
        ...(r.error ? { detail: r.error } : {}),
        key: `backup/${host}/${h.project}/${part}/${r.at}`,
      });
    }
  }
  return out;
}

/** Hosts whose last report is older than `staleAfterMs`, as another host's agent sees them. */
export function staleNotices(stale: readonly { host: string; lastReport: string | null }[]): Notice[] {
  return stale.map((s) => ({
    kind: 'stale' as const,
    host: s.host,
    subject: `${s.host}: no report since ${s.lastReport ?? 'ever'}: its agent may be down`,
    key: `stale/${s.host}/${s.lastReport}`,
  }));
}
