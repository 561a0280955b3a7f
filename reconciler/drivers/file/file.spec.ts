import { describe, expect, it } from 'vitest';
import type { Resource } from '../../core/resource.js';
import type { FileSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { driverContext } from '../../../test/support/context.js';
import type { ObservedFile } from '../shared/managed-file.js';
import { fileDriver } from './index.js';

const spec: FileSpec = { path: '/srv/app/config.ini', content: 'a=1\nb=2\n', owner: 'root', group: 'www-data', mode: 0o640 };
const resource: Resource<FileSpec> = {
  id: 'file/srv/app/config.ini',
  kind: 'file',
  name: spec.path,
  spec,
  dependsOn: [],
  origin: { file: 'projects/app.yaml', line: 3 },
};
const same: ObservedFile = { type: 'file', content: Buffer.from(spec.content), owner: 'root', group: 'www-data', mode: 0o640 };

const context = (host: FakeHost) => driverContext(host);

describe('reconciler/drivers/file', () => {
  it.each<[string, ObservedFile | undefined, boolean, string, string[]]>([
    ['missing file is created', undefined, false, 'create', ['/content', '/owner', '/group', '/mode']],
    ['identical file is left alone', same, false, 'noop', []],
    ['changed content is an update with a diff', { ...same, content: Buffer.from('a=1\nb=3\n') }, false, 'update', ['/content']],
    ['changed mode only', { ...same, mode: 0o644 }, false, 'update', ['/mode']],
    ['changed owner and group', { ...same, owner: 'nobody', group: 'nogroup' }, false, 'update', ['/owner', '/group']],
    ['orphan that exists is deleted', same, true, 'delete', []],
    ['orphan already gone', undefined, true, 'noop', []],
  ])('%s', (_title, observed, orphan, action, fields) => {
    const change = fileDriver.plan({ resource, desired: orphan ? undefined : spec, observed, orphan });
    expect(change.action).toBe(action);
    expect(change.fields.map((f) => f.field)).toEqual(fields);
    expect(change.diagnostics).toEqual([]);
  });

  it('shows content changes as a unified diff and modes in octal', () => {
    const change = fileDriver.plan({ resource, desired: spec, observed: { ...same, content: Buffer.from('a=1\nb=3\n'), mode: 0o644 }, orphan: false });
    expect(change.fields[0]!.diff).toBe('@@ -1,2 +1,2 @@\n a=1\n-b=3\n+b=2');
    expect(change.fields[1]).toEqual({ field: '/mode', before: '0644', after: '0640' });
  });

  it('refuses to replace a directory or symlink at the path', () => {
    for (const type of ['directory', 'symlink'] as const) {
      const change = fileDriver.plan({ resource, desired: spec, observed: { type, owner: 'root', group: 'root', mode: 0o755 }, orphan: false });
      expect(change.action).toBe('noop');
      expect(change.diagnostics.map((d) => d.summary)).toEqual(['path is not a file']);
    }
  });

  it('apply writes once, a second plan is a noop, and rollback restores the previous bytes', async () => {
    const host = new FakeHost();
    host.seedFile(spec.path, 'old\n', { uid: 0, gid: 0, mode: 0o600 });
    const ctx = context(host);
    const observed = (await fileDriver.observe([resource], ctx)).get(resource.id);
    const change = fileDriver.plan({ resource, desired: spec, observed, orphan: false });
    expect(change.action).toBe('update');
    const undo = await fileDriver.apply(change, ctx);
    expect(host.text(spec.path)).toBe(spec.content);
    expect(await fileDriver.verify(change, ctx)).toEqual([]);
    const again = fileDriver.plan({ resource, desired: spec, observed: (await fileDriver.observe([resource], ctx)).get(resource.id), orphan: false });
    expect(again.action).toBe('noop');
    await fileDriver.rollback(change, undo, ctx);
    expect(host.text(spec.path)).toBe('old\n');
    expect((await host.stat(spec.path))!.mode).toBe(0o600);
  });

  it('creates missing parent directories and removes them again on rollback', async () => {
    const host = new FakeHost();
    const ctx = context(host);
    const change = fileDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    const undo = await fileDriver.apply(change, ctx);
    expect(host.paths()).toContain('/srv/app');
    await fileDriver.rollback(change, undo, ctx);
    expect(host.paths()).not.toContain('/srv');
    expect(host.paths()).not.toContain(spec.path);
  });

  it('a mode-only change does not rewrite the bytes', async () => {
    const host = new FakeHost();
    host.seedFile(spec.path, spec.content, { uid: 0, gid: 33, mode: 0o644 });
    const ctx = context(host);
    const change = fileDriver.plan({ resource, desired: spec, observed: (await fileDriver.observe([resource], ctx)).get(resource.id), orphan: false });
    expect(change.fields.map((f) => f.field)).toEqual(['/mode']);
    await fileDriver.apply(change, ctx);
    expect((await host.stat(spec.path))!.mode).toBe(0o640);
    expect(host.writes).toEqual([spec.path]); // one setOwnership, no content write
  });
});
