import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../core/secrets.js';
import { FakeHost } from '../../hosts/fake.js';
import { LocalHost } from '../../hosts/local.js';
import { parseEnvironment, readHistory, resticAccess, runJob } from './job.js';
import { RESTIC_ENV } from './project.js';
import { listSnapshots, type ResticAccess } from './restic.js';

// A backup job against the real restic on this machine: files in a temporary directory;
// a database part that cannot run here (no postgres user) shows how a failure is recorded.

const PASSWORD = 'canary-job-password-2b7c';
let dir: string;
let access: ResticAccess;

describe('reconciler/drivers/backup/job (real restic)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-backup-job-'));
    const redactor = new Redactor();
    redactor.add(PASSWORD);
    access = {
      host: new LocalHost(),
      env: { RESTIC_REPOSITORY: path.join(dir, 'repo'), RESTIC_PASSWORD: PASSWORD },
      scrub: (t) => redactor.scrub(t),
      hostname: 'test-1',
    };
    await mkdir(path.join(dir, 'data'), { recursive: true });
    await writeFile(path.join(dir, 'data/a.txt'), 'alpha\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names snapshots after the managed host (uname -n there), not the machine HostKit runs on: over SSH they differ', async () => {
    const host = new FakeHost({ [RESTIC_ENV]: 'RESTIC_REPOSITORY="/var/backups/hostkit"\nRESTIC_PASSWORD="p"\n' });
    host.machineName = 'web-7';
    expect((await resticAccess(host)).hostname).toBe('web-7');
  });

  it('reads restic’s environment as HostKit writes it', () => {
    expect(parseEnvironment('# Managed by HostKit\nRESTIC_REPOSITORY="/var/backups/hostkit"\nRESTIC_PASSWORD="a \\"quoted\\" \\\\ one"\n')).toEqual({
      RESTIC_REPOSITORY: '/var/backups/hostkit',
      RESTIC_PASSWORD: 'a "quoted" \\ one',
    });
  });

  it('creates the repository on the first run, backs up the files, applies retention, records each outcome', async () => {
    const state = path.join(dir, 'state');
    const job = { project: 'shop', stateDirectory: state, files: { paths: [path.join(dir, 'data')], keep: { last: 2 } } };
    for (let i = 0; i < 3; i++) {
      const [r] = await runJob({ host: access.host, access, stateDirectory: state, job, trigger: 'scheduled' });
      expect(r).toMatchObject({ part: 'files', ok: true, trigger: 'scheduled', bytes: 6, snapshot: expect.stringMatching(/^[0-9a-f]{8,}$/) });
    }
    expect((await listSnapshots(access, ['project=shop'])).length).toBe(2);
    const history = await readHistory(access.host, state, 'shop');
    expect(history.records.map((r) => r.ok)).toEqual([true, true, true]);
  });

  it('a part that fails is recorded with its error, the other parts still run, and the failure is thrown', async () => {
    const state = path.join(dir, 'state2');
    const job = { project: 'crm', stateDirectory: state, database: { name: 'crm' }, files: { paths: [path.join(dir, 'data')] } };
    const error = await runJob({ host: access.host, access, stateDirectory: state, job, trigger: 'manual' }).then(
      () => new Error('no failure'),
      (e: unknown) => e as Error,
    );
    expect(error).toMatchObject({ code: 'BACKUP_FAILED' });
    expect(error.message).toContain('project crm: backup of database crm');
    const history = await readHistory(access.host, state, 'crm');
    expect(history.records.map((r) => [r.part, r.ok])).toEqual([
      ['database', false],
      ['files', true],
    ]);
    expect(history.records[0]!.error).toContain('backup of database crm');
    expect(JSON.stringify(history)).not.toContain(PASSWORD);
    expect((await listSnapshots(access, ['project=crm', 'kind=database'])).length).toBe(0);
  });
});
