import type { ResourceKind } from '../core/resource.js';
import { KINDS } from '../drivers/kinds.js';
import type { Change } from './model.js';

// Each kind's rank, from its definition (drivers/kinds.ts): ties between changes with no dependency
// between them are broken by it (DRIVERS.md "Across drivers").
export const KIND_RANK = Object.fromEntries(KINDS.map((k) => [k.kind, k.rank])) as Record<ResourceKind, number>;

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
  const ready = new MinHeap(compare);
  for (const c of rest) if (indegree.get(c.id) === 0) ready.push(c);
  const ordered: Change[] = [];
  for (let next = ready.pop(); next !== undefined; next = ready.pop()) {
    ordered.push(next);
    for (const id of dependents.get(next.id) ?? []) {
      const left = indegree.get(id)! - 1;
      indegree.set(id, left);
      if (left === 0) ready.push(byId.get(id)!);
    }
  }
  if (ordered.length < rest.length) {
    const placed = new Set(ordered.map((c) => c.id));
    ordered.push(...rest.filter((c) => !placed.has(c.id)).sort(compare));
  }
  return [...ordered, ...deletes];
}

/** A binary heap: the ready set of a plan with thousands of changes stays O(n log n). */
class MinHeap<T> {
  private readonly items: T[] = [];
  private readonly less: (a: T, b: T) => number;

  constructor(less: (a: T, b: T) => number) {
    this.less = less;
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.less(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    for (let i = 0; ;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.less(items[left]!, items[smallest]!) < 0) smallest = left;
      if (right < items.length && this.less(items[right]!, items[smallest]!) < 0) smallest = right;
      if (smallest === i) break;
      [items[i], items[smallest]] = [items[smallest]!, items[i]!];
      i = smallest;
    }
    return top;
  }
}
