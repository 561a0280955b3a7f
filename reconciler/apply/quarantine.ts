import path from 'node:path';
import type { Host } from '../hosts/types.js';
import { readJson, writeJson } from './state-file.js';

// Deploy-loop protection, kept in STATE/safety.json so the CLI and the agent
// see the same thing: a commit whose apply failed is quarantined (not retried
// until a new commit or `hostkit resume`), and a project that failed
// `pauseAfterFailures` times within `failureWindow` is paused: its changes are
// held back until a commit changes the project or `hostkit resume`. A project
// an operator moved to a kept release (`hostkit rollback --project P --to ID`)
// is held there: the release driver keeps it on that release until a commit
// changes its release spec (source, build, releases, shared) or `hostkit resume`.

export interface DeployPolicy {
  pauseAfterFailures: number;
  failureWindowMs: number;
}

export const DEFAULT_POLICY: DeployPolicy = { pauseAfterFailures: 3, failureWindowMs: 60 * 60 * 1000 };

export interface QuarantineEntry {
  commit: string;
  at: string;
  run?: string;
  reason: string;
  projects: string[];
}

export interface PauseEntry {
  project: string;
  at: string;
  /** The project's desired state when it was paused: a commit that changes it un-pauses it. */
  fingerprint: string;
  failures: number;
  reason: string;
}

export interface HoldEntry {
  project: string;
  /** The release the project is held on. */
  release: string;
  at: string;
  /** holdDigest (drivers/release/records.ts) of the project's release spec when it was held: a commit that changes it ends the hold. */
  specDigest: string;
  /** The run that switched to the release. */
  run?: string;
}

export interface SafetyState {
  version: 1;
  quarantined: Record<string, QuarantineEntry>;
  failures: Record<string, { at: string; commit?: string; run?: string }[]>;
  paused: Record<string, PauseEntry>;
  held: Record<string, HoldEntry>;
}

export function safetyPath(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'safety.json');
}

/** STATE/safety.json as it is now (empty when missing); pausedProjects takes what one read gave. */
export async function loadSafety(host: Host, stateDirectory: string): Promise<SafetyState> {
  const s = await readJson<SafetyState>(host, safetyPath(stateDirectory));
  if (!s || s.version !== 1) return { version: 1, quarantined: {}, failures: {}, paused: {}, held: {} };
  return { version: 1, quarantined: s.quarantined ?? {}, failures: s.failures ?? {}, paused: s.paused ?? {}, held: s.held ?? {} };
}

export interface FailureInput {
  commit?: string;
  run?: string;
  reason: string;
  /** The projects the failure is charged to, with their current fingerprint. */
  projects: { name: string; fingerprint: string }[];
  at?: Date;
}

/** Quarantine the commit and count a failure against each project; pause those over the limit. Returns the projects paused now. */
export async function recordFailure(
  host: Host,
  stateDirectory: string,
  failure: FailureInput,
  policy: DeployPolicy = DEFAULT_POLICY,
): Promise<{ quarantined: boolean; paused: PauseEntry[] }> {
  const state = await loadSafety(host, stateDirectory);
  const now = failure.at ?? new Date();
  const at = now.toISOString();
  if (failure.commit) {
    state.quarantined[failure.commit] = {
      commit: failure.commit,
      at,
      reason: failure.reason,
      projects: failure.projects.map((p) => p.name),
      ...(failure.run ? { run: failure.run } : {}),
    };
  }
  const paused: PauseEntry[] = [];
  for (const p of failure.projects) {
    const recent = (state.failures[p.name] ?? []).filter((f) => now.getTime() - Date.parse(f.at) < policy.failureWindowMs);
    recent.push({ at, ...(failure.commit ? { commit: failure.commit } : {}), ...(failure.run ? { run: failure.run } : {}) });
    state.failures[p.name] = recent;
    if (recent.length >= policy.pauseAfterFailures && !state.paused[p.name]) {
      const entry = { project: p.name, at, fingerprint: p.fingerprint, failures: recent.length, reason: failure.reason };
      state.paused[p.name] = entry;
      paused.push(entry);
    }
  }
  await writeJson(host, safetyPath(stateDirectory), state);
  return { quarantined: failure.commit !== undefined, paused };
}

export async function isQuarantined(host: Host, stateDirectory: string, commit: string | undefined): Promise<QuarantineEntry | undefined> {
  if (!commit) return undefined;
  return (await loadSafety(host, stateDirectory)).quarantined[commit];
}

export async function isPaused(host: Host, stateDirectory: string, project: string): Promise<PauseEntry | undefined> {
  return (await loadSafety(host, stateDirectory)).paused[project];
}

/**
 * The projects still paused, given their current fingerprints. A project whose
 * fingerprint changed (a new commit changed it) is un-paused and its failure
 * count reset; those are returned as `released`.
 */
export async function pausedProjects(
  host: Host,
  stateDirectory: string,
  fingerprints: ReadonlyMap<string, string>,
  loaded?: SafetyState,
): Promise<{ paused: PauseEntry[]; released: PauseEntry[] }> {
  const state = loaded ?? (await loadSafety(host, stateDirectory));
  const paused: PauseEntry[] = [];
  const released: PauseEntry[] = [];
  for (const entry of Object.values(state.paused)) {
    const now = fingerprints.get(entry.project);
    if (now !== undefined && now !== entry.fingerprint) {
      released.push(entry);
      delete state.paused[entry.project];
      delete state.failures[entry.project];
    } else if (now !== undefined) paused.push(entry);
  }
  if (released.length > 0) await writeJson(host, safetyPath(stateDirectory), state);
  return { paused, released };
}

/** Hold `project` on `release` (replacing a hold it had). */
export async function holdRelease(host: Host, stateDirectory: string, hold: Omit<HoldEntry, 'at'> & { at?: Date }): Promise<HoldEntry> {
  const state = await loadSafety(host, stateDirectory);
  const entry: HoldEntry = {
    project: hold.project,
    release: hold.release,
    at: (hold.at ?? new Date()).toISOString(),
    specDigest: hold.specDigest,
    ...(hold.run ? { run: hold.run } : {}),
  };
  state.held[hold.project] = entry;
  await writeJson(host, safetyPath(stateDirectory), state);
  return entry;
}

/** The hold on `project`, if any. A plan reads it; whether it still binds is the caller's to decide (its specDigest against holdDigest of the spec). */
export async function heldRelease(host: Host, stateDirectory: string, project: string): Promise<HoldEntry | undefined> {
  return (await loadSafety(host, stateDirectory)).held[project];
}

/** End the hold on `project` (its rollback run failed, or a commit changed its release spec); returns it, or undefined when there was none. */
export async function releaseHold(host: Host, stateDirectory: string, project: string): Promise<HoldEntry | undefined> {
  const state = await loadSafety(host, stateDirectory);
  const entry = state.held[project];
  if (!entry) return undefined;
  delete state.held[project];
  await writeJson(host, safetyPath(stateDirectory), state);
  return entry;
}

export interface SafetyStatus {
  quarantined: QuarantineEntry[];
  paused: PauseEntry[];
  held: HoldEntry[];
}

export async function safetyStatus(host: Host, stateDirectory: string): Promise<SafetyStatus> {
  const state = await loadSafety(host, stateDirectory);
  return { quarantined: Object.values(state.quarantined), paused: Object.values(state.paused), held: Object.values(state.held) };
}

/** Lift quarantines, pauses and release holds (all of them, or one project's / one commit's); returns what was lifted. */
export async function resume(host: Host, stateDirectory: string, only: { project?: string; commit?: string } = {}): Promise<SafetyStatus> {
  const state = await loadSafety(host, stateDirectory);
  const lifted: SafetyStatus = { quarantined: [], paused: [], held: [] };
  for (const [commit, q] of Object.entries(state.quarantined)) {
    const match = only.commit ? commit.startsWith(only.commit) : only.project ? q.projects.includes(only.project) : true;
    if (match) {
      lifted.quarantined.push(q);
      delete state.quarantined[commit];
    }
  }
  for (const [project, p] of Object.entries(state.paused)) {
    if (only.commit || (only.project && only.project !== project)) continue;
    lifted.paused.push(p);
    delete state.paused[project];
    delete state.failures[project];
  }
  for (const [project, h] of Object.entries(state.held)) {
    if (only.commit || (only.project && only.project !== project)) continue;
    lifted.held.push(h);
    delete state.held[project];
  }
  if (!only.commit && !only.project) state.failures = {};
  await writeJson(host, safetyPath(stateDirectory), state);
  return lifted;
}
