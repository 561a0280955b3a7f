import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { LocalHost } from '../../hosts/local.js';
import { driverContext } from '../../../test/support/context.js';
import type { Resource } from '../../core/resource.js';
import type { DirectorySpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { directoryDriver, type DirectoryOp, type ObservedDirectory } from './index.js';
import { JournaledRun } from '../../../test/support/undo.js';

const spec: DirectorySpec = { path: '/srv/api/data', owner: 'www-data', group: 'www-data', mode: 0o750 };
const resource: Resource<DirectorySpec> = {
  id: 'directory/srv/api/data',
  kind: 'directory',
  name: spec.path,
  spec,
  dependsOn: [],
  origin: { file: 'p.yaml', line: 1 },
};
const present: ObservedDirectory = { type: 'directory', owner: 'www-data', group: 'www-data', mode: 0o750 };

describe('reconciler/drivers/directory', () => {
  it.each<[string, ObservedDirectory | undefined, boolean, string, string[], string[]]>([
    ['missing directory is created', undefined, false, 'create', ['/owner', '/group', '/mode'], []],
    ['matching directory is left alone', present, false, 'noop', [], []],
    ['wrong mode', { ...present, mode: 0o777 }, false, 'update', ['/mode'], []],
    ['wrong owner', { ...present, owner: 'root' }, false, 'update', ['/owner'], []],
    ['a file in the way is an error, not a replace', { ...present, type: 'file' }, false, 'noop', [], ['path is not a directory']],
    ['orphan directory is kept (may hold data)', present, true, 'noop', [], []],
  ])('%s', (_t, observed, orphan, action, fields, diagnostics) => {
    const change = directoryDriver.plan({ resource, desired: orphan ? undefined : spec, observed, orphan });
    expect(change.action).toBe(action);
    expect(change.fields.map((f) => f.field)).toEqual(fields);
    expect(change.diagnostics.map((d) => d.summary)).toEqual(diagnostics);
  });

  it('creates parents, applies ownership, and rollback removes exactly what it created', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const change = directoryDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(directoryDriver, change);
    expect(await host.stat('/srv/api/data')).toMatchObject({ type: 'directory', uid: 33, gid: 33, mode: 0o750 });
    expect(await directoryDriver.verify(change, ctx)).toEqual([]);
    await run.rollback();
    expect(host.paths().filter((p) => p.startsWith('/srv'))).toEqual([]);
  });

  it('a directory the run created that holds something by the rollback is kept, with its inventory entry', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const change = directoryDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(directoryDriver, change);
    host.seedFile('/srv/api/data/upload.bin', 'data', { uid: 33, gid: 33, mode: 0o640 });
    const result = await run.rollback();
    expect(host.text('/srv/api/data/upload.bin')).toBe('data');
    expect(result.warnings).toEqual([`${resource.id}: directories are kept once they hold anything (they may hold data)`]);
    expect(Object.keys(JSON.parse(host.text('/var/lib/hostkit/inventory.json')!).resources)).toEqual([resource.id]);
  });

  it('an ownership fix restores the previous ownership on rollback', async () => {
    const host = new FakeHost();
    host.seedDir('/srv/api/data', { uid: 0, gid: 0, mode: 0o700 });
    const ctx = driverContext(host);
    const observed = (await directoryDriver.observe([resource], ctx)).get(resource.id);
    const change = directoryDriver.plan({ resource, desired: spec, observed, orphan: false });
    expect(change.fields.map((f) => f.field)).toEqual(['/owner', '/group', '/mode']);
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(directoryDriver, change);
    await run.rollback();
    expect(await host.stat('/srv/api/data')).toMatchObject({ uid: 0, gid: 0, mode: 0o700 });
  });

  it('refuses (plan error naming the path) a directory whose parent is a symlink, and changes nothing through it', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'hk-dir-'));
    try {
      mkdirSync(path.join(root, 'etc/ssl'), { recursive: true });
      writeFileSync(path.join(root, 'etc/hostname'), 'h\n');
      mkdirSync(path.join(root, 'srv'));
      symlinkSync('../etc', path.join(root, 'srv/api'));
      const host = new LocalHost({ root });
      const r: Resource<DirectorySpec> = {
        ...resource,
        id: 'directory/srv/api/ssl',
        name: '/srv/api/ssl',
        spec: { ...spec, path: '/srv/api/ssl', owner: 'root', group: 'root', mode: 0o777 },
      };
      const ctx = driverContext(host);
      const change = directoryDriver.plan({ resource: r, desired: r.spec, observed: (await directoryDriver.observe([r], ctx)).get(r.id), orphan: false });
      expect(change.action).toBe('noop');
      expect(change.diagnostics).toEqual([
        expect.objectContaining({
          severity: 'error',
          summary: 'path through a symlink',
          detail: expect.stringContaining('/srv/api/ssl: /srv/api is a symlink'),
        }),
      ]);
      await expect(host.setOwnership('/srv/api/ssl', { uid: 0, gid: 0, mode: 0o777 }, { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
      expect(statSync(path.join(root, 'etc/ssl')).mode & 0o777).not.toBe(0o777);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('reconciler/drivers/directory operations', () => {
  it.each<[string, ObservedDirectory | undefined, boolean, DirectoryOp[]]>([
    ['missing: created', undefined, false, [{ op: 'create' }]],
    ['mode only: chmod', { ...present, mode: 0o777 }, false, [{ op: 'chmod' }]],
    ['owner only: chown', { ...present, owner: 'root' }, false, [{ op: 'chown' }]],
    ['group and mode: chown and chmod', { ...present, group: 'root', mode: 0o700 }, false, [{ op: 'chown' }, { op: 'chmod' }]],
    ['unchanged: nothing', present, false, []],
    ['orphan: kept, nothing', present, true, []],
    ['a file in the way: refused, nothing', { ...present, type: 'file' }, false, []],
    ['a symlinked parent: refused, nothing', { ...present, symlinkedParent: '/srv/api' }, false, []],
  ])('%s', (_title, observed, orphan, ops) => {
    expect(directoryDriver.plan({ resource, desired: orphan ? undefined : spec, observed, orphan }).ops).toEqual(ops);
  });

  it('apply of an existing directory sets its ownership only when an operation says so', async () => {
    const host = new FakeHost();
    host.seedDir(spec.path, { uid: 33, gid: 33, mode: 0o750 });
    const ctx = driverContext(host);
    const change = directoryDriver.plan({ resource, desired: spec, observed: { ...present, mode: 0o700 }, orphan: false });
    const set = vi.spyOn(host, 'setOwnership');
    await directoryDriver.apply({ ...change, ops: [] }, ctx);
    expect(set).not.toHaveBeenCalled();
    await directoryDriver.apply(change, ctx);
    expect(set).toHaveBeenCalledWith(spec.path, { uid: 33, gid: 33, mode: 0o750 }, { managed: true });
  });
});
