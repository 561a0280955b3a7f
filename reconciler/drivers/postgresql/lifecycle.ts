import { warning, type Diagnostic } from '../../core/diagnostics.js';
import type { Resource } from '../../core/resource.js';
import { changeBase, type Change } from '../../diff/model.js';

const UNKNOWN_REASON = 'PostgreSQL not reachable: state unknown';

export interface LifecycleInput<D extends { drop?: boolean }, O, S> {
  resource: Resource<S>;
  desired: D | undefined;
  observed: O | undefined;
  orphan: boolean;
  /** The role or database exists on the server. */
  exists: boolean;
  /** Why the server could not be asked, when it could not. */
  unreachable: string | undefined;
  orphanReason: string;
  dropReason: string;
  /** Rollback cannot undo the drop (a database's data). */
  irreversibleDrop: boolean;
}

/**
 * The decisions roles and databases share: state unknown, orphan (kept and
 * reported), dropped on request. Returns the change when one of them applies;
 * otherwise the caller plans the update, starting from `diagnostics`.
 */
export function planLifecycle<D extends { drop?: boolean }, O, S>(
  input: LifecycleInput<D, O, S>,
): { change: Change<D, O, S, { op: 'drop' }>; diagnostics?: never } | { change?: never; diagnostics: Diagnostic[] } {
  const { resource, desired, observed, orphan, exists, unreachable } = input;
  const base = { ...changeBase(resource), disruptive: false };
  const diagnostics: Diagnostic[] = unreachable
    ? [warning('PostgreSQL not reachable', `${resource.id}: planned without live state: ${unreachable}`, resource.origin)]
    : [];
  if (unreachable && (orphan || !desired || desired.drop)) {
    return { change: { ...base, action: 'noop', fields: [], ops: [], ...(orphan ? { orphan: true } : {}), reason: UNKNOWN_REASON, diagnostics } };
  }
  if (orphan || !desired) {
    return {
      change: exists
        ? { ...base, action: 'noop', fields: [], ops: [], orphan: true, reason: input.orphanReason, ...(observed ? { observed } : {}) }
        : { ...base, action: 'noop', fields: [], ops: [], reason: 'already removed' },
    };
  }
  if (desired.drop) {
    if (!exists) return { change: { ...base, action: 'noop', fields: [], ops: [], reason: 'dropped (drop: true); its manifest can be removed now', desired } };
    return {
      change: {
        ...base,
        action: 'delete',
        fields: [],
        ops: [{ op: 'drop' }],
        reason: input.dropReason,
        ...(input.irreversibleDrop ? { irreversible: true } : {}),
        desired,
        ...(observed ? { observed } : {}),
      },
    };
  }
  return { diagnostics };
}
