import { describe, expect, it } from 'vitest';
import type { ResourceKind } from '../core/resource.js';
import { changeBase, type Action, type Change } from './model.js';
import { orderChanges } from './order.js';

function change(id: string, action: Action = 'create', dependsOn: string[] = []): Change {
  const kind = id.split('/')[0] as ResourceKind;
  return { ...changeBase({ id, kind, name: id, spec: {}, dependsOn, origin: { file: 'x' } }), action, fields: [], ops: [], disruptive: false };
}

describe('reconciler/diff/order', () => {
  it('orders by kind: accounts, directories, databases, files, units, certificates, sites, firewall', () => {
    const ids = [
      'firewall/hostkit',
      'site/a.example.com',
      'unit/hk-a.service',
      'file/srv/a/x',
      'pgdatabase/a',
      'directory/srv/a',
      'account/a',
      'certificate/a.example.com',
      'pgrole/a',
    ];
    expect(orderChanges(ids.map((id) => change(id))).map((c) => c.id)).toEqual([
      'account/a',
      'directory/srv/a',
      'pgrole/a',
      'pgdatabase/a',
      'file/srv/a/x',
      'unit/hk-a.service',
      'certificate/a.example.com',
      'site/a.example.com',
      'firewall/hostkit',
    ]);
  });

  it('an explicit dependency wins over the kind order', () => {
    const changes = [change('file/etc/b.conf'), change('directory/srv/z', 'create', ['file/etc/b.conf'])];
    expect(orderChanges(changes).map((c) => c.id)).toEqual(['file/etc/b.conf', 'directory/srv/z']);
  });

  it('deletions come last, dependents first', () => {
    const changes = [
      change('directory/srv/old', 'delete'),
      change('file/srv/old/x', 'delete'),
      change('unit/hk-old.service', 'delete'),
      change('file/srv/new', 'create'),
    ];
    expect(orderChanges(changes).map((c) => c.id)).toEqual(['file/srv/new', 'unit/hk-old.service', 'file/srv/old/x', 'directory/srv/old']);
  });

  it('is stable: the same input in any order gives the same plan', () => {
    const ids = ['file/b', 'file/a', 'directory/x', 'account/u', 'file/c'];
    const forward = orderChanges(ids.map((id) => change(id))).map((c) => c.id);
    const backward = orderChanges([...ids].reverse().map((id) => change(id))).map((c) => c.id);
    expect(forward).toEqual(backward);
  });

  it('a cycle that slipped past validation still yields every change exactly once', () => {
    const changes = [change('file/a', 'create', ['file/b']), change('file/b', 'create', ['file/a']), change('account/u')];
    const ordered = orderChanges(changes).map((c) => c.id);
    expect(ordered.sort()).toEqual(['account/u', 'file/a', 'file/b']);
  });
});
