// A saved plan (`hostkit plan --out FILE`) as data: what it records of a plan and
// of the host the plan read, and how a new plan of the same host differs from it.
// Applying one (`hostkit reconcile --plan FILE`) plans again and applies only if
// nothing differs, as Terraform refuses a stale saved plan: the plan's own changes
// carry no secret and no host bytes, so they cannot be applied from the file alone.
import { createHmac } from 'node:crypto';
import type { ResourceKind } from '../core/resource.js';
import type { Manifest } from '../manifests/types.js';
import { summarize, type Change, type Plan } from './model.js';
import type { PlannedHost } from './plan.js';
import { toJsonPlan, type JsonPlan } from './render/json.js';

/** What the file says it is; a saved plan of another format version is refused, not guessed at. */
export const SAVED_PLAN_FORMAT = 'hostkit-saved-plan';
export const SAVED_PLAN_VERSION = 1;

/** One resource of the plan: fingerprints of what its driver observed on the host and what it desired. */
export interface SavedResource {
  id: string;
  kind: string;
  observed: string;
  desired: string;
}

/** The file's content (schema/saved-plan.schema.json). */
export interface SavedPlan {
  format: typeof SAVED_PLAN_FORMAT;
  formatVersion: typeof SAVED_PLAN_VERSION;
  /** The HostKit that made it; only the same version applies it. */
  hostkitVersion: string;
  createdAt: string;
  host: string;
  /** The config repository's commit the manifests were read at. */
  commit: string;
  repository: string;
  /** Which host key the fingerprints are made under (an HMAC of a fixed text): another key is another host, or a replaced key. */
  fingerprintKey: string;
  /** The manifests the plan read, as one fingerprint: an uncommitted edit since the plan is seen even at the same commit. */
  manifests: string;
  resources: SavedResource[];
  /** The plan as `-o json` shows it (schema/plan.schema.json): its changes are what an apply of this file applies. */
  plan: JsonPlan;
}

/** Why a new plan is not the saved one. */
export interface Staleness {
  /** The repository is at another commit. */
  commit?: { saved: string; now?: string };
  /** The host's fingerprint key is not the one the plan's fingerprints were made under. */
  key?: true;
  /** Same commit, other manifests (uncommitted changes). */
  manifests?: true;
  /** Each resource that differs, in plan order, and how. */
  resources: { id: string; why: StaleReason[] }[];
}

export type StaleReason = 'observed state' | 'desired state' | 'planned change' | 'new since the plan' | 'no longer planned';

const KEY_PROBE = 'hostkit saved plan';

/**
 * A fingerprint of any value HostKit holds (desired state may hold a secret, observed state the
 * bytes of a file HostKit did not write): HMAC-SHA-256 under the host's fingerprint key over a
 * canonical JSON of it, so the file gives nobody a hash to test guesses of a secret against.
 */
export function stateFingerprint(key: Buffer, value: unknown): string {
  return `hmac-sha256:${createHmac('sha256', key).update(canonicalJson(value)).digest('hex')}`;
}

/**
 * One text per value, whatever the order its object keys were set in: bytes as base64, Maps and
 * Sets as sorted entries, functions and undefined left out (as JSON does). Throws on a cycle.
 */
export function canonicalJson(value: unknown): string {
  const stack = new Set<object>();
  const walk = (v: unknown): string => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'bigint') return JSON.stringify(`${v}n`);
    if (typeof v !== 'object') return typeof v === 'function' || typeof v === 'symbol' ? 'null' : JSON.stringify(v);
    if (stack.has(v)) throw new Error('canonicalJson: the value refers to itself');
    stack.add(v);
    try {
      if (v instanceof Uint8Array) return `{"$bytes":${JSON.stringify(Buffer.from(v).toString('base64'))}}`;
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      if (Array.isArray(v)) return `[${v.map(walk).join(',')}]`;
      if (v instanceof Map)
        return `{"$map":[${[...v]
          .map(([k, x]) => `[${walk(k)},${walk(x)}]`)
          .sort()
          .join(',')}]}`;
      if (v instanceof Set) return `{"$set":[${[...v].map(walk).sort().join(',')}]}`;
      const entries = Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined && typeof x !== 'function' && typeof x !== 'symbol')
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${walk(x)}`).join(',')}}`;
    } finally {
      stack.delete(v);
    }
  };
  return walk(value);
}

/** The plan as it may leave HostKit: its public JSON form, scrubbed of every secret value the run resolved. */
export function publicPlan(planned: PlannedHost): JsonPlan {
  return JSON.parse(planned.redactor.scrub(JSON.stringify(toJsonPlan(planned.plan)))) as JsonPlan;
}

/** What a resource's desired fingerprint covers: its spec as the manifests wrote it, and what its driver resolved. */
function desiredOf(change: Change, planned: PlannedHost): unknown {
  const desired = planned.states.get(change.id)?.desired;
  const stable = planned.drivers.get(change.kind)?.stableDesired;
  return { spec: change.resource?.spec, desired: desired !== undefined && stable ? stable(desired) : desired };
}

function resourcesOf(planned: PlannedHost): SavedResource[] {
  const key = planned.context.digestKey;
  return planned.plan.changes.map((c) => ({
    id: c.id,
    kind: c.kind,
    observed: stateFingerprint(key, planned.states.get(c.id)?.observed),
    desired: stateFingerprint(key, desiredOf(c, planned)),
  }));
}

function manifestsFingerprint(key: Buffer, manifests: readonly Manifest[]): string {
  return stateFingerprint(
    key,
    manifests.map((m) => ({ kind: m.kind, name: m.name, file: m.source.file, value: m.value })),
  );
}

/** The saved plan of `planned` (made from `manifests` at `planned.plan.commit`, which a saved plan needs). */
export function savePlan(planned: PlannedHost, manifests: readonly Manifest[], made: { hostkitVersion: string; createdAt: Date }): SavedPlan {
  const key = planned.context.digestKey;
  const commit = planned.plan.commit;
  if (!commit) throw new Error('savePlan: the plan names no commit');
  return {
    format: SAVED_PLAN_FORMAT,
    formatVersion: SAVED_PLAN_VERSION,
    hostkitVersion: made.hostkitVersion,
    createdAt: made.createdAt.toISOString(),
    host: planned.plan.host,
    commit,
    repository: planned.plan.repository,
    fingerprintKey: stateFingerprint(key, KEY_PROBE),
    manifests: manifestsFingerprint(key, manifests),
    resources: resourcesOf(planned),
    plan: publicPlan(planned),
  };
}

/**
 * How a new plan of the same host (`planned`, from `manifests`) differs from the saved one;
 * undefined when it does not: then applying `planned` applies exactly the saved plan's changes.
 */
export function staleness(saved: SavedPlan, planned: PlannedHost, manifests: readonly Manifest[]): Staleness | undefined {
  const key = planned.context.digestKey;
  const out: Staleness = { resources: [] };
  if (planned.plan.commit !== saved.commit) out.commit = { saved: saved.commit, ...(planned.plan.commit ? { now: planned.plan.commit } : {}) };
  // Under another key every fingerprint differs: saying so once says more than naming every resource.
  if (stateFingerprint(key, KEY_PROBE) !== saved.fingerprintKey) out.key = true;
  else if (!out.commit && manifestsFingerprint(key, manifests) !== saved.manifests) out.manifests = true;
  const then = new Map(saved.resources.map((r) => [r.id, r]));
  const thenChanges = new Map(saved.plan.changes.map((c) => [c.id, canonicalJson(c)]));
  const nowChanges = new Map(publicPlan(planned).changes.map((c) => [c.id, canonicalJson(c)]));
  for (const r of resourcesOf(planned)) {
    const was = then.get(r.id);
    const why: StaleReason[] = [];
    if (!was) why.push('new since the plan');
    else {
      if (!out.key && was.observed !== r.observed) why.push('observed state');
      if (!out.key && was.desired !== r.desired) why.push('desired state');
      if (thenChanges.get(r.id) !== nowChanges.get(r.id)) why.push('planned change');
    }
    if (why.length > 0) out.resources.push({ id: r.id, why });
  }
  for (const r of saved.resources) if (!nowChanges.has(r.id)) out.resources.push({ id: r.id, why: ['no longer planned'] });
  return out.commit || out.key || out.manifests || out.resources.length > 0 ? out : undefined;
}

/** What differs, in one sentence a refusal or a check can print. */
export function describeStaleness(s: Staleness, repository: string): string {
  const parts: string[] = [];
  if (s.commit) parts.push(`the plan was made at commit ${s.commit.saved}, and ${repository} is at ${s.commit.now ?? 'no commit'} now`);
  if (s.key) parts.push("the host's fingerprint key (STATE/fingerprint.key) is not the one the plan was made with");
  if (s.manifests) parts.push(`the manifests in ${repository} differ from those the plan read at the same commit (uncommitted changes)`);
  if (s.resources.length > 0) parts.push(`changed since the plan: ${s.resources.map((r) => `${r.id} (${r.why.join(', ')})`).join('; ')}`);
  return parts.join('; ');
}

/** The saved plan as a Plan the renderers take (its changes carry no driver data: for display only). */
export function planOf(saved: SavedPlan): Plan {
  const changes = saved.plan.changes.map((c) => ({ ...c, kind: c.kind as ResourceKind, action: c.action as Change['action'], diagnostics: [] }));
  return {
    host: saved.plan.host,
    commit: saved.commit,
    repository: saved.plan.repository,
    changes,
    diagnostics: saved.plan.diagnostics,
    summary: summarize(changes),
  };
}
