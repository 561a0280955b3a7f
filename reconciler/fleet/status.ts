import type { HostReport, ReportResult } from '../report/status.js';
import { gate, type RolloutDecision } from './gate.js';
import type { RolloutPolicy } from './policy.js';
import { assignWaves, type FleetHost } from './waves.js';

/** A host's report older than this is stale by default: an agent reports at least hourly (drift checks). */
export const DEFAULT_STALE_AFTER_MS = 3 * 3_600_000;

/** One host of `hostkit fleet status`. */
export interface FleetRow {
  host: string;
  commit: string | null;
  result: ReportResult | 'never reported';
  summary: string;
  wave: number | null;
  /** A newer commit the host holds back from, and why. */
  held: { commit: string; state: string; wave: number; reason: string } | null;
  /** Resources that differ from the applied commit by hand (renewals owed by time not counted). */
  drift: number;
  /** The certificate that expires first, if the host has any. */
  certificateExpiry: { id: string; notAfter: string } | null;
  lastReport: string | null;
  stale: boolean;
}

/** When the host last said anything: its run, its last drift check, or its last rollout hold. */
export function lastReportTime(r: HostReport): string {
  const times = [r.finishedAt, r.drift?.checkedAt, r.rollout?.held?.since].filter((t): t is string => typeof t === 'string');
  return times.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));
}

/**
 * The fleet as the report branch says, one row per host: every host that has a
 * Host manifest at `hosts` (never reported: stale) and every host with a status
 * file, in name order.
 */
export function fleetRows(input: {
  reports: ReadonlyMap<string, HostReport>;
  hosts: readonly FleetHost[];
  policy?: RolloutPolicy;
  now: number;
  staleAfterMs?: number;
}): FleetRow[] {
  const { reports, hosts, policy, now } = input;
  const staleAfter = input.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const slots = policy ? assignWaves(policy, hosts).slots : new Map();
  const names = [...new Set([...hosts.map((h) => h.name), ...reports.keys()])].sort();
  return names.map((host): FleetRow => {
    const r = reports.get(host);
    const wave = r?.rollout?.wave ?? slots.get(host)?.wave.number ?? null;
    if (!r) {
      return { host, commit: null, result: 'never reported', summary: '', wave, held: null, drift: 0, certificateExpiry: null, lastReport: null, stale: true };
    }
    const last = lastReportTime(r);
    const certs = [...(r.certificates ?? [])].sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter));
    const held = r.rollout?.held;
    return {
      host,
      commit: r.commit ?? null,
      result: r.result,
      summary: r.summary,
      wave,
      held: held ? { commit: held.commit, state: held.state, wave: held.wave, reason: held.reason } : null,
      drift: (r.drift?.resources ?? []).filter((e) => e.owedBy !== 'time').length,
      certificateExpiry: certs[0] ?? null,
      lastReport: last,
      stale: now - Date.parse(last) > staleAfter,
    };
  });
}

/** Where a commit stands in the waves (`hostkit fleet rollout`). */
export interface WaveProgress {
  number: number;
  name: string;
  hosts: number;
  /** Reported the commit applied (or no changes). */
  applied: string[];
  /** Reported the commit failed. */
  failed: string[];
  /** Not yet at the commit. */
  pending: string[];
  /** What the gate says to the wave's first pending host (why it waits), if any. */
  gate: string | null;
}

export function rolloutProgress(input: {
  policy: RolloutPolicy;
  hosts: readonly FleetHost[];
  reports: ReadonlyMap<string, HostReport>;
  commit: string;
  decision?: RolloutDecision;
  now: number;
}): WaveProgress[] {
  const { policy, hosts, reports, commit, decision, now } = input;
  const { members } = assignWaves(policy, hosts);
  return policy.waves.map((wave) => {
    const names = members.get(wave.number) ?? [];
    const at = (n: string) => reports.get(n)?.commit === commit;
    const applied = names.filter((n) => at(n) && ['applied', 'no-changes'].includes(reports.get(n)!.result));
    const failed = names.filter((n) => at(n) && !applied.includes(n));
    const pending = names.filter((n) => !at(n));
    const first = pending[0];
    const verdict = first ? gate({ policy, hosts, host: first, commit, reports, ...(decision ? { decision } : {}), now }) : undefined;
    return {
      number: wave.number,
      name: wave.name,
      hosts: names.length,
      applied,
      failed,
      pending,
      gate: verdict === undefined ? null : verdict.go ? 'may apply now' : verdict.reason,
    };
  });
}
