import type { Logger } from 'pino';
import type { GitSource } from '../sources/git.js';
import { gate, type GateResult } from './gate.js';
import { readRolloutAt } from './policy.js';
import { fleetHosts, readFleetState, type FleetState } from './reports.js';

export interface RolloutGateOptions {
  source: Pick<GitSource, 'gitdir' | 'fetchBranch'>;
  host: string;
  reportBranch: string;
  log: Logger;
  now?: () => number;
}

/**
 * The agent's side of a rollout: before a new commit is applied, read the
 * commit's rollout policy and Host manifests, fetch the report branch, and ask
 * the gate. A commit without a policy goes at once. An invalid policy holds
 * every host (nothing is rolled out under a policy nobody can read).
 */
export class RolloutGate {
  private readonly options: RolloutGateOptions;

  constructor(options: RolloutGateOptions) {
    this.options = options;
  }

  /** `repoDir` is the commit's snapshot (its Host manifests give the waves their hosts). */
  async check(commit: string, repoDir: string): Promise<GateResult> {
    const { source, host, reportBranch, log } = this.options;
    const policy = await readRolloutAt(source.gitdir, commit);
    if (!policy) return { go: true };
    if (!policy.ok) {
      const first = policy.diagnostics[0];
      return { go: false, state: 'halted', wave: 0, reason: `the rollout policy is invalid: ${first ? `${first.summary}: ${first.detail}` : 'unknown error'}` };
    }
    const tip = await source.fetchBranch(reportBranch);
    const fleet: FleetState = tip ? await readFleetState(source.gitdir, tip) : { reports: new Map(), unreadable: [] };
    const result = gate({
      policy: policy.policy,
      hosts: await fleetHosts(repoDir),
      host,
      commit,
      reports: fleet.reports,
      ...(fleet.decision ? { decision: fleet.decision } : {}),
      now: (this.options.now ?? Date.now)(),
    });
    log.debug({ commit, reportTip: tip, result }, 'rollout gate');
    return result;
  }
}
