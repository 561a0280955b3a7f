import type { Diagnostic } from '../../core/diagnostics.js';
import { diagnosticCounts, type Plan } from '../model.js';

/** The public, serializable form of a plan (schema/plan.schema.json): no internals, no secrets. */
export interface JsonPlan {
  host: string;
  commit?: string;
  repository: string;
  changes: {
    id: string;
    kind: string;
    action: string;
    disruptive: boolean;
    reason?: string;
    orphan?: boolean;
    irreversible?: boolean;
    owedBy?: 'time';
    project?: string;
    origin?: { file: string; line?: number; pointer?: string };
    fields: { field: string; before?: unknown; after?: unknown; redacted?: boolean; diff?: string }[];
    /** What apply will do (the driver's typed operations): data only, no secret values. */
    ops: { op: string; [data: string]: unknown }[];
  }[];
  diagnostics: Diagnostic[];
  /** Changes by action, and the number of errors and warnings (with errors, nothing is applied). */
  summary: Plan['summary'] & { errors: number; warnings: number };
}

export function toJsonPlan(plan: Plan): JsonPlan {
  return {
    host: plan.host,
    ...(plan.commit ? { commit: plan.commit } : {}),
    repository: plan.repository,
    changes: plan.changes.map((c) => ({
      id: c.id,
      kind: c.kind,
      action: c.action,
      disruptive: c.disruptive,
      ...(c.reason ? { reason: c.reason } : {}),
      ...(c.orphan ? { orphan: true } : {}),
      ...(c.irreversible ? { irreversible: true } : {}),
      ...(c.owedBy ? { owedBy: c.owedBy } : {}),
      ...(c.project ? { project: c.project } : {}),
      ...(c.origin
        ? { origin: { file: c.origin.file, ...(c.origin.line ? { line: c.origin.line } : {}), ...(c.origin.pointer ? { pointer: c.origin.pointer } : {}) } }
        : {}),
      fields: c.fields.map((f) => ({ ...f })),
      ops: c.ops.map((o) => ({ ...o })),
    })),
    diagnostics: plan.diagnostics,
    summary: { ...plan.summary, ...diagnosticCounts(plan) },
  };
}
