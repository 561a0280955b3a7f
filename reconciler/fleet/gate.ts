import type { ReportResult } from '../report/status.js';
import type { RolloutPolicy } from './policy.js';
import { allowedFailures, assignWaves, type FleetHost } from './waves.js';

/** What the gate reads of a host's last report on the report branch. */
export interface ReportedStatus {
  commit?: string;
  result: ReportResult;
  /** When the run that produced the result ended (ISO). */
  finishedAt: string;
  /** Health checks of that run; a failing one counts as a failure. */
  health?: { ok: boolean }[];
}

/** The operator's last word on the rollout (`hostkit fleet rollout pause|resume|abort`). */
export interface RolloutDecision {
  action: 'pause' | 'resume' | 'abort';
  /** The commit the decision was made about (abort holds only that commit). */
  commit?: string;
  at: string;
  by?: string;
}

export type GateState = 'waiting' | 'halted' | 'paused' | 'aborted';

export type GateResult =
  | { go: true; wave?: number; batch?: number }
  | {
      go: false;
      state: GateState;
      /** The wave the rollout stands at (halted at, or waiting for). */
      wave: number;
      reason: string;
      /** When a bake ends: asking again earlier gives the same answer. */
      retryAt?: number;
      /**
       * Hosts whose reports cannot change the answer (every host but those of the earlier waves and batches): a
       * waiting agent need not look again when one of them reports. Absent when the answer waits on the operator
       * (paused, aborted) or on the policy.
       */
      unaffectedBy?: string[];
    };

export interface GateInput {
  policy: RolloutPolicy;
  hosts: readonly FleetHost[];
  host: string;
  commit: string;
  reports: ReadonlyMap<string, ReportedStatus>;
  decision?: RolloutDecision;
  now: number;
}

const FAILED: readonly ReportResult[] = ['rolled-back', 'held', 'invalid', 'error'];

function failed(r: ReportedStatus | undefined, commit: string): boolean {
  return r?.commit === commit && (FAILED.includes(r.result) || (r.health ?? []).some((h) => !h.ok));
}

function applied(r: ReportedStatus | undefined, commit: string): r is ReportedStatus {
  return r?.commit === commit && (r.result === 'applied' || r.result === 'no-changes');
}

/**
 * Whether `host` may apply `commit` now. Every host of an earlier step (wave
 * or batch) must have reported, at this very commit, the run applied and
 * healthy for its wave's bake time; failed hosts beyond a wave's maxFailures
 * halt every later step. Hosts no wave chooses go at once. Pure: the agent
 * feeds it the report branch as it is now, and asks again on the next trigger.
 */
export function gate(input: GateInput): GateResult {
  const { policy, hosts, host, commit, reports, decision, now } = input;
  const { slots, members } = assignWaves(policy, hosts);
  const mine = slots.get(host);
  if (!mine) return { go: true };
  if (decision?.action === 'abort' && decision.commit === commit) {
    return { go: false, state: 'aborted', wave: mine.wave.number, reason: `rollout of ${commit.slice(0, 12)} aborted at ${decision.at}` };
  }
  if (decision?.action === 'pause') return { go: false, state: 'paused', wave: mine.wave.number, reason: `rollout paused at ${decision.at}` };
  const unaffectedBy = hosts.filter((h) => (slots.get(h.name)?.step ?? Infinity) >= mine.step).map((h) => h.name);
  for (const wave of policy.waves) {
    if (wave.number > mine.wave.number) break;
    const names = members.get(wave.number) ?? [];
    const earlier = names.filter((n) => slots.get(n)!.step < mine.step);
    if (earlier.length === 0) continue;
    const failures = earlier.filter((n) => failed(reports.get(n), commit));
    const allowed = allowedFailures(wave.maxFailures, names.length);
    if (failures.length > allowed) {
      return {
        go: false,
        state: 'halted',
        wave: wave.number,
        reason: `held by rollout at wave ${wave.number} (${wave.name}): ${failures.length} host(s) failed (${failures.join(', ')}), ${allowed} allowed`,
        unaffectedBy,
      };
    }
    let retryAt: number | undefined;
    for (const name of earlier) {
      const r = reports.get(name);
      if (failed(r, commit)) continue;
      if (!applied(r, commit)) {
        return {
          go: false,
          state: 'waiting',
          wave: wave.number,
          reason: `waiting for wave ${wave.number} (${wave.name}): ${name} has not reported ${commit.slice(0, 12)} applied`,
          unaffectedBy,
        };
      }
      const baked = Date.parse(r.finishedAt) + wave.bakeMs;
      if (baked > now) retryAt = Math.max(retryAt ?? 0, baked);
    }
    if (retryAt !== undefined) {
      return {
        go: false,
        state: 'waiting',
        wave: wave.number,
        reason: `waiting for wave ${wave.number} (${wave.name}) to bake until ${new Date(retryAt).toISOString()}`,
        retryAt,
        unaffectedBy,
      };
    }
  }
  return { go: true, wave: mine.wave.number, batch: mine.batch };
}
