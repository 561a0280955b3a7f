import { mkdtemp, rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FakeHost } from '../hosts/fake.js';
import { LocalHost } from '../hosts/local.js';
import type { AppendOptions, Ownership } from '../hosts/types.js';
import { silentLogger } from '../core/log.js';
import { listRuns, RunJournal } from './journal.js';
import { applyRestore, planRestore, recoverInterruptedRun } from './restore.js';

// Records which appends asked to be synced, which FakeHost does not keep.
class SyncRecordingHost extends FakeHost {
  readonly appends: { event: string; sync: boolean }[] = [];
  override appendFile(p: string, data: Buffer | string, o: Ownership, options?: AppendOptions): Promise<void> {
    this.appends.push({ event: (JSON.parse(String(data)) as { ev: string }).ev, sync: options?.sync ?? false });
    return super.appendFile(p, data, o);
  }
}

describe('reconciler/apply/journal', () => {
  it('a run killed while its journal is being opened is found and closed by the next start-up, never listed as open for good', async () => {
    const host = new FakeHost();
    const id = '20261122T053900123Z-a1b2c3';
    // The kill: the events file of the run is never written.
    host.failOn.add(`/var/lib/hostkit/runs/${id}/events.jsonl`);
    await expect(RunJournal.open(host, '/var/lib/hostkit', { id, type: 'apply', host: 'test-1', planned: [] })).rejects.toThrow(/simulated failure/);
    host.failOn.clear();
    expect((await recoverInterruptedRun(host, '/var/lib/hostkit', silentLogger()))?.run).toBe(id);
    expect((await listRuns(host, '/var/lib/hostkit')).map((r) => [r.record.id, r.status])).toEqual([[id, 'interrupted-rolled-back']]);
  });

  it('syncs the events recovery decides by (begin, down, end) to disk, and only those', async () => {
    const host = new SyncRecordingHost({ '/srv/a.conf': 'one\n' });
    const journal = await RunJournal.open(host, '/var/lib/hostkit', { type: 'apply', host: 'test-1', planned: [] });
    await journal.backupFile('file/srv/a.conf', '/srv/a.conf');
    await journal.event({ ev: 'begin', id: 'file/srv/a.conf' });
    await journal.event({ ev: 'applied', id: 'file/srv/a.conf', ms: 1 });
    await journal.event({ ev: 'verified' });
    await journal.event({ ev: 'down', id: 'command/a-migrate', ok: true });
    await journal.close('applied');
    expect(host.appends).toEqual([
      { event: 'backup', sync: false },
      { event: 'begin', sync: true },
      { event: 'applied', sync: false },
      { event: 'verified', sync: false },
      { event: 'down', sync: true },
      { event: 'end', sync: true },
    ]);
  });

  it('backupFiles records each path once, in the order given: a file with its bytes and ownership, a link, an absent path', async () => {
    const host = new FakeHost({ '/srv/a.conf': 'one\n' });
    await host.symlink('releases/a', '/srv/current');
    const journal = await RunJournal.open(host, '/var/lib/hostkit', { type: 'apply', host: 'test-1', planned: [] });
    await journal.backupFiles('site/a', ['/srv/missing', '/srv/a.conf', '/srv/current', '/srv/a.conf']);
    await journal.backupFiles('site/a', ['/srv/a.conf']);
    const backups = journal.events.filter((e) => e.ev === 'backup').map(({ t: _t, ...e }) => e);
    expect(backups).toEqual([
      { ev: 'backup', id: 'site/a', target: { type: 'file', path: '/srv/missing' }, absent: true },
      { ev: 'backup', id: 'site/a', target: { type: 'file', path: '/srv/a.conf' }, file: 'backups/1', mode: 0o644, uid: 0, gid: 0 },
      { ev: 'backup', id: 'site/a', target: { type: 'file', path: '/srv/current' }, link: 'releases/a' },
    ]);
    expect((await journal.readBackup('backups/1'))?.toString()).toBe('one\n');
  });

  it('backs up a symlink as where it points, and a restore points it back there rather than removing it', async () => {
    const host = new FakeHost({ '/srv/app/releases/a/app.py': 'A', '/srv/app/releases/b/app.py': 'B' });
    await host.symlink('releases/a', '/srv/app/current');
    const journal = await RunJournal.open(host, '/var/lib/hostkit', { type: 'apply', host: 'test-1', planned: [] });
    await journal.backupFile('release/app', '/srv/app/current');
    await journal.event({ ev: 'begin', id: 'release/app' });
    await host.symlink('releases/b', '/srv/app/current');
    const plan = await planRestore(journal);
    expect(plan.steps).toEqual([{ action: 'restore-link', resource: 'release/app', path: '/srv/app/current', target: 'releases/a', unchanged: false }]);
    expect((await applyRestore(plan, journal, { log: silentLogger() })).errors).toEqual([]);
    expect(await host.readlink('/srv/app/current')).toBe('releases/a');
    expect((await planRestore(journal)).steps[0]).toMatchObject({ action: 'restore-link', unchanged: true });
  });

  it('removes a link a run made where there was nothing, though it points to a directory (a real file system, not read through)', async () => {
    const root = await mkdtemp('/tmp/hk-journal-');
    try {
      const host = new LocalHost({ root });
      const owner = { uid: process.getuid!(), gid: process.getgid!(), mode: 0o755 };
      await host.mkdir('/srv', owner);
      await host.mkdir('/srv/app', owner);
      await host.mkdir('/srv/app/releases', owner);
      await host.mkdir('/srv/app/releases/a', owner);
      const journal = await RunJournal.open(host, '/var/lib/hostkit', { type: 'apply', host: 'test-1', planned: [] });
      await journal.backupFile('release/app', '/srv/app/current');
      await journal.event({ ev: 'begin', id: 'release/app' });
      await host.symlink('releases/a', '/srv/app/current');
      const plan = await planRestore(journal);
      expect(plan.steps).toEqual([{ action: 'remove-file', resource: 'release/app', path: '/srv/app/current', unchanged: false }]);
      expect((await applyRestore(plan, journal, { log: silentLogger() })).errors).toEqual([]);
      expect(await host.stat('/srv/app/current')).toBeUndefined();
      expect((await host.stat('/srv/app/releases/a'))?.type).toBe('directory');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
