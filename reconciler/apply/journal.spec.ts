import { describe, expect, it } from 'vitest';
import { FakeHost } from '../hosts/fake.js';
import type { AppendOptions, Ownership } from '../hosts/types.js';
import { RunJournal } from './journal.js';

// Records which appends asked to be synced, which FakeHost does not keep.
class SyncRecordingHost extends FakeHost {
  readonly appends: { event: string; sync: boolean }[] = [];
  override appendFile(p: string, data: Buffer | string, o: Ownership, options?: AppendOptions): Promise<void> {
    this.appends.push({ event: (JSON.parse(String(data)) as { ev: string }).ev, sync: options?.sync ?? false });
    return super.appendFile(p, data, o);
  }
}

describe('reconciler/apply/journal', () => {
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
});
