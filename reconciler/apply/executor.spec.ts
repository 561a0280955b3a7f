import { describe, expect, it } from 'vitest';
import { driverContext } from '../../test/support/context.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import { Redactor } from '../core/secrets.js';
import { summarize, type Change } from '../diff/model.js';
import type { PlannedHost } from '../diff/plan.js';
import type { AnyDriver } from '../drivers/types.js';
import { FakeHost } from '../hosts/fake.js';
import { applyPlan } from './executor.js';

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
});
