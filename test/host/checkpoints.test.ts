import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { writeRepo } from '../support/fixtures.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { admin, CLUSTER, mapRootToPostgres } from './postgres-admin.js';
import { applied, appliedOk, HOST_NAME, reconcile } from './reconcile.js';

// Checkpoints on a real host: a run dumps the project's database into restic before its
// migration (a before-start lifecycle command), and a rollback puts the rows back: the
// run's own when it fails and the project sets restoreDataOnRollback, or
// `hostkit rollback --with-data` after a run that succeeded.

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const HOSTKIT = '/usr/local/bin/hostkit';
const REPOSITORY = '/var/backups/hostkit';
const PASSWORD = 'canary-checkpoint-password-7c2f1';
const STATE = '/var/lib/hostkit';

const HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: ${HOST_NAME} }
spec:
  stateDirectory: ${STATE}
  hostkitPath: ${HOSTKIT}
  backup:
    repository: "${REPOSITORY}"
    password: { file: /etc/hostkit/secrets/restic }
`;

/** The shop: a service with a health check, a database, and migrations that delete rows above `keepBelow`. */
function shop(options: { migrations?: { name: string; keepUpTo: number }[]; healthPath?: string; restoreDataOnRollback?: boolean; backup?: boolean }): string {
  const lifecycle = (options.migrations ?? []).map(
    (m) => `    - name: ${m.name}
      phase: before-start
      command: [/bin/sh, -c, 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qc "DELETE FROM orders WHERE id > ${m.keepUpTo}"']`,
  );
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: shop }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9411", --bind, 127.0.0.1]
    port: 9411
  health:
    http: { path: ${options.healthPath ?? '/'} }
    timeout: 2s
    retries: 2
  database:
    password: { file: /etc/hostkit/secrets/shop-db }
${options.restoreDataOnRollback ? '    restoreDataOnRollback: true\n' : ''}${options.backup ? '    backup: { schedule: "*-*-* 03:00:00" }\n' : ''}${lifecycle.length > 0 ? `  lifecycle:\n${lifecycle.join('\n')}\n` : ''}`;
}

async function hostkit(m: TestHost, args: string[]) {
  return m.host.exec(HOSTKIT, args, { env: { NO_COLOR: '1' }, timeoutMs: 180_000 });
}

async function rows(m: TestHost): Promise<number> {
  return Number((await admin(m, 'SELECT count(*) FROM orders', 'shop')).trim());
}

async function checkpoints(m: TestHost): Promise<{ id: string; tags: string[] }[]> {
  const r = await m.host.exec('restic', ['--no-cache', 'snapshots', '--json', '--tag', 'kind=checkpoint'], {
    env: { RESTIC_REPOSITORY: REPOSITORY, RESTIC_PASSWORD: PASSWORD },
    timeoutMs: 60_000,
  });
  if (/Is there a repository/.test(r.stderr)) return []; // none taken yet
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout || '[]') as { id: string; tags: string[] }[];
}

describeHost('reconciler/drivers/backup (checkpoints before migrations and releases) on a real host', () => {
  const machine = useHost({ bindReadOnly: checkoutMounts(WORKTREE) });

  beforeAll(async () => {
    const m = machine();
    await mapRootToPostgres(m);
    await m.exec('systemctl', ['reload', CLUSTER]);
    await m.host.writeFile(HOSTKIT, `#!/bin/sh\nexec ${NODE} ${NODE_FLAGS.join(' ')} ${CLI} "$@"\n`, { uid: 0, gid: 0, mode: 0o755 });
    await m.exec('mkdir', ['-p', '/etc/hostkit/secrets']);
    await m.host.writeFile('/etc/hostkit/secrets/restic', PASSWORD, { uid: 0, gid: 0, mode: 0o600 });
    await m.host.writeFile('/etc/hostkit/secrets/shop-db', 'shop-db-pw-1', { uid: 0, gid: 0, mode: 0o600 });
    // The shop before any migration: 500 orders, the table the shop's role owns.
    appliedOk(await reconcile(m, await writeRepo({ 'hosts/test-host.yaml': HOST, 'projects/shop.yaml': shop({}) })));
    await admin(
      m,
      'CREATE TABLE orders (id int primary key, item text); INSERT INTO orders SELECT g, $$item $$ || g FROM generate_series(1, 500) g; ALTER TABLE orders OWNER TO shop;',
      'shop',
    );
  });

  it('a migration deletes rows and the health check fails: with restoreDataOnRollback the rollback puts the rows back', { timeout: 180_000 }, async () => {
    const m = machine();
    const before = (await checkpoints(m)).length;
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': HOST,
      'projects/shop.yaml': shop({ migrations: [{ name: 'trim', keepUpTo: 100 }], healthPath: '/missing', restoreDataOnRollback: true }),
    });
    const outcome = await reconcile(m, repoDir);
    const result = applied(outcome);
    if (result.status !== 'rolled-back') throw new Error(`expected the run to roll back, it ended ${result.status}`);
    expect(result.failed.id).toBe('health/shop');
    // The checkpoint was taken in that run, before the migration ran (the migration did delete: the rows came back).
    const taken = await checkpoints(m);
    expect(taken.length).toBe(before + 1);
    expect(taken.at(-1)!.tags).toEqual(expect.arrayContaining(['hostkit', 'project=shop', 'kind=checkpoint', `run=${result.run}`]));
    expect(await rows(m)).toBe(500);
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
    // Only the live database is left: the restore's working copies are gone.
    expect((await admin(m, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'hk_%'")).trim()).toBe('');
  });

  it(
    'after a good migration, rollback --last --with-data restores the rows as they were; a rollback without it says the data stayed',
    { timeout: 240_000 },
    async () => {
      const m = machine();
      const config = (migrations: { name: string; keepUpTo: number }[]) =>
        writeRepo({ 'hosts/test-host.yaml': HOST, 'projects/shop.yaml': shop({ migrations }) });
      const result = appliedOk(await reconcile(m, await config([{ name: 'trim-200', keepUpTo: 200 }])));
      const order = result.steps.map((s) => s.id);
      expect(order).toEqual(expect.arrayContaining(['checkpoint/shop', 'command/shop-trim-200']));
      expect(order.indexOf('checkpoint/shop')).toBeLessThan(order.indexOf('command/shop-trim-200'));
      expect(await rows(m)).toBe(200);
      // Orders written after the migration are lost by a restore of the data.
      await admin(m, "INSERT INTO orders VALUES (9001, 'after the migration')", 'shop');

      const dry = await hostkit(m, ['rollback', '--last', '--dry-run', '--with-data']);
      expect(dry.exitCode, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/restore database shop of project shop from checkpoint [0-9a-f]{8}/);
      expect(await rows(m)).toBe(201);

      const withData = await hostkit(m, ['rollback', '--last', '--with-data']);
      expect(withData.exitCode, withData.stdout + withData.stderr).toBe(0);
      expect(await rows(m)).toBe(500);
      expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
      // The data it replaced was checkpointed by the rollback's own run first: a rollback of it brings those 201 rows back.
      const runs = JSON.parse((await hostkit(m, ['runs', '-o', 'json'])).stdout) as { runs: { id: string; type: string; target?: string }[] };
      const restoring = runs.runs.filter((r) => r.type === 'rollback' && r.target === result.run).at(-1)!;
      expect((await checkpoints(m)).some((s) => s.tags.includes(`run=${restoring.id}`))).toBe(true);
      const undo = await hostkit(m, ['rollback', '--run', restoring.id, '--with-data']);
      expect(undo.exitCode, undo.stdout + undo.stderr).toBe(0);
      expect(await rows(m)).toBe(201);

      // Another migration, then a rollback without --with-data: code and configuration back, the data as it is, and said so.
      const next = appliedOk(
        await reconcile(
          m,
          await config([
            { name: 'trim-200', keepUpTo: 200 },
            { name: 'trim-150', keepUpTo: 150 },
          ]),
        ),
      );
      expect(next.steps.map((s) => s.id)).toContain('checkpoint/shop');
      expect(await rows(m)).toBe(150);
      const plain = await hostkit(m, ['rollback', '--last']);
      expect(plain.exitCode, plain.stderr).toBe(0);
      expect(plain.stdout + plain.stderr).toMatch(/database shop of project shop was not reverted: its checkpoint [0-9a-f]{8} from before run \S+ is kept/);
      expect(plain.stdout + plain.stderr).toMatch(/--with-data/);
      expect(await rows(m)).toBe(150);
      // No password in anything the commands printed.
      for (const out of [dry, withData, undo, plain]) expect(out.stdout + out.stderr).not.toContain(PASSWORD);
    },
  );

  it('a run that changes nothing guarded takes no checkpoint; checkpoints go with their run journals', { timeout: 180_000 }, async () => {
    const m = machine();
    const before = (await checkpoints(m)).length;
    expect(before).toBeGreaterThan(0);
    // A new migration is checkpointed; then nothing is pending: no checkpoint.
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': HOST,
      'projects/shop.yaml': shop({
        migrations: [
          { name: 'trim-200', keepUpTo: 200 },
          { name: 'trim-300', keepUpTo: 300 },
        ],
      }),
    });
    expect(appliedOk(await reconcile(m, repoDir)).steps.map((s) => s.id)).toContain('checkpoint/shop');
    expect((await checkpoints(m)).length).toBe(before + 1);
    const again = applied(await reconcile(m, repoDir));
    expect(again.status).toBe('no-changes');
    expect((await checkpoints(m)).length).toBe(before + 1);
    // Pruning the journals down to one forgets every checkpoint of the runs pruned.
    const pruned = await hostkit(m, ['runs', '--prune', '--keep', '1']);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    const left = await checkpoints(m);
    const runs = new Set(((await m.host.readdir(`${STATE}/runs`)) ?? []).map(String));
    expect(left.every((s) => s.tags.some((t) => t.startsWith('run=') && runs.has(t.slice(4))))).toBe(true);
    expect(left.length).toBeLessThan(before + 1);
  });
  it('backups restore --to-live needs --yes, replaces the live rows, and is undone by rollback --last --with-data', { timeout: 180_000 }, async () => {
    const m = machine();
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': HOST,
      'projects/shop.yaml': shop({ migrations: [{ name: 'trim-200', keepUpTo: 200 }], backup: true }),
    });
    appliedOk(await reconcile(m, repoDir));
    const live = await rows(m);
    const backedUp = await hostkit(m, ['backups', 'run', 'shop', '--database']);
    expect(backedUp.exitCode, backedUp.stdout + backedUp.stderr).toBe(0);
    await admin(m, 'DELETE FROM orders WHERE id > 10', 'shop');
    expect(await rows(m)).toBe(10);

    const unsure = await hostkit(m, ['backups', 'restore', 'shop', '--to-live']);
    expect(unsure.exitCode).toBe(2);
    expect(unsure.stderr).toMatch(/replaces project shop's live database shop .*add --yes/);
    expect(await rows(m)).toBe(10);

    const restored = await hostkit(m, ['backups', 'restore', 'shop', '--to-live', '--yes']);
    expect(restored.exitCode, restored.stdout + restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(/database shop restored from snapshot [0-9a-f]{8} .* as run (\S+)/);
    expect(await rows(m)).toBe(live);
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');

    const undone = await hostkit(m, ['rollback', '--last', '--with-data']);
    expect(undone.exitCode, undone.stdout + undone.stderr).toBe(0);
    expect(await rows(m)).toBe(10);
    for (const out of [backedUp, unsure, restored, undone]) expect(out.stdout + out.stderr).not.toContain(PASSWORD);
  });

  it('a checkpoint that cannot be taken (the repository unreachable) stops the run before the migration runs', { timeout: 180_000 }, async () => {
    const m = machine();
    const before = await rows(m);
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': HOST.replace(`repository: "${REPOSITORY}"`, 'repository: "rest:http://127.0.0.1:9/"'),
      'projects/shop.yaml': shop({
        migrations: [
          { name: 'trim-200', keepUpTo: 200 },
          { name: 'trim-5', keepUpTo: 5 },
        ],
        backup: true,
      }),
    });
    const result = applied(await reconcile(m, repoDir));
    if (result.status !== 'rolled-back') throw new Error(`expected the run to roll back, it ended ${result.status}`);
    expect(result.failed.id).toBe('checkpoint/shop');
    expect(result.failed.error).toMatch(/checkpoint of database shop/);
    expect(result.steps.map((s) => s.id)).not.toContain('command/shop-trim-5');
    expect(await rows(m)).toBe(before);
    // restic's environment is back as it was (the local repository), and the service runs.
    expect((await m.host.readFile('/etc/hostkit/backup/restic.env'))?.toString()).toContain(REPOSITORY);
    expect((await m.exec('systemctl', ['is-active', 'hk-shop.service'])).stdout.trim()).toBe('active');
  });

  it('dropping a database (drop: true) checkpoints it first: rollback --with-data brings it back with its rows', { timeout: 180_000 }, async () => {
    const m = machine();
    const legacy = (drop: boolean) => `apiVersion: hostkit.dev/v1
kind: PostgresRole
metadata: { name: legacy }
spec:
  placement: { hosts: [${HOST_NAME}] }
---
apiVersion: hostkit.dev/v1
kind: PostgresDatabase
metadata: { name: legacy }
spec:
  placement: { hosts: [${HOST_NAME}] }
  owner: legacy
${drop ? '  drop: true\n' : ''}`;
    const files = (drop: boolean) => ({
      'hosts/test-host.yaml': HOST,
      'hosts/legacy.yaml': legacy(drop),
      'projects/shop.yaml': shop({ migrations: [{ name: 'trim-200', keepUpTo: 200 }] }),
    });
    appliedOk(await reconcile(m, await writeRepo(files(false))));
    await admin(m, 'CREATE TABLE notes (id int); INSERT INTO notes SELECT generate_series(1, 42);', 'legacy');
    const dropped = appliedOk(await reconcile(m, await writeRepo(files(true))));
    const order = dropped.steps.map((s) => s.id);
    expect(order).toEqual(expect.arrayContaining(['checkpoint/legacy', 'pgdatabase/legacy']));
    expect(order.indexOf('checkpoint/legacy')).toBeLessThan(order.indexOf('pgdatabase/legacy'));
    expect((await admin(m, "SELECT count(*) FROM pg_database WHERE datname = 'legacy'")).trim()).toBe('0');
    const back = await hostkit(m, ['rollback', '--run', dropped.run!, '--with-data']);
    expect(back.exitCode, back.stdout + back.stderr).toBe(0);
    expect((await admin(m, 'SELECT count(*) FROM notes', 'legacy')).trim()).toBe('42');
    expect((await admin(m, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'legacy'")).trim()).toBe('legacy');
  });
});
