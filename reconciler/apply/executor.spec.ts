import { describe, expect, it } from 'vitest';
import { driverContext } from '../../test/support/context.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import { Redactor } from '../core/secrets.js';
import { summarize, type Change } from '../diff/model.js';
import type { PlannedHost } from '../diff/plan.js';
import type { AnyDriver } from '../drivers/types.js';
import { FakeHost } from '../hosts/fake.js';
import { applyPlan } from './executor.js';
import { readInventory } from './inventory.js';

// A driver that records what happens to it, and fails verification where told.
function recorder(kind: ResourceKind, events: string[], failVerify = new Set<string>()): AnyDriver {
  return {
    kind,
    orphans: 'delete',
    desire: async () => new Map(),
    observe: async () => new Map(),
    plan: () => {
      throw new Error('not used');
    },
    apply: async (c: Change) => void events.push(`apply ${c.id}`),
    verify: async (c: Change) => (failVerify.has(c.id) ? [{ severity: 'error' as const, summary: 'verification failed', detail: `${c.id} is wrong` }] : []),
    rollback: async (c: Change) => void events.push(`rollback ${c.id}`),
  };
}

function change(id: string, action: Change['action'], irreversible = false): Change {
  const kind = id.split('/')[0] as ResourceKind;
  const resource: Resource = { id, kind, name: id, spec: {}, dependsOn: [], origin: { file: 'x' } };
  return { id, kind, action, fields: [], disruptive: false, diagnostics: [], resource, ...(irreversible ? { irreversible: true } : {}) };
}

function planned(changes: Change[], drivers: Map<ResourceKind, AnyDriver>): PlannedHost {
  const host = new FakeHost();
  return {
    plan: { host: 'h', repository: 'r', changes, diagnostics: [], summary: summarize(changes) },
    resources: [],
    inventory: { version: 1, host: 'h', resources: {} },
    context: driverContext(host),
    drivers,
    redactor: new Redactor(),
  };
}

describe('reconciler/apply/executor', () => {
  it('applies an irreversible change only after every other change applied and verified', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['pgdatabase', recorder('pgdatabase', events)],
      ['pgrole', recorder('pgrole', events)],
      ['file', recorder('file', events)],
    ]);
    const result = await applyPlan(planned([change('file/a', 'create'), change('pgdatabase/old', 'delete', true), change('pgrole/old', 'delete')], drivers));
    expect(result.status).toBe('applied');
    // The role's drop stays after the database's (it owned it), even though only the database's is irreversible.
    expect(events).toEqual(['apply file/a', 'apply pgdatabase/old', 'apply pgrole/old']);
  });

  it('never applies the irreversible change when another change fails verification', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['pgdatabase', recorder('pgdatabase', events)],
      ['file', recorder('file', events, new Set(['file/b']))],
    ]);
    const result = await applyPlan(planned([change('file/a', 'create'), change('file/b', 'create'), change('pgdatabase/old', 'delete', true)], drivers));
    expect(result.status).toBe('rolled-back');
    expect(events).toEqual(['apply file/a', 'apply file/b', 'rollback file/b', 'rollback file/a']);
  });

  it('with `only`, applies just those changes; the others are neither applied nor held, and keep their inventory entries as last applied', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([['file', recorder('file', events)]]);
    const changes = [change('file/a', 'update'), change('file/b', 'update'), change('file/c', 'create'), change('file/old', 'delete')];
    const p = planned(changes, drivers);
    p.resources = changes.filter((c) => c.resource && c.action !== 'delete').map((c) => ({ ...c.resource!, spec: { version: 2 } }));
    const entry = (id: string) => ({ id, kind: 'file' as const, name: id, spec: { version: 1 }, dependsOn: [], origin: { file: 'x' } });
    p.inventory = { version: 1, host: 'h', resources: { 'file/a': entry('file/a'), 'file/b': entry('file/b'), 'file/old': entry('file/old') } };
    const result = await applyPlan(p, { only: new Set(['file/a']) });
    expect(result.status).toBe('applied');
    expect(result.held).toBeUndefined();
    expect(events).toEqual(['apply file/a']);
    const inventory = await readInventory(p.context.host, p.context.stateDirectory, 'h');
    expect(Object.keys(inventory.resources).sort()).toEqual(['file/a', 'file/b', 'file/old']); // file/c not created, file/old not deleted
    expect(inventory.resources['file/a']!.spec).toEqual({ version: 2 });
    expect(inventory.resources['file/b']!.spec).toEqual({ version: 1 });
  });
});
