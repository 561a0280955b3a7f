import { describe, expect, it } from 'vitest';
import type { Resource } from '../../core/resource.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import { validateFiles } from '../../manifests/index.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import type { EnvFileSpec } from '../envfile/spec.js';
import type { FileSpec } from '../file/spec.js';
import type { TimerSpec, UnitSpec } from '../systemd/spec.js';
import type { BackupJob } from './project.js';
import type { CheckpointSpec } from './spec.js';

const enc = (s: string) => new TextEncoder().encode(s);

function host(backup: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: web-1 }
spec:
${backup}`;
}

const BACKUP = `  backup:
    repository: "s3:s3.example.com/backups"
    password: { file: /etc/hostkit/secrets/restic }
    environment:
      AWS_ACCESS_KEY_ID: { file: /etc/hostkit/secrets/s3-id }
`;

function shop(extra: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [web-1] }
  runtime: python
  service: { command: [/usr/bin/python3, app.py], port: 8080 }
  database:
    password: { file: /etc/hostkit/secrets/shop-db }
${extra}`;
}

async function expand(hostYaml: string, project: string) {
  const repo = await validateFiles(
    Object.entries({ 'hosts/web-1.yaml': hostYaml, 'projects/shop.yaml': project }).map(([file, text]) => ({ file, bytes: enc(text) })),
  );
  const h = repo.manifests.find((m) => m.kind === 'Host') as Manifest<HostManifest>;
  const expansion = expandForHost(repo.manifests, hostSettings(h));
  // `hostkit validate` expands for each host too: it reports what the expansion does.
  expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual(expansion.diagnostics.filter((d) => d.severity === 'error'));
  return { diagnostics: expansion.diagnostics, resources: new Map<string, Resource>(expansion.resources.map((r) => [r.id, r])) };
}

describe('reconciler/drivers/backup/project: scheduled backups of a project', () => {
  it('a database backup and a files backup: the job file, restic environment, and one root timer each, after the database', async () => {
    const { diagnostics, resources } = await expand(
      host(BACKUP),
      shop(`    backup: { schedule: daily, keep: { daily: 7, weekly: 4 }, drill: weekly }
  backup:
    paths: [shared/uploads, /var/lib/shop/data]
    schedule: hourly
    keep: { last: 24 }
`),
    );
    expect(diagnostics).toEqual([]);
    const job = JSON.parse((resources.get('file/etc/hostkit/backup/shop.json')!.spec as FileSpec).content) as BackupJob;
    expect(job).toEqual({
      project: 'shop',
      stateDirectory: '/var/lib/hostkit',
      database: { name: 'shop', keep: { daily: 7, weekly: 4 } },
      drill: 'weekly',
      files: { paths: ['/srv/shop/shared/uploads', '/var/lib/shop/data'], keep: { last: 24 } },
      units: ['hk-shop.service'],
    });
    expect(resources.get('file/etc/hostkit/backup/shop.json')!.spec).toMatchObject({ owner: 'root', group: 'root', mode: 0o600 });
    const env = resources.get('envfile/etc/hostkit/backup/restic.env')!.spec as EnvFileSpec;
    expect(env).toMatchObject({ owner: 'root', group: 'root', mode: 0o600, environment: { RESTIC_REPOSITORY: 's3:s3.example.com/backups' } });
    expect(env.secrets).toEqual({ RESTIC_PASSWORD: { file: '/etc/hostkit/secrets/restic' }, AWS_ACCESS_KEY_ID: { file: '/etc/hostkit/secrets/s3-id' } });
    const db = resources.get('unit/hk-shop-backup-database.service')!;
    expect((db.spec as UnitSpec).command).toEqual(['/usr/bin/hostkit', 'backups', 'run', 'shop', '--database', '--scheduled']);
    expect(db.spec).toMatchObject({ user: 'root', type: 'oneshot', restart: 'no' });
    expect(db.dependsOn).toEqual(expect.arrayContaining(['envfile/etc/hostkit/backup/restic.env', 'file/etc/hostkit/backup/shop.json', 'pgdatabase/shop']));
    expect((resources.get('timer/hk-shop-backup-database.timer')!.spec as TimerSpec).onCalendar).toEqual(['daily']);
    expect((resources.get('unit/hk-shop-backup-files.service')!.spec as UnitSpec).command).toContain('--files');
    expect((resources.get('timer/hk-shop-backup-files.timer')!.spec as TimerSpec).onCalendar).toEqual(['hourly']);
    // The restore drill: weekly, into a scratch copy that is checked and dropped.
    expect((resources.get('unit/hk-shop-backup-drill.service')!.spec as UnitSpec).command).toEqual([
      '/usr/bin/hostkit',
      'backups',
      'restore',
      'shop',
      '--to-scratch',
      '--database',
      '--drill',
      '--scheduled',
    ]);
    expect((resources.get('timer/hk-shop-backup-drill.timer')!.spec as TimerSpec).onCalendar).toEqual(['weekly']);
  });

  it('the repository defaults to a local path and hostkitPath names the command', async () => {
    const { resources } = await expand(
      host(`  hostkitPath: /opt/hostkit/bin/hostkit\n  backup:\n    password: { file: /etc/hostkit/secrets/restic }\n`),
      shop(`    backup: { schedule: daily }\n`),
    );
    expect((resources.get('envfile/etc/hostkit/backup/restic.env')!.spec as EnvFileSpec).environment).toEqual({ RESTIC_REPOSITORY: '/var/backups/hostkit' });
    expect((resources.get('unit/hk-shop-backup-database.service')!.spec as UnitSpec).command[0]).toBe('/opt/hostkit/bin/hostkit');
    expect(resources.has('unit/hk-shop-backup-files.service')).toBe(false);
  });

  it('without the Host spec.backup, or with a path outside the project, an error at the field and no backup resources', async () => {
    const none = await expand(host('  stateDirectory: /var/lib/hostkit\n'), shop(`    backup: { schedule: daily }\n`));
    expect(none.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'no backup repository',
        location: expect.objectContaining({ file: 'projects/shop.yaml', line: 10 }),
      }),
    ]);
    expect([...none.resources.keys()].filter((id) => id.includes('backup'))).toEqual([]);
    const outside = await expand(host(BACKUP), shop(`  backup:\n    paths: [data, /etc]\n    schedule: daily\n`));
    expect(outside.diagnostics).toEqual([
      expect.objectContaining({
        summary: 'backup path outside the project',
        detail: expect.stringContaining('/etc is not inside project shop'),
        location: expect.objectContaining({ line: 11 }),
      }),
    ]);
    // Only the host's restic environment (Host spec.backup): no job, no timer of the project.
    expect([...outside.resources.keys()].filter((id) => id.includes('backup'))).toEqual(['envfile/etc/hostkit/backup/restic.env']);
  });

  const MIGRATE = `  lifecycle:
    - { name: migrate, phase: before-start, command: [/usr/bin/python3, manage.py, migrate] }
`;
  const checkpoints = (resources: Map<string, Resource>) => [...resources.keys()].filter((id) => id.startsWith('checkpoint/'));

  it('a database and a before-start command, on a host with spec.backup: checkpoint/DATABASE guards the command and comes before it', async () => {
    const { diagnostics, resources } = await expand(host(BACKUP), shop(MIGRATE));
    expect(diagnostics).toEqual([]);
    expect(checkpoints(resources)).toEqual(['checkpoint/shop']);
    const checkpoint = resources.get('checkpoint/shop')!;
    expect(checkpoint.spec as CheckpointSpec).toEqual({
      database: 'shop',
      project: 'shop',
      databaseId: 'pgdatabase/shop',
      owner: 'shop',
      guards: ['command/shop-migrate'],
      restoreDataOnRollback: false,
      units: ['hk-shop.service'],
    });
    // After the database it dumps and restic's environment; the command waits for it.
    expect(checkpoint.dependsOn).toEqual(expect.arrayContaining(['envfile/etc/hostkit/backup/restic.env', 'pgrole/shop', 'pgdatabase/shop']));
    expect(resources.get('command/shop-migrate')!.dependsOn).toContain('checkpoint/shop');
    // Without database.backup, restic's environment is there for the checkpoint alone, and no job or timer.
    expect(resources.has('envfile/etc/hostkit/backup/restic.env')).toBe(true);
    expect([...resources.keys()].filter((id) => id.includes('backup-'))).toEqual([]);
  });

  it('a project with a source: the checkpoint guards its release too, before the switch', async () => {
    const source = `  source:\n    git: { url: "https://git.example.test/shop.git", ref: main }\n`;
    const { diagnostics, resources } = await expand(host(BACKUP), shop(source + MIGRATE));
    expect(diagnostics).toEqual([]);
    expect((resources.get('checkpoint/shop')!.spec as CheckpointSpec).guards).toEqual(['release/shop', 'command/shop-migrate']);
    expect(resources.get('release/shop')!.dependsOn).toContain('checkpoint/shop');
    const releaseOnly = await expand(host(BACKUP), shop(source));
    expect((releaseOnly.resources.get('checkpoint/shop')!.spec as CheckpointSpec).guards).toEqual(['release/shop']);
  });

  it('database.restoreDataOnRollback: the checkpoint says a failed run restores the data', async () => {
    const { resources } = await expand(host(BACKUP), shop(`    restoreDataOnRollback: true\n${MIGRATE}`));
    expect(resources.get('checkpoint/shop')!.spec).toMatchObject({ database: 'shop', restoreDataOnRollback: true });
  });

  it.each([
    ['the Host has no spec.backup', host('  stateDirectory: /var/lib/hostkit\n'), shop(MIGRATE)],
    ['database.checkpoint is false', host(BACKUP), shop(`    checkpoint: false\n${MIGRATE}`)],
    ['the project has neither a release nor a before-start command', host(BACKUP), shop('')],
    ['its only command runs after start', host(BACKUP), shop(`  lifecycle:\n    - { name: warm, phase: after-start, command: [/usr/bin/python3, warm.py] }\n`)],
  ])('no checkpoint when %s', async (_when, hostYaml, project) => {
    const { diagnostics, resources } = await expand(hostYaml, project);
    expect(diagnostics).toEqual([]);
    expect(checkpoints(resources)).toEqual([]);
    // restic's environment is the Host's (with spec.backup), whatever its projects declare.
    expect(resources.has('envfile/etc/hostkit/backup/restic.env')).toBe(hostYaml.includes('backup:'));
    for (const r of resources.values()) expect(r.dependsOn ?? []).not.toContain('checkpoint/shop');
  });

  it('no checkpoint for a project without a database', async () => {
    const { resources } = await expand(host(BACKUP), shop(MIGRATE).replace('  database:\n    password: { file: /etc/hostkit/secrets/shop-db }\n', ''));
    expect(resources.has('command/shop-migrate')).toBe(true);
    expect(checkpoints(resources)).toEqual([]);
  });
});
