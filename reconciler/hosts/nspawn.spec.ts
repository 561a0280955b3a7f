import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NspawnHost } from './nspawn.js';

// File operations only: `root` stands in for /proc/LEADER/root, so no
// container is needed. Commands are covered by test/host/smoke.test.ts.
describe('reconciler/hosts/nspawn', () => {
  let root: string;
  let host: NspawnHost;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'hostkit-nspawn-spec-'));
    mkdirSync(path.join(root, 'etc/nginx'), { recursive: true });
    mkdirSync(path.join(root, 'srv'));
    writeFileSync(path.join(root, 'etc/target'), 'inside\n', { mode: 0o644 });
    symlinkSync('/etc/target', path.join(root, 'srv/absolute'));
    symlinkSync('/', path.join(root, 'srv/root'));
    symlinkSync('../../../../../../etc', path.join(root, 'srv/up'));
    symlinkSync('/etc/nginx', path.join(root, 'srv/nginx'));
    symlinkSync('/srv/loop-b', path.join(root, 'srv/loop-a'));
    symlinkSync('/srv/loop-a', path.join(root, 'srv/loop-b'));
    symlinkSync('/etc/hostname', path.join(root, 'srv/outside-only')); // exists here, not in root
    host = new NspawnHost({ leaderPid: 2, machine: 'spec', root });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each([
    ['/etc/target', true, 'etc/target'],
    ['/srv/absolute', true, 'etc/target'],
    ['/srv/absolute', false, 'srv/absolute'],
    ['/srv/root/etc/target', true, 'etc/target'],
    ['/srv/up/target', true, 'etc/target'],
    ['/../../etc/target', true, 'etc/target'],
    ['/srv/nginx/new.conf', false, 'etc/nginx/new.conf'],
    ['/srv/missing/new', false, 'srv/missing/new'],
    ['/srv/missing/../x', true, 'srv/x'],
    ['/srv/missing/../../../../etc/target', true, 'etc/target'],
    ['/srv/missing/../absolute', true, 'etc/target'],
    ['/', false, ''],
  ])('resolves %s (follow last: %s) to ROOT/%s', async (hostPath, followLast, expected) => {
    expect(await host.resolveIn(hostPath, followLast)).toBe(path.join(root, expected));
  });

  it('a managed path goes through no symlink: a symlinked directory or last component fails with HOST_PATH_SYMLINK, for reads and writes', async () => {
    const own = { uid, gid, mode: 0o644 };
    await expect(host.readFile('/srv/nginx/new.conf', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK', data: { symlink: '/srv/nginx' } });
    await expect(host.writeFile('/srv/nginx/new.conf', 'x', own, { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
    await expect(host.mkdir('/srv/up/dir', own, { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
    await expect(host.setOwnership('/srv/root/etc/target', own, { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
    await expect(host.remove('/srv/root/etc/target', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
    await expect(host.readFile('/srv/absolute', { managed: true })).rejects.toMatchObject({ code: 'HOST_PATH_SYMLINK' });
    expect((await host.readFile('/etc/target', { managed: true }))?.toString()).toBe('inside\n');
    expect(await host.readFile('/srv/missing/x', { managed: true })).toBeUndefined();
    expect(readFileSync(path.join(root, 'etc/target'), 'utf8')).toBe('inside\n');
  });

  it('reads through absolute symlinks inside the root only', async () => {
    expect((await host.readFile('/srv/absolute'))?.toString()).toBe('inside\n');
    expect(await host.readFile('/srv/outside-only')).toBeUndefined();
    expect(await host.readdir('/srv/root/etc')).toEqual(expect.arrayContaining(['nginx', 'target']));
  });

  it('rejects symlink loops and relative paths', async () => {
    await expect(host.readFile('/srv/loop-a')).rejects.toMatchObject({
      code: 'HOST_PATH_LOOP',
    });
    await expect(host.readFile('etc/target')).rejects.toMatchObject({
      code: 'HOST_PATH_NOT_ABSOLUTE',
    });
  });

  it('never follows the last component when changing things', async () => {
    expect(await host.stat('/srv/absolute')).toMatchObject({ type: 'symlink' });
    await host.setOwnership('/srv/absolute', { uid, gid, mode: 0o600 });
    expect(statSync(path.join(root, 'etc/target')).mode & 0o777).toBe(0o644);

    await host.writeFile('/srv/nginx/site.conf', 'server {}\n', {
      uid,
      gid,
      mode: 0o640,
    });
    expect(readFileSync(path.join(root, 'etc/nginx/site.conf'), 'utf8')).toBe('server {}\n');
    expect(await host.stat('/etc/nginx/site.conf')).toMatchObject({
      type: 'file',
      mode: 0o640,
    });

    await host.writeFile('/srv/absolute', 'replaced\n', {
      uid,
      gid,
      mode: 0o644,
    });
    expect(await host.stat('/srv/absolute')).toMatchObject({ type: 'file' });
    expect(readFileSync(path.join(root, 'etc/target'), 'utf8')).toBe('inside\n');

    await host.remove('/srv/root');
    expect(await host.stat('/srv/root')).toBeUndefined();
    expect(await host.stat('/etc/target')).toMatchObject({ type: 'file' });
  });

  it('makes directories with owner and mode, and tolerates existing ones', async () => {
    await host.mkdir('/srv/data', { uid, gid, mode: 0o750 });
    await host.mkdir('/srv/data', { uid, gid, mode: 0o750 });
    expect(await host.stat('/srv/data')).toMatchObject({
      type: 'directory',
      mode: 0o750,
      uid,
      gid,
    });
  });
});
