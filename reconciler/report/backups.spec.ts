import { describe, expect, it } from 'vitest';
import { FakeHost } from '../hosts/fake.js';
import { backupSummaries, backupText } from './backups.js';

const STATE = '/var/lib/hostkit';

function seed(host: FakeHost, project: string, records: unknown[]): void {
  host.seedFile(`${STATE}/backups/${project}.json`, JSON.stringify({ project, records }), { uid: 0, gid: 0, mode: 0o600 });
}

describe('report/backups (the agent report’s backups)', () => {
  it('names each part’s last good backup and the last drill that passed, and the parts whose newest attempt failed', async () => {
    const host = new FakeHost();
    seed(host, 'shop', [
      { part: 'database', at: '2026-12-07T01:00:00.000Z', ok: true, seconds: 1, trigger: 'scheduled' },
      { part: 'drill', at: '2026-12-07T02:00:00.000Z', ok: true, seconds: 3, trigger: 'scheduled' },
      { part: 'files', at: '2026-12-07T03:00:00.000Z', ok: true, seconds: 1, trigger: 'scheduled' },
      { part: 'database', at: '2026-12-07T04:00:00.000Z', ok: false, seconds: 1, error: 'restic exited 1: repository unreachable', trigger: 'scheduled' },
    ]);
    seed(host, 'empty', []);
    const [shop, ...rest] = await backupSummaries(host, STATE);
    expect(rest).toEqual([]);
    expect(shop).toEqual({
      project: 'shop',
      lastGood: { database: '2026-12-07T01:00:00.000Z', drill: '2026-12-07T02:00:00.000Z', files: '2026-12-07T03:00:00.000Z' },
      failing: [{ part: 'database', at: '2026-12-07T04:00:00.000Z', error: 'restic exited 1: repository unreachable' }],
    });
    expect(backupText(shop!)).toBe(
      'database 2026-12-07T01:00:00.000Z, files 2026-12-07T03:00:00.000Z, restore drill passed 2026-12-07T02:00:00.000Z, database FAILED 2026-12-07T04:00:00.000Z',
    );
  });

  it('a host without backups reports none (one directory read)', async () => {
    expect(await backupSummaries(new FakeHost(), STATE)).toEqual([]);
  });
});
