// `hostkit fleet status` and `hostkit fleet rollout [pause|resume|abort]`: the
// fleet as the report branch tells it, read from the shared repository (no
// central server), and the operator's rollout decision written there as a
// commit that every agent reads before it applies a new commit.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parseDuration } from '../core/duration.js';
import { createLogger } from '../core/log.js';
import { HostKitError } from '../core/errors.js';
import type { RolloutDecision } from '../fleet/gate.js';
import { readRolloutAt, type RolloutPolicy } from '../fleet/policy.js';
import { DECISION_FILE, fleetHosts, readFleetState, type FleetState } from '../fleet/reports.js';
import { fleetRows, rolloutProgress, type FleetRow, type WaveProgress } from '../fleet/status.js';
import type { FleetHost } from '../fleet/waves.js';
import { ReportWriter } from '../report/writeback.js';
import { GitSource, redactUrl } from '../sources/git.js';

export interface FleetOptions {
  repo: string;
  branch: string;
  reportBranch: string;
  output: 'text' | 'json';
  staleAfter?: string;
}

/** A clone (its origin is the shared repository), or anything git can fetch (a bare repository, a URL). */
export async function repositoryUrl(repo: string): Promise<string> {
  if (!existsSync(path.join(repo, '.git'))) return repo;
  const r = await execa('git', ['-C', repo, 'remote', 'get-url', 'origin'], { reject: false });
  if (r.exitCode !== 0 || !r.stdout.trim()) {
    throw new HostKitError('FLEET_NO_ORIGIN', `${repo} is a clone without an origin remote; pass --repo the shared repository's URL or path`);
  }
  return r.stdout.trim();
}

interface FleetView {
  url: string;
  commit: string;
  policy?: RolloutPolicy;
  hosts: FleetHost[];
  fleet: FleetState;
}

// Fetch the watched branch and the report branch into a scratch mirror, read both, and remove it.
async function readFleet(opts: FleetOptions): Promise<FleetView> {
  const url = await repositoryUrl(opts.repo);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'hostkit-fleet-'));
  try {
    const log = createLogger({ level: 'error' });
    const source = new GitSource({ url, branch: opts.branch, stateDirectory: scratch, log });
    const commit = await source.fetch();
    const tip = await source.fetchBranch(opts.reportBranch);
    const fleet: FleetState = tip ? await readFleetState(source.gitdir, tip) : { reports: new Map(), unreadable: [] };
    const policy = await readRolloutAt(source.gitdir, commit);
    if (policy && !policy.ok) {
      const d = policy.diagnostics[0];
      throw new HostKitError(
        'ROLLOUT_INVALID',
        `The rollout policy at ${commit.slice(0, 12)} is invalid: ${d ? `${d.summary}: ${d.detail}` : 'unknown error'}`,
      );
    }
    const hosts = await fleetHosts(await source.snapshot(commit));
    return { url, commit, ...(policy?.ok ? { policy: policy.policy } : {}), hosts, fleet };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 12) : '-');

export function renderFleetRows(commit: string, rows: readonly FleetRow[]): string {
  const table = [['HOST', 'COMMIT', 'RESULT', 'WAVE', 'DRIFT', 'CERT EXPIRES', 'LAST REPORT', '']];
  for (const r of rows) {
    table.push([
      r.host,
      short(r.commit) + (r.commit === commit ? '' : r.commit ? ' (older)' : ''),
      r.result,
      r.wave === null ? '-' : String(r.wave),
      String(r.drift),
      r.certificateExpiry ? r.certificateExpiry.notAfter.slice(0, 10) : '-',
      r.lastReport ?? '-',
      r.stale ? 'STALE' : '',
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  for (const r of rows) if (r.held) lines.push(`${r.host}: ${short(r.held.commit)} ${r.held.reason}`);
  return `branch head ${short(commit)}\n${lines.join('\n')}\n`;
}

/** `fleet status -o json`: these keys, always present (null or empty when there is nothing). */
export function statusDocument(commit: string, fleet: FleetState, rows: readonly FleetRow[]) {
  return { commit, reportCommit: fleet.tip ?? null, hosts: rows, unreadable: fleet.unreadable };
}

/** `fleet rollout -o json`: the same keys with or without a policy (`policy` its name, or null and no waves). */
export function rolloutDocument(commit: string, policy: RolloutPolicy | undefined, decision: RolloutDecision | undefined, waves: readonly WaveProgress[]) {
  return { commit, policy: policy?.name ?? null, decision: decision ?? null, waves };
}

/** `hostkit fleet status`: one row per host from the report branch; stale hosts flagged. */
export async function fleetStatus(opts: FleetOptions): Promise<number> {
  const staleAfterMs = opts.staleAfter ? parseDuration(opts.staleAfter) : undefined;
  if (opts.staleAfter && staleAfterMs === undefined)
    throw new HostKitError('BAD_OPTION', `Expected --stale-after as a duration (30m, 3h), got ${opts.staleAfter}`);
  const view = await readFleet(opts);
  const rows = fleetRows({
    reports: view.fleet.reports,
    hosts: view.hosts,
    ...(view.policy ? { policy: view.policy } : {}),
    now: Date.now(),
    ...(staleAfterMs ? { staleAfterMs } : {}),
  });
  if (opts.output === 'json') {
    process.stdout.write(JSON.stringify(statusDocument(view.commit, view.fleet, rows), null, 2) + '\n');
  } else {
    process.stdout.write(renderFleetRows(view.commit, rows));
    for (const f of view.fleet.unreadable) process.stdout.write(`unreadable status file: ${f}\n`);
  }
  return 0;
}

export function renderProgress(commit: string, waves: readonly WaveProgress[], decision: RolloutDecision | undefined): string {
  // A pause holds every commit until resume; an abort only the commit it names (the next one rolls out).
  const standing = decision?.action === 'pause' || (decision?.action === 'abort' && decision.commit === commit);
  const by = decision?.by ? ` by ${decision.by}` : '';
  const out = [`rollout of ${short(commit)}${standing ? ` (${decision.action === 'pause' ? 'paused' : 'aborted'}${by} at ${decision.at})` : ''}`];
  for (const w of waves) {
    out.push(`wave ${w.number} ${w.name}: ${w.applied.length}/${w.hosts} applied, ${w.failed.length} failed, ${w.pending.length} pending`);
    if (w.failed.length > 0) out.push(`  failed: ${w.failed.join(', ')}`);
    if (w.gate) out.push(`  next: ${w.gate}`);
  }
  return out.join('\n') + '\n';
}

/** `hostkit fleet rollout`: where the branch head stands in the waves; with an action, the decision committed. */
export async function fleetRollout(action: string | undefined, opts: FleetOptions): Promise<number> {
  if (action !== undefined && !['pause', 'resume', 'abort'].includes(action)) {
    throw new HostKitError('BAD_OPTION', `Expected pause, resume or abort, got ${action}`);
  }
  const view = await readFleet(opts);
  if (action) {
    const decision: RolloutDecision = {
      action: action as RolloutDecision['action'],
      commit: view.commit,
      at: new Date().toISOString(),
      by: `${os.userInfo().username}@${os.hostname()}`,
    };
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'hostkit-fleet-'));
    try {
      const writer = new ReportWriter({
        url: view.url,
        branch: opts.reportBranch,
        dir: scratch,
        author: { name: 'HostKit fleet', email: 'hostkit@localhost' },
        log: createLogger({ level: 'error' }),
      });
      const written = await writer.write(
        { [DECISION_FILE]: JSON.stringify(decision, null, 2) + '\n' },
        `rollout ${action} at ${view.commit.slice(0, 12)} by ${decision.by}`,
      );
      if (opts.output === 'json') process.stdout.write(JSON.stringify({ decision, reportCommit: written.commit ?? null }, null, 2) + '\n');
      else process.stdout.write(`rollout ${action}: committed ${short(written.commit)} on ${opts.reportBranch} of ${redactUrl(view.url)}\n`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    return 0;
  }
  const waves = view.policy
    ? rolloutProgress({
        policy: view.policy,
        hosts: view.hosts,
        reports: view.fleet.reports,
        commit: view.commit,
        ...(view.fleet.decision ? { decision: view.fleet.decision } : {}),
        now: Date.now(),
      })
    : [];
  if (opts.output === 'json') process.stdout.write(JSON.stringify(rolloutDocument(view.commit, view.policy, view.fleet.decision, waves), null, 2) + '\n');
  else if (!view.policy) process.stdout.write(`no rollout policy (.hostkit/rollout.yaml) at ${short(view.commit)}: every host applies a new commit at once\n`);
  else process.stdout.write(renderProgress(view.commit, waves, view.fleet.decision));
  return 0;
}
