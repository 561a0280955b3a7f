import { describe, expect, it } from 'vitest';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { Inventory } from '../../apply/inventory.js';
import type { Resource } from '../../core/resource.js';
import type { AccountSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { accountDriver, type AccountOp, type ObservedAccount } from './index.js';
import { JournaledRun } from '../../../test/support/undo.js';

const spec: AccountSpec = { user: 'api', group: 'api', home: '/srv/api', shell: '/usr/sbin/nologin', groups: [] };
const resource: Resource<AccountSpec> = {
  id: 'account/api',
  kind: 'account',
  name: 'api',
  spec,
  dependsOn: [],
  origin: { file: 'projects/api.yaml', line: 4 },
};
const present: ObservedAccount = { user: 'api', group: 'api', home: '/srv/api', shell: '/usr/sbin/nologin', groups: [], groupExists: true };

describe('reconciler/drivers/account', () => {
  it.each<[string, ObservedAccount | undefined, boolean, string, string[], boolean?]>([
    ['missing user is created', undefined, false, 'create', ['/group', '/home', '/shell', '/groups']],
    [
      'group exists without the user: still a create',
      { user: '', group: 'api', home: '', shell: '', groups: [], groupExists: true },
      false,
      'create',
      ['/group', '/home', '/shell', '/groups'],
    ],
    ['matching user is left alone', present, false, 'noop', []],
    ['different home and shell', { ...present, home: '/home/api', shell: '/bin/bash' }, false, 'update', ['/home', '/shell']],
    ['extra supplementary group', { ...present, groups: ['docker'] }, false, 'update', ['/groups']],
    ['orphan user is reported and kept, never deleted', present, true, 'noop', [], true],
  ])('%s', (_t, observed, orphan, action, fields, isOrphan) => {
    const change = accountDriver.plan({ resource, desired: orphan ? undefined : spec, observed, orphan });
    expect(change.action).toBe(action);
    expect(change.fields.map((f) => f.field)).toEqual(fields);
    expect(Boolean(change.orphan)).toBe(Boolean(isOrphan));
  });

  it('creates group then user with argument arrays, the next plan is a noop, and the rollback of the failed run removes it', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    const observed = (await accountDriver.observe([resource], ctx, run)).get(resource.id);
    const change = accountDriver.plan({ resource, desired: spec, observed, orphan: false });
    const journaled = await JournaledRun.open(ctx, [change]);
    await journaled.apply(accountDriver, change, run);
    expect(host.calls.map((c) => [c.file, ...c.args])).toEqual([
      ['groupadd', '--system', 'api'],
      ['useradd', '--system', '--gid', 'api', '--home-dir', '/srv/api', '--no-create-home', '--shell', '/usr/sbin/nologin', 'api'],
    ]);
    expect(await accountDriver.verify(change, ctx, run)).toEqual([]);
    const again = accountDriver.plan({
      resource,
      desired: spec,
      observed: (await accountDriver.observe([resource], ctx, run)).get(resource.id),
      orphan: false,
    });
    expect(again.action).toBe('noop');
    // The run failed: nothing used the account yet, so it goes again. userdel removed the group with the user, so no groupdel (it would fail).
    await journaled.rollback();
    expect(host.calls.slice(2).map((c) => [c.file, ...c.args])).toEqual([['userdel', 'api']]);
    expect(host.text('/etc/group')).not.toContain('api:');
    expect(host.text('/etc/passwd')).not.toContain('api:');
  });

  it('hostkit rollback of a completed run keeps the account it created, with its inventory entry: files may belong to it by now', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    const change = accountDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    const journaled = await JournaledRun.open(ctx, [change]);
    await journaled.apply(accountDriver, change, run);
    await journaled.journal.close('applied');
    const calls = host.calls.length;
    const { warnings } = await journaled.rollback();
    expect(host.calls.slice(calls)).toEqual([]);
    expect(host.text('/etc/passwd')).toContain('api:');
    expect(warnings).toEqual(['account/api: accounts are kept (they may own files)']);
    expect(JSON.parse(host.text('/var/lib/hostkit/inventory.json')!).resources['account/api']).toMatchObject({ kind: 'account', spec });
  });

  it('a rollback of an update puts the previous group, home, shell and groups back in one usermod', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    await accountDriver.apply(accountDriver.plan({ resource, desired: spec, observed: undefined, orphan: false }), ctx, run);
    const changed = { ...spec, home: '/home/api', shell: '/bin/sh', groups: ['www-data'] };
    const observed = (await accountDriver.observe([resource], ctx, run)).get(resource.id);
    const change = accountDriver.plan({ resource: { ...resource, spec: changed }, desired: changed, observed, orphan: false });
    expect(change.fields.map((f) => f.field)).toEqual(['/home', '/shell', '/groups']);
    const journaled = await JournaledRun.open(ctx, [change]);
    await journaled.apply(accountDriver, change, run);
    const before = host.calls.length;
    await journaled.rollback();
    expect(host.calls.slice(before).map((c) => [c.file, ...c.args])).toEqual([
      ['usermod', '--gid', 'api', '--home', '/srv/api', '--shell', '/usr/sbin/nologin', '--groups', '', 'api'],
    ]);
    expect((await accountDriver.observe([resource], ctx, accountDriver.createRun!(ctx))).get(resource.id)).toMatchObject(present);
  });

  it('observes every account from one read of /etc/passwd and /etc/group, with no commands', async () => {
    const host = new FakeHost();
    const many = Array.from({ length: 50 }, (_, i) => ({ ...resource, id: `account/u${i}`, spec: { ...spec, user: `u${i}`, group: `u${i}` } }));
    const ctx = driverContext(host);
    await accountDriver.observe(many, ctx, accountDriver.createRun!(ctx));
    expect(host.calls).toEqual([]);
  });

  it('a run creating many accounts creates them all with ONE systemd-sysusers, and the rollback of the failed run removes the batch', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    const many = Array.from({ length: 20 }, (_, i) => ({
      ...resource,
      id: `account/u${i}`,
      spec: { ...spec, user: `u${i}`, group: `u${i}`, home: `/srv/u${i}` },
    }));
    many[3] = { ...many[3]!, spec: { ...many[3]!.spec, groups: ['www-data'] } };
    const wanted = await accountDriver.desire(many, ctx, run);
    const observed = await accountDriver.observe(many, ctx, run);
    const changes = many.map((r) => accountDriver.plan({ resource: r, desired: wanted.get(r.id)!.desired, observed: observed.get(r.id), orphan: false }));
    const undos = [];
    const journaled = await JournaledRun.open(ctx, changes);
    for (const c of changes.slice(0, 5)) undos.push(await journaled.apply(accountDriver, c, run));
    expect(host.calls.map((c) => c.file)).toEqual(['systemd-sysusers']);
    expect(host.calls[0]!.args).toContain('u u0 - - /srv/u0 /usr/sbin/nologin');
    expect(host.calls[0]!.args).toContain('m u3 www-data');
    expect(undos[0]!.batch).toHaveLength(19);
    const now = await accountDriver.observe(many, ctx, run);
    for (const [i, c] of changes.entries()) {
      expect(accountDriver.plan({ resource: many[i]!, desired: c.desired, observed: now.get(c.id), orphan: false }).action).toBe('noop');
    }
    // The run fails after the fifth account: its rollback removes all twenty (the batch made them all).
    await journaled.rollback();
    expect(host.text('/etc/passwd')).not.toMatch(/^u\d+:/m);
    expect(host.text('/etc/group')).not.toMatch(/^u\d+:/m);
  });

  it('a failing useradd surfaces its stderr', async () => {
    const host = new FakeHost();
    host.onExec((call) => (call.file === 'useradd' ? { exitCode: 4, stdout: '', stderr: 'useradd: UID 999 is not unique' } : undefined));
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    const change = accountDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    await expect(accountDriver.apply(change, ctx, run)).rejects.toThrow(/useradd .* exited 4: useradd: UID 999 is not unique/);
  });

  describe('an account that exists and HostKit did not create', () => {
    const wwwData: Resource<AccountSpec> = {
      ...resource,
      id: 'account/www-data',
      name: 'www-data',
      project: 'api',
      spec: { user: 'www-data', group: 'www-data', home: '/root', shell: '/bin/bash', groups: ['sudo'] },
      fieldOrigins: { user: { file: 'projects/api.yaml', line: 7, pointer: '/spec/user' } },
    };
    const planOn = async (r: Resource<AccountSpec>, inventory?: Inventory) => {
      const ctx = driverContext(new FakeHost(), { ...(inventory ? { inventory } : {}) });
      const run = accountDriver.createRun!(ctx);
      return accountDriver.plan({ resource: r, desired: r.spec, observed: (await accountDriver.observe([r], ctx, run)).get(r.id), orphan: false });
    };

    it('is refused from a project manifest (plan error at the field), changed or not', async () => {
      for (const r of [wwwData, { ...wwwData, spec: { user: 'www-data', group: 'www-data', home: '/var/www', shell: '/usr/sbin/nologin', groups: [] } }]) {
        const change = await planOn(r);
        expect(change.action).toBe('noop');
        expect(change.fields).toEqual([]);
        expect(change.diagnostics).toEqual([
          {
            severity: 'error',
            summary: 'not allowed in a project manifest',
            detail: expect.stringMatching(
              /^rule account-adopt: account www-data exists on the host and HostKit did not create it.*Declare it in a host-level path \(hosts\/\)/,
            ),
            location: { file: 'projects/api.yaml', line: 7, pointer: '/spec/user' },
          },
        ]);
      }
    });

    it('is planned from a host-level manifest, and from a project whose inventory lists it (HostKit created it for that project)', async () => {
      const hostLevel = await planOn({ ...wwwData, hostLevel: true } as Resource<AccountSpec>);
      expect(hostLevel.diagnostics).toEqual([]);
      expect(hostLevel.fields.map((f) => f.field)).toEqual(['/home', '/shell', '/groups']);
      const created = driverContext(new FakeHost());
      const owned = await planOn(wwwData, inventoryAfter(created, [wwwData]));
      expect(owned.diagnostics).toEqual([]);
      const otherProject = await planOn(wwwData, inventoryAfter(created, [{ ...wwwData, project: 'other' }]));
      expect(otherProject.diagnostics.map((d) => d.summary)).toEqual(['not allowed in a project manifest']);
    });
  });
});

describe('reconciler/drivers/account operations', () => {
  it.each<[string, ObservedAccount | undefined, boolean, AccountOp[]]>([
    ['missing: created', undefined, false, [{ op: 'create' }]],
    ['another shell: modified', { ...present, shell: '/bin/bash' }, false, [{ op: 'modify' }]],
    ['unchanged: nothing', present, false, []],
    ['orphan: kept, nothing', present, true, []],
    ['not HostKit’s, in a project: refused, nothing', { ...present, hostkit: false }, false, []],
  ])('%s', (_title, observed, orphan, ops) => {
    const r = observed?.hostkit === false ? { ...resource, project: 'api' } : resource;
    expect(accountDriver.plan({ resource: r, desired: orphan ? undefined : spec, observed, orphan }).ops).toEqual(ops);
  });

  it('apply creates on `create` and runs usermod on `modify`', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const run = accountDriver.createRun!(ctx);
    const observed = (await accountDriver.observe([resource], ctx, run)).get(resource.id);
    await accountDriver.apply(accountDriver.plan({ resource, desired: spec, observed, orphan: false }), ctx, run);
    expect(host.calls.map((c) => c.file)).toEqual(['groupadd', 'useradd']);
    host.calls.length = 0;
    const shell = { ...spec, shell: '/bin/sh' };
    const modify = accountDriver.plan({
      resource,
      desired: shell,
      observed: (await accountDriver.observe([resource], ctx, run)).get(resource.id),
      orphan: false,
    });
    expect(modify.ops).toEqual([{ op: 'modify' }]);
    await accountDriver.apply(modify, ctx, run);
    expect(host.calls.map((c) => [c.file, ...c.args])).toEqual([
      ['usermod', '--gid', 'api', '--home', '/srv/api', '--shell', '/bin/sh', '--groups', '', 'api'],
    ]);
  });
});
