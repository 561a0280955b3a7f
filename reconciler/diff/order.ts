import type { ResourceKind } from '../core/resource.js';
import type { Change } from './model.js';

// Accounts and directories, then databases, then files and units, then
// certificates and sites, firewall last (DRIVERS.md "Across drivers").
export const KIND_RANK: Record<ResourceKind, number> = {
  account: 0,
  directory: 1,
  pgrole: 2,
  pgdatabase: 3,
  file: 4,
  envfile: 4,
  command: 5,
  unit: 6,
  timer: 7,
  certificate: 8,
  site: 9,
  firewall: 10,
};

function compare(a: Change, b: Change): number {
  return KIND_RANK[a.kind] - KIND_RANK[b.kind] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Apply order: dependencies first (topological), ties broken by kind rank then
 * id so plans are stable. Deletions come last, dependents before what they
 * depend on (reverse rank). Cycles were rejected at validation; should one slip
 * through, the remaining changes are appended in rank order rather than lost.
 */
export function orderChanges(changes: readonly Change[]): Change[] {
  const deletes = changes.filter((c) => c.action === 'delete').sort((a, b) => -compare(a, b));
  const rest = changes.filter((c) => c.action !== 'delete');
  const byId = new Map(rest.map((c) => [c.id, c]));
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const c of rest) {
    const deps = (c.resource?.dependsOn ?? []).filter((d) => byId.has(d) && d !== c.id);
    indegree.set(c.id, deps.length);
    for (const d of deps) {
      const list = dependents.get(d) ?? [];
      list.push(c.id);
      dependents.set(d, list);
    }
  }
  const ready = rest.filter((c) => indegree.get(c.id) === 0).sort(compare);
  const ordered: Change[] = [];
  while (ready.length > 0) {
    const next = ready.shift()!;
    ordered.push(next);
    for (const id of dependents.get(next.id) ?? []) {
      const left = indegree.get(id)! - 1;
      indegree.set(id, left);
      if (left === 0) {
        // Insert keeping `ready` sorted (small lists: linear insert is fine).
        const change = byId.get(id)!;
        const at = ready.findIndex((r) => compare(change, r) < 0);
        if (at === -1) ready.push(change);
        else ready.splice(at, 0, change);
      }
    }
  }
  if (ordered.length < rest.length) {
    const placed = new Set(ordered.map((c) => c.id));
    ordered.push(...rest.filter((c) => !placed.has(c.id)).sort(compare));
  }
  return [...ordered, ...deletes];
}
