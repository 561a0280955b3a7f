// The fleet as the report branch tells it: each host's last status file
// (status/HOST.json, written only by that host's agent) and the operator's
// last rollout decision (rollout/decision.json). Read with isomorphic-git from
// a git directory that fetched the branch; nothing is checked out.
import fs from 'node:fs';
import { loadRepository } from '../manifests/load.js';
import type { HostReport } from '../report/status.js';
import type { RolloutDecision } from './gate.js';
import type { FleetHost } from './waves.js';

/** The decision file on the report branch. */
export const DECISION_FILE = 'rollout/decision.json';

export interface FleetState {
  /** The report branch commit read. */
  tip?: string;
  reports: Map<string, HostReport>;
  decision?: RolloutDecision;
  /** Status files that could not be parsed (named, never guessed at). */
  unreadable: string[];
}

/** Read the report branch at `ref` (a ref or commit of `gitdir`); an absent ref is an empty fleet. */
export async function readFleetState(gitdir: string, ref: string): Promise<FleetState> {
  const git = await import('isomorphic-git');
  const state: FleetState = { reports: new Map(), unreadable: [] };
  let tip: string;
  try {
    tip = await git.resolveRef({ fs, gitdir, ref });
  } catch {
    return state;
  }
  state.tip = tip;
  const cache = {};
  let entries: { path: string; oid: string; type: string }[] = [];
  try {
    entries = (await git.readTree({ fs, gitdir, oid: tip, filepath: 'status', cache })).tree;
  } catch {
    // no status/ yet
  }
  for (const e of entries) {
    if (e.type !== 'blob' || !e.path.endsWith('.json')) continue;
    try {
      const { blob } = await git.readBlob({ fs, gitdir, oid: e.oid, cache });
      const report = JSON.parse(Buffer.from(blob).toString('utf8')) as HostReport;
      if (typeof report.host === 'string' && `${report.host}.json` === e.path) state.reports.set(report.host, report);
      else state.unreadable.push(`status/${e.path}`);
    } catch {
      state.unreadable.push(`status/${e.path}`);
    }
  }
  try {
    const { blob } = await git.readBlob({ fs, gitdir, oid: tip, filepath: DECISION_FILE, cache });
    state.decision = JSON.parse(Buffer.from(blob).toString('utf8')) as RolloutDecision;
  } catch {
    // no decision yet: the rollout runs
  }
  return state;
}

/** The fleet's hosts and labels: every Host manifest in a snapshot of the config repository. */
export async function fleetHosts(repoDir: string): Promise<FleetHost[]> {
  const { documents } = await loadRepository(repoDir);
  const hosts: FleetHost[] = [];
  for (const d of documents) {
    const v = d.value as { kind?: unknown; metadata?: { name?: unknown; labels?: Record<string, string> } } | null;
    if (v?.kind === 'Host' && typeof v.metadata?.name === 'string') hosts.push({ name: v.metadata.name, labels: v.metadata.labels ?? {} });
  }
  return hosts;
}
