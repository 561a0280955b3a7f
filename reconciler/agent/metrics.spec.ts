import { describe, expect, it } from 'vitest';
import { FakeHost } from '../hosts/fake.js';
import { readBackupHistories } from '../drivers/backup/job.js';
import { AgentMetrics } from './metrics.js';

describe('reconciler/agent/metrics: backups', () => {
  it('reads STATE/backups at each scrape: last success time, whether the last failed, bytes of the last good one', async () => {
    const host = new FakeHost();
    const records = (project: string, list: object[]) => JSON.stringify({ project, records: list });
    host.seedFile(
      '/var/lib/hostkit/backups/shop.json',
      records('shop', [
        { part: 'database', at: '2026-12-07T03:00:00.000Z', ok: true, seconds: 1, bytes: 4096, trigger: 'scheduled' },
        { part: 'database', at: '2026-12-07T04:00:00.000Z', ok: false, seconds: 1, error: 'unreachable', trigger: 'scheduled' },
        { part: 'files', at: '2026-12-07T04:05:00.000Z', ok: true, seconds: 1, bytes: 10, trigger: 'scheduled' },
      ]),
    );
    const metrics = new AgentMetrics('web-1');
    metrics.watchBackups(() => readBackupHistories(host, '/var/lib/hostkit'));
    const first = (await metrics.expose()).body;
    expect(first).toContain('hostkit_backup_last_failed{host="web-1",project="shop",part="database"} 1');
    expect(first).toContain('hostkit_backup_last_failed{host="web-1",project="shop",part="files"} 0');
    expect(first).toContain(
      `hostkit_backup_last_success_timestamp_seconds{host="web-1",project="shop",part="database"} ${Date.parse('2026-12-07T03:00:00Z') / 1000}`,
    );
    expect(first).toContain('hostkit_backup_last_bytes{host="web-1",project="shop",part="files"} 10');
    // A backup that ran since: the next scrape sees it.
    host.seedFile(
      '/var/lib/hostkit/backups/shop.json',
      records('shop', [{ part: 'database', at: '2026-12-07T05:00:00.000Z', ok: true, seconds: 1, bytes: 5000, trigger: 'manual' }]),
    );
    const second = (await metrics.expose()).body;
    expect(second).toContain('hostkit_backup_last_failed{host="web-1",project="shop",part="database"} 0');
    expect(second).not.toContain('part="files"');
  });
});
