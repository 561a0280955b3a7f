import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { renderStatusText } from '../../reconciler/commands/status-render.js';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { writeRepo } from '../support/fixtures.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { admin, CLUSTER, mapRootToPostgres } from './postgres-admin.js';
import { appliedOk, eventually, HOST_NAME, hostStatus, reconcile } from './reconcile.js';

// Scheduled backups on a real host: restic and pg_dump in the test image, HostKit's own
// CLI inside the host as the timers' hostkit (Host spec.hostkitPath, a wrapper around this
// checkout), a PostgreSQL database with rows and a data directory.

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const HOSTKIT = '/usr/local/bin/hostkit';
const REPOSITORY = '/var/backups/hostkit';
const PASSWORD = 'canary-backup-password-5e1a9';
const STATE = '/var/lib/hostkit';

function hostManifest(repository = REPOSITORY): string {
  return `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: ${HOST_NAME} }
spec:
  stateDirectory: ${STATE}
  hostkitPath: ${HOSTKIT}
  backup:
    repository: "${repository}"
    password: { file: /etc/hostkit/secrets/restic }
`;
}

// Backups every 10 seconds: the test waits for the timer, not for a day.
const SHOP = `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9401", --bind, 127.0.0.1]
    port: 9401
  database:
    password: { file: /etc/hostkit/secrets/shop-db }
    backup:
      schedule: "*-*-* *:*:00/10"
      keep: { last: 2 }
      drill: weekly
  backup:
    paths: [data]
    schedule: "*-*-* *:*:05/10"
    keep: { last: 2 }
`;

async function hostkit(m: TestHost, args: string[]) {
  return m.host.exec(HOSTKIT, args, { env: { NO_COLOR: '1' }, timeoutMs: 120_000 });
}

async function history(m: TestHost): Promise<{ part: string; ok: boolean; trigger: string; snapshot?: string; error?: string }[]> {
  const text = await m.host.readFile(`${STATE}/backups/shop.json`);
  return text ? (JSON.parse(text.toString()) as { records: { part: string; ok: boolean; trigger: string }[] }).records : [];
}

async function restic(m: TestHost, args: string[]) {
  return m.host.exec('restic', ['--no-cache', ...args], { env: { RESTIC_REPOSITORY: REPOSITORY, RESTIC_PASSWORD: PASSWORD }, timeoutMs: 120_000 });
}

describeHost('reconciler/drivers/backup (scheduled backups with restic) on a real host', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE) });

  beforeAll(async () => {
    const m = machine();
    await mapRootToPostgres(m);
    await m.exec('systemctl', ['reload', CLUSTER]);
    await m.host.writeFile(HOSTKIT, `#!/bin/sh\nexec ${NODE} ${NODE_FLAGS.join(' ')} ${CLI} "$@"\n`, { uid: 0, gid: 0, mode: 0o755 });
    await m.exec('mkdir', ['-p', '/etc/hostkit/secrets', '/srv/shop/data']);
    await m.host.writeFile('/etc/hostkit/secrets/restic', PASSWORD, { uid: 0, gid: 0, mode: 0o600 });
    await m.host.writeFile('/etc/hostkit/secrets/shop-db', 'shop-db-pw-1', { uid: 0, gid: 0, mode: 0o600 });
    await m.host.writeFile('/srv/shop/data/upload-1.bin', 'first upload\n', { uid: 0, gid: 0, mode: 0o644 });
  });

  it('one reconcile sets up the job, restic’s environment and the timers; the timers back up the database and the files', { timeout: 120_000 }, async () => {
    const m = machine();
    const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostManifest(), 'projects/shop.yaml': SHOP });
    appliedOk(await reconcile(m, repoDir));
    await admin(m, 'CREATE TABLE orders (id int primary key, item text); INSERT INTO orders SELECT g, $$item $$ || g FROM generate_series(1, 500) g;', 'shop');
    const env = await m.host.stat('/etc/hostkit/backup/restic.env');
    expect(env).toMatchObject({ uid: 0, mode: 0o600 });
    expect((await m.exec('systemctl', ['is-active', 'hk-shop-backup-database.timer', 'hk-shop-backup-files.timer'])).stdout).toBe('active\nactive\n');
    // The timers fire by themselves (every 10 s): a database and a files backup recorded as scheduled.
    expect(
      await eventually(async () => {
        const records = await history(m);
        return ['database', 'files'].every((part) => records.some((r) => r.part === part && r.ok && r.trigger === 'scheduled'));
      }, 60_000),
    ).toBe(true);
    const snapshots = JSON.parse((await restic(m, ['snapshots', '--json'])).stdout) as { tags: string[]; paths: string[] }[];
    expect(snapshots.some((s) => s.tags.includes('kind=database') && s.paths.includes('/shop/shop.dump'))).toBe(true);
    expect(snapshots.some((s) => s.tags.includes('kind=files') && s.paths.includes('/srv/shop/data'))).toBe(true);
    // The dump is PostgreSQL's custom format, and holds the table.
    const listing = await m.host.exec(
      'bash',
      ['-c', 'set -o pipefail; restic --no-cache dump latest /shop/shop.dump --tag kind=database | pg_restore --list'],
      {
        env: { RESTIC_REPOSITORY: REPOSITORY, RESTIC_PASSWORD: PASSWORD },
      },
    );
    expect(listing.exitCode).toBe(0);
    expect(listing.stdout).toMatch(/TABLE DATA public orders/);
  });

  it('hostkit backups lists them; retention keeps the declared number; no password in any output or record', { timeout: 120_000 }, async () => {
    const m = machine();
    expect(await eventually(async () => (await history(m)).filter((r) => r.part === 'database' && r.ok).length >= 3, 60_000)).toBe(true);
    const listed = await hostkit(m, ['backups', '--project', 'shop', '-o', 'json']);
    expect(listed.exitCode).toBe(0);
    const doc = JSON.parse(listed.stdout) as { projects: { project: string; snapshots: { kind: string }[]; last: Record<string, { ok: boolean }> }[] };
    expect(doc.projects[0]).toMatchObject({ project: 'shop', last: { database: { ok: true }, files: { ok: true } } });
    // keep: { last: 2 } per part (a backup running right now may add one until its forget).
    expect(doc.projects[0]!.snapshots.filter((s) => s.kind === 'database').length).toBeLessThanOrEqual(3);
    const text = await hostkit(m, ['backups']);
    expect(text.stdout).toMatch(/^shop\n {2}database {2}last backup \S+ ok/m);
    const manual = await hostkit(m, ['backups', 'run', 'shop', '--database']);
    expect(manual.exitCode).toBe(0);
    expect(manual.stdout).toMatch(/^project shop: database backed up in [\d.]+s: snapshot [0-9a-f]{8}/);
    for (const out of [listed.stdout, text.stdout, manual.stdout, manual.stderr, JSON.stringify(await history(m))]) expect(out).not.toContain(PASSWORD);
    const journal = (await m.host.exec('journalctl', ['--no-pager', '-o', 'cat', '-u', 'hk-shop-backup-database.service'])).stdout;
    expect(journal).not.toContain(PASSWORD);
  });

  it(
    'backups restore --to-scratch: the same row counts in a scratch database and the same file checksums, the live data untouched',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      expect((await hostkit(m, ['backups', 'run', 'shop'])).exitCode).toBe(0);
      const live = {
        orders: await admin(m, 'SELECT count(*) FROM orders', 'shop'),
        sum: (await m.exec('sha256sum', ['/srv/shop/data/upload-1.bin'])).stdout.slice(0, 64),
      };
      const r = await hostkit(m, ['backups', 'restore', 'shop', '--to-scratch', '-o', 'json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as {
        restores: (
          | { part: 'database'; database: string; tables: { table: string; rows: number }[]; dumpTables: number; seconds: number }
          | { part: 'files'; directory: string; files: { path: string; sha256: string }[]; seconds: number }
        )[];
      };
      const db = doc.restores.find((x) => x.part === 'database')!;
      const files = doc.restores.find((x) => x.part === 'files')!;
      if (db.part !== 'database' || files.part !== 'files') throw new Error('both parts expected');
      expect(db.database).toMatch(/^hk_scratch_shop_\d{8}_\d{6}_\d{3}$/);
      expect(db.tables).toContainEqual({ table: 'public.orders', rows: Number(live.orders) });
      expect(db.dumpTables).toBeGreaterThanOrEqual(1);
      expect(await admin(m, 'SELECT count(*) FROM orders', db.database)).toBe(live.orders);
      expect(files.files).toContainEqual(expect.objectContaining({ path: '/srv/shop/data/upload-1.bin', sha256: live.sum }));
      expect(files.directory.startsWith(`${STATE}/scratch/shop-`)).toBe(true);
      expect(await m.host.stat(files.directory)).toMatchObject({ uid: 0 });
      // The live database and files are as they were.
      expect(await admin(m, 'SELECT count(*) FROM orders', 'shop')).toBe(live.orders);
      const text = await hostkit(m, ['backups', 'restore', 'shop', '--to-scratch', '--database']);
      expect(text.exitCode, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/^project shop: database snapshot [0-9a-f]{8} \(\S+\) restored in [\d.]+s into scratch database hk_scratch_shop_/);
      expect(text.stdout).toMatch(/public\.orders +500 rows/);
      const refused = await hostkit(m, ['backups', 'restore', 'shop']);
      expect([refused.exitCode, refused.stderr]).toEqual([2, expect.stringContaining('--to-scratch')]);
    },
  );

  it(
    'a restore drill restores the newest database backup into a scratch copy, checks it, drops it and records it; status shows the last good one',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      expect((await m.exec('systemctl', ['is-active', 'hk-shop-backup-drill.timer'])).stdout).toBe('active\n');
      const before = (await admin(m, "SELECT count(*) FROM pg_database WHERE datname LIKE 'hk_scratch_%'", 'postgres')).trim();
      const r = await hostkit(m, ['backups', 'restore', 'shop', '--to-scratch', '--database', '--drill']);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /^project shop: restore drill of database snapshot [0-9a-f]{8} passed in [\d.]+s: \d+ table\(s\), \d+ rows; the scratch copy is dropped$/m,
      );
      expect((await admin(m, "SELECT count(*) FROM pg_database WHERE datname LIKE 'hk_scratch_%'", 'postgres')).trim()).toBe(before);
      expect((await history(m)).at(-1)).toMatchObject({ part: 'drill', ok: true, trigger: 'manual' });
      const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostManifest(), 'projects/shop.yaml': SHOP });
      const status = await hostStatus(m, await reconcile(m, repoDir, { dryRun: true }), STATE);
      expect(status.projects.find((p) => p.name === 'shop')!.backups).toMatchObject({ database: { last: { ok: true } }, drill: { last: { ok: true } } });
      expect(renderStatusText(status)).toMatch(/backup +drill +ok at /);
    },
  );

  it('a noop after it spawns no restic and makes no change', { timeout: 120_000 }, async () => {
    const m = machine();
    const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostManifest(), 'projects/shop.yaml': SHOP });
    const commands: string[] = [];
    const exec = m.host.exec.bind(m.host);
    m.host.exec = async (file, args, options) => {
      commands.push(file);
      return exec(file, args, options);
    };
    try {
      expect(appliedOk(await reconcile(m, repoDir)).status).toBe('no-changes');
    } finally {
      m.host.exec = exec;
    }
    expect(commands.filter((c) => c.includes('restic') || c.includes('pg_dump'))).toEqual([]);
  });

  it('a backup to an unreachable repository fails and is reported; a reconcile still applies', { timeout: 120_000 }, async () => {
    const m = machine();
    const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostManifest('sftp:nobody@127.0.0.1:2/nowhere'), 'projects/shop.yaml': SHOP });
    appliedOk(await reconcile(m, repoDir));
    const run = await hostkit(m, ['backups', 'run', 'shop', '--files']);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/project shop: files backup failed after/);
    const last = (await history(m)).at(-1)!;
    expect(last).toMatchObject({ part: 'files', ok: false });
    expect(last.error).toMatch(/could not be (opened|reached)|restic exited/);
    // Back to the good repository: the reconcile applies regardless of the failed backup.
    const good = await writeRepo({ 'hosts/test-host.yaml': hostManifest(), 'projects/shop.yaml': SHOP });
    expect(appliedOk(await reconcile(m, good)).status).toBe('applied');
  });

  it('kill -9 during a backup leaves the repository consistent: restic check passes and the next backup succeeds', { timeout: 180_000 }, async () => {
    const m = machine();
    await m.exec('systemctl', ['stop', 'hk-shop-backup-database.timer', 'hk-shop-backup-files.timer']);
    // A bigger database, so the dump is still streaming when it is killed.
    await admin(m, 'CREATE TABLE blobs AS SELECT g AS id, md5(g::text) || repeat(md5(random()::text), 40) AS body FROM generate_series(1, 60000) g;', 'shop');
    await m.exec('systemd-run', ['--unit', 'hk-test-backup', '--collect', HOSTKIT, 'backups', 'run', 'shop', '--database']);
    expect(await eventually(async () => (await m.host.exec('pgrep', ['-x', 'restic'])).exitCode === 0, 20_000, 50)).toBe(true);
    await m.host.exec('pkill', ['-9', '-x', 'restic']);
    await m.host.exec('systemctl', ['kill', '-s', 'KILL', 'hk-test-backup']);
    expect((await restic(m, ['check'])).exitCode).toBe(0);
    const again = await hostkit(m, ['backups', 'run', 'shop', '--database']);
    expect(again.exitCode, again.stdout + again.stderr).toBe(0);
    expect((await restic(m, ['check'])).exitCode).toBe(0);
  });
});
