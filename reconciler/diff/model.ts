import type { Diagnostic, Location } from '../core/diagnostics.js';
import type { Resource, ResourceKind } from '../core/resource.js';

export type Action = 'create' | 'update' | 'replace' | 'delete' | 'noop' | 'unsupported';
export const PENDING_ACTIONS: readonly Action[] = ['create', 'update', 'replace', 'delete'];

/** One field that differs. Secret values are never here: `redacted` marks them. */
export interface FieldChange {
  /** JSON pointer into the resource spec, e.g. /mode or /content. */
  field: string;
  before?: unknown;
  after?: unknown;
  /** The values are secrets; before/after hold fingerprints or markers only. */
  redacted?: boolean;
  /** A unified diff of text content (already redacted). */
  diff?: string;
}

/**
 * One step apply will take for a change, computed once by the driver's plan() (isomorphic-git's
 * checkout model: typed operations first, run afterwards). Each driver folder declares its own
 * union (e.g. file: write | chmod | chown | remove); apply switches on these, never on field
 * pointers. JSON data shown in `-o json` plans: never a secret value ("set password", not the password).
 */
export interface Operation {
  op: string;
  /** Data the operation carries (names, never secret values). */
  [data: string]: unknown;
}

export interface Change<D = unknown, O = unknown, S = unknown, P extends Operation = Operation> {
  id: string;
  kind: ResourceKind;
  action: Action;
  /** What differs, for display (plans, diffs); apply reads `ops`. */
  fields: FieldChange[];
  /** What apply will do, in order; empty when it does nothing (noop, refused, unsupported). */
  ops: P[];
  /** Applying it restarts or reloads something. */
  disruptive: boolean;
  /** Why, in a few words: "project removed", "not yet supported (systemd driver)". */
  reason?: string;
  /** A resource HostKit created whose manifest is gone, kept rather than deleted. */
  orphan?: boolean;
  /** Cannot be undone by rollback (e.g. dropping a database): applied only after everything else verified. */
  irreversible?: boolean;
  /**
   * Owed to time passing, not to the manifests or a hand edit (a certificate due for
   * renewal, or expired): the agent applies it on its drift interval whatever its drift policy.
   */
  owedBy?: 'time';
  project?: string;
  origin?: Location;
  /** Problems that make this change impossible to apply (the plan then cannot be applied). */
  diagnostics: Diagnostic[];
  /** The desired resource (undefined for a delete), for the driver's apply. */
  resource?: Resource<S>;
  desired?: D;
  observed?: O;
}

export interface PlanSummary {
  create: number;
  update: number;
  replace: number;
  delete: number;
  noop: number;
  unsupported: number;
}

export interface Plan {
  host: string;
  commit?: string;
  repository: string;
  changes: Change[];
  diagnostics: Diagnostic[];
  summary: PlanSummary;
}

export function summarize(changes: readonly Change[]): PlanSummary {
  const summary: PlanSummary = { create: 0, update: 0, replace: 0, delete: 0, noop: 0, unsupported: 0 };
  for (const c of changes) summary[c.action]++;
  return summary;
}

/** How many errors and warnings a plan holds, each problem counted once (a change's diagnostics are also the plan's). */
export function diagnosticCounts(plan: Pick<Plan, 'diagnostics'>): { errors: number; warnings: number } {
  const seen = new Set<string>();
  const counts = { errors: 0, warnings: 0 };
  for (const d of plan.diagnostics) {
    const key = `${d.severity}|${d.summary}|${d.detail}|${d.location?.file}|${d.location?.line}|${d.location?.column}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (d.severity === 'error') counts.errors++;
    else counts.warnings++;
  }
  return counts;
}

/** "2 errors, 1 warning". */
export function countsText(counts: { errors: number; warnings: number }): string {
  const n = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  return `${n(counts.errors, 'error')}, ${n(counts.warnings, 'warning')}`;
}

/** The summary line of a plan that cannot be applied: it counts nothing as to be created or changed. */
export const NOT_APPLICABLE = 'Plan has errors: nothing will be applied until they are fixed.';

export function pendingChanges(plan: Plan): Change[] {
  return plan.changes.filter((c) => PENDING_ACTIONS.includes(c.action));
}

/**
 * The driver contract's check on one planned change: a pending change says what apply will
 * do, and a change that does nothing (noop, unsupported) has no operation. A change that
 * breaks it is a driver's bug, thrown at plan time before anything is applied.
 */
export function checkOps<C extends Change>(change: C): C {
  if (PENDING_ACTIONS.includes(change.action) === change.ops.length > 0) return change;
  throw new Error(`the ${change.kind} driver planned ${change.action} of ${change.id} with ${change.ops.length} operation(s)`);
}

/** Whether a change's operations include `op`. */
export function hasOp<P extends Operation>(change: Pick<Change<unknown, unknown, unknown, P>, 'ops'>, op: P['op']): boolean {
  return change.ops.some((o) => o.op === op);
}

/** The first operation `op` of a change, with its data. */
export function findOp<P extends Operation, K extends P['op']>(
  change: Pick<Change<unknown, unknown, unknown, P>, 'ops'>,
  op: K,
): Extract<P, { op: K }> | undefined {
  return change.ops.find((o): o is Extract<P, { op: K }> => o.op === op);
}

/**
 * A change refused at plan time: nothing is applied (noop, no fields, no operations). `why` is
 * the error that says so, or, where desire already reported the error, the plan's reason
 * ("not rendered (see the error)"); either way the plan cannot be applied until it is fixed.
 */
export function refusedChange<D, O, S>(
  base: Pick<Change<unknown, unknown, S>, 'id' | 'kind' | 'diagnostics'> &
    Partial<Pick<Change<unknown, unknown, S>, 'origin' | 'resource' | 'project' | 'disruptive' | 'reason'>>,
  why: Diagnostic | { reason: string },
  desired?: D,
  observed?: O,
): Change<D, O, S, never> {
  return {
    ...base,
    disruptive: false,
    action: 'noop',
    fields: [],
    ops: [],
    ...(desired !== undefined ? { desired } : {}),
    ...(observed !== undefined ? { observed } : {}),
    ...('reason' in why ? { reason: why.reason } : { diagnostics: [why] }),
  };
}

/** The fields every change of a resource starts with. */
export function changeBase<S>(resource: Resource<S>): Pick<Change<unknown, unknown, S>, 'id' | 'kind' | 'origin' | 'resource' | 'diagnostics' | 'project'> {
  return {
    id: resource.id,
    kind: resource.kind,
    origin: resource.origin,
    resource,
    diagnostics: [],
    ...(resource.project ? { project: resource.project } : {}),
  };
}

// Compare scalar fields of desired and observed specs; report the ones that differ.
export function diffFields<T extends object>(
  desired: T,
  observed: object | undefined,
  keys: readonly (keyof T & string)[],
  format: (key: keyof T & string, value: unknown) => unknown = (_k, v) => v,
): FieldChange[] {
  const out: FieldChange[] = [];
  for (const key of keys) {
    const after = desired[key];
    const before = observed ? (observed as Record<string, unknown>)[key] : undefined;
    if (JSON.stringify(before) !== JSON.stringify(after)) {
      const change: FieldChange = { field: `/${key}`, after: format(key, after) };
      if (observed !== undefined) change.before = format(key, before);
      out.push(change);
    }
  }
  return out;
}

export function octal(mode: unknown): unknown {
  return typeof mode === 'number' ? `0${mode.toString(8).padStart(3, '0')}` : mode;
}
