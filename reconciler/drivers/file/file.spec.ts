import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { Inventory } from '../../apply/inventory.js';
import type { Resource } from '../../core/resource.js';
import { summarize } from '../../diff/model.js';
import { toJsonPlan } from '../../diff/render/json.js';
import { renderMarkdown } from '../../diff/render/markdown.js';
import { renderText } from '../../diff/render/text.js';
import { LocalHost } from '../../hosts/local.js';
import type { FileSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { ObservedFile } from '../shared/managed-file.js';
import { fileDriver, type FileOp } from './index.js';
import { JournaledRun } from '../../../test/support/undo.js';

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

const CANARY = 'CANARY-7f3e9a';

async function planOn(host: FakeHost | LocalHost, inventory?: Inventory, r: Resource<FileSpec> = resource) {
  const ctx = driverContext(host, { mode: 'plan', ...(inventory ? { inventory } : {}) });
  const wanted = (await fileDriver.desire([r], ctx)).get(r.id)!;
  const observed = (await fileDriver.observe([r], ctx)).get(r.id);
  const change = fileDriver.plan({ resource: r, desired: wanted.desired, observed, orphan: false });
  const plan = { host: 'h', repository: 'r', changes: [change], diagnostics: change.diagnostics, summary: summarize([change]) };
  return { ctx, change, shown: JSON.stringify(toJsonPlan(plan)) + renderText(plan) + renderMarkdown(plan) };
}

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
    const observed = { ...same, content: Buffer.from('a=1\nb=3\n'), mode: 0o644, owned: true };
    const change = fileDriver.plan({ resource, desired: spec, observed, orphan: false });
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
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(fileDriver, change);
    expect(host.text(spec.path)).toBe(spec.content);
    expect(await fileDriver.verify(change, ctx)).toEqual([]);
    const again = fileDriver.plan({ resource, desired: spec, observed: (await fileDriver.observe([resource], ctx)).get(resource.id), orphan: false });
    expect(again.action).toBe('noop');
    await run.rollback();
    expect(host.text(spec.path)).toBe('old\n');
    expect((await host.stat(spec.path))!.mode).toBe(0o600);
  });

  it('creates missing parent directories and removes them again on rollback', async () => {
    const host = new FakeHost();
    const ctx = context(host);
    const change = fileDriver.plan({ resource, desired: spec, observed: undefined, orphan: false });
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(fileDriver, change);
    expect(host.paths()).toContain('/srv/app');
    await run.rollback();
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

  it('a file HostKit did not write shows as exists, size and fingerprint, in text, markdown and JSON: never a byte of it', async () => {
    const host = new FakeHost();
    host.seedFile(spec.path, `secret=${CANARY}\n`, { uid: 0, gid: 33, mode: 0o640 });
    const { change, shown } = await planOn(host);
    expect(change.action).toBe('update');
    expect(change.fields).toEqual([
      { field: '/content', before: expect.stringMatching(/^exists, 21 bytes, fingerprint hmac:[0-9a-f]{12}$/), after: '2 lines, 8 bytes' },
    ]);
    expect(shown).not.toContain(CANARY);
    expect(shown).not.toContain('secret=');
    expect(shown).toContain('exists, 21 bytes, fingerprint hmac:');
  });

  it('a file HostKit wrote (its digest in the inventory) shows its diff; edited by hand since, it shows as changed by hand', async () => {
    const host = new FakeHost();
    const first = await planOn(host);
    await fileDriver.apply(first.change, first.ctx);
    const owned = inventoryAfter(first.ctx, [resource]);
    expect(owned.resources[resource.id]!.written).toEqual({ [spec.path]: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const next: Resource<FileSpec> = { ...resource, spec: { ...spec, content: 'a=1\nb=4\n' } };
    expect((await planOn(host, owned, next)).change.fields[0]!.diff).toBe('@@ -1,2 +1,2 @@\n a=1\n-b=2\n+b=4');
    host.seedFile(spec.path, `a=1\nb=2\npassword=${CANARY}\n`, { uid: 0, gid: 33, mode: 0o640 });
    const edited = await planOn(host, owned);
    expect(edited.change.fields[0]!.before).toMatch(/^changed by hand, \d+ bytes, fingerprint hmac:/);
    expect(edited.shown).not.toContain(CANARY);
  });

  it('an inventory from before digests were kept: a File whose live bytes are its last applied content still shows its diff', async () => {
    const host = new FakeHost();
    host.seedFile(spec.path, spec.content, { uid: 0, gid: 33, mode: 0o640 });
    const legacy: Inventory = { version: 1, host: 'test-1', resources: { [resource.id]: { ...resource } } };
    const next: Resource<FileSpec> = { ...resource, spec: { ...spec, content: 'a=1\nb=4\n' } };
    expect((await planOn(host, legacy, next)).change.fields[0]!.diff).toContain('-b=2');
    const other: Inventory = { version: 1, host: 'test-1', resources: { [resource.id]: { ...resource, spec: { ...spec, content: 'else' } } } };
    expect((await planOn(host, other, next)).change.fields[0]!.before).toMatch(/^changed by hand/);
  });

  it('refuses (plan error, nothing read) a path whose parent directory is a symlink, and writes nothing through one', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'hk-file-'));
    try {
      mkdirSync(path.join(root, 'etc'), { recursive: true });
      writeFileSync(path.join(root, 'etc/shadow'), `root:${CANARY}\n`);
      mkdirSync(path.join(root, 'srv'));
      symlinkSync('../etc', path.join(root, 'srv/app'));
      const host = new LocalHost({ root });
      const r: Resource<FileSpec> = { ...resource, id: 'file/srv/app/shadow', name: '/srv/app/shadow', spec: { ...spec, path: '/srv/app/shadow' } };
      const { change, shown } = await planOn(host, undefined, r);
      expect(change.diagnostics).toEqual([
        expect.objectContaining({
          severity: 'error',
          summary: 'path through a symlink',
          detail: expect.stringContaining('/srv/app/shadow: /srv/app is a symlink'),
        }),
      ]);
      expect(shown).not.toContain(CANARY);
      await expect(host.readFile('/srv/app/shadow', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
      await expect(host.writeFile('/srv/app/shadow', 'x', { uid: 0, gid: 0, mode: 0o600 }, { managed: true })).rejects.toMatchObject({
        code: 'HOST_PATH_SYMLINK',
      });
      await expect(host.setOwnership('/srv/app/shadow', { uid: 0, gid: 0, mode: 0o777 }, { managed: true })).rejects.toMatchObject({
        code: 'HOST_PATH_SYMLINK',
      });
      symlinkSync('../etc/shadow', path.join(root, 'srv/link'));
      await expect(host.readFile('/srv/link', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
      expect((await host.readFile('/srv/app/shadow'))!.toString()).toContain(CANARY); // HostKit's own reads still follow
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('reconciler/drivers/file operations', () => {
  it.each<[string, ObservedFile | undefined, boolean, FileOp[]]>([
    ['missing: written', undefined, false, [{ op: 'write' }]],
    ['new content: written, with its ownership', { ...same, content: Buffer.from('a=2\n'), mode: 0o600 }, false, [{ op: 'write' }]],
    ['mode only: chmod', { ...same, mode: 0o644 }, false, [{ op: 'chmod' }]],
    ['group only: chown', { ...same, group: 'root' }, false, [{ op: 'chown' }]],
    ['owner and mode: chown and chmod', { ...same, owner: 'nobody', mode: 0o600 }, false, [{ op: 'chown' }, { op: 'chmod' }]],
    ['unchanged: nothing', same, false, []],
    ['orphan: removed', same, true, [{ op: 'remove' }]],
    ['a directory at the path: refused, nothing', { type: 'directory', owner: 'root', group: 'root', mode: 0o755 }, false, []],
  ])('%s', (_title, observed, orphan, ops) => {
    expect(fileDriver.plan({ resource, desired: orphan ? undefined : spec, observed, orphan }).ops).toEqual(ops);
  });

  it('apply runs the operations the plan computed, not what the fields name', async () => {
    const host = new FakeHost();
    host.seedFile(spec.path, 'old\n', { uid: 0, gid: 33, mode: 0o644 });
    const ctx = context(host);
    const change = fileDriver.plan({ resource, desired: spec, observed: (await fileDriver.observe([resource], ctx)).get(resource.id), orphan: false });
    expect(change.fields.map((f) => f.field)).toEqual(['/content', '/mode']);
    const write = vi.spyOn(host, 'writeFile');
    const chmod = vi.spyOn(host, 'setOwnership');
    // The same fields, but only a chmod to run: the bytes stay.
    await fileDriver.apply({ ...change, ops: [{ op: 'chmod' }] }, ctx);
    expect(write).not.toHaveBeenCalled();
    expect(chmod).toHaveBeenCalledWith(spec.path, { uid: 0, gid: 33, mode: 0o640 }, { managed: true });
    expect(host.text(spec.path)).toBe('old\n');
    await fileDriver.apply(change, ctx);
    expect(write).toHaveBeenCalledTimes(1);
    expect(host.text(spec.path)).toBe(spec.content);
  });
});
