import { expect, it } from 'vitest';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { toJsonPlan } from '../../reconciler/diff/render/json.js';
import { renderText } from '../../reconciler/diff/render/text.js';
import { HBA_LINE } from '../../reconciler/drivers/postgresql/access.js';
import { aptSourceManifest, describeHost, serveAptRepo, useHost, type TestHost } from './harness.js';
import { admin, CONF } from './postgres-admin.js';
import { applied, appliedOk, reconcile, repo, service } from './reconcile.js';

// HostKit's own PostgreSQL admin access (reconciler/drivers/postgresql/access.ts)
// on the standard image, from the stock Debian configuration: root may not log in
// as postgres until HostKit adds its peer map (test/host/postgres-admin.ts is NOT
// used here: that is the README's manual set-up).

const HBA = `${CONF}/pg_hba.conf`;
const IDENT = `${CONF}/pg_ident.conf`;
const STATE = '/var/lib/hostkit';
const PASSWORD = 'access-test-Password-1';

const shop = () => service('shop', 9301, '  database:\n    password: { env: SHOP_DB_PASSWORD }\n');
const env = { SHOP_DB_PASSWORD: PASSWORD };

interface Snapshot {
  hba: Buffer;
  ident: Buffer;
  owners: string;
}

async function snapshot(m: TestHost): Promise<Snapshot> {
  return {
    hba: (await m.host.readFile(HBA))!,
    ident: (await m.host.readFile(IDENT))!,
    owners: (await m.exec('stat', ['-c', '%U:%G %a', HBA, IDENT])).stdout,
  };
}

/** root's own login as postgres over the socket (what HostKit's admin connection is). */
async function rootLogin(m: TestHost): Promise<{ ok: boolean; said: string }> {
  const r = await m.host.exec('psql', ['-XtAq', '-h', '/run/postgresql', '-U', 'postgres', '-d', 'postgres', '-c', 'SELECT 1']);
  return { ok: r.exitCode === 0 && r.stdout.trim() === '1', said: r.stderr.trim() };
}

describeHost('reconciler/drivers/postgresql/access on a real host', () => {
  const machine = useHost();
  let stock: Snapshot;
  let firstRun: string;

  it('from the stock configuration, one reconcile sets up root access (planned without the files) and creates the database', async () => {
    const m = machine();
    stock = await snapshot(m);
    expect(stock.hba.toString()).toMatch(/^local\s+all\s+postgres\s+peer\s*$/m);
    expect(stock.ident.toString()).not.toContain('hostkit');
    expect(await rootLogin(m)).toMatchObject({ ok: false, said: expect.stringMatching(/Peer authentication failed for user "postgres"/) });

    const repoDir = await repo({ 'projects/shop.yaml': shop() });
    const dry = await reconcile(m, repoDir, { env, dryRun: true });
    if (dry.stage !== 'planned') throw new Error(`expected a plan, got ${dry.stage}`);
    const planned = dry.planned.plan.changes.find((c) => c.id === 'pgaccess/local')!;
    expect(planned).toMatchObject({ action: 'create', ops: [{ op: 'ident' }, { op: 'hba' }, { op: 'reload' }] });
    // The plan shows HostKit's own lines, never the files it did not write (their rules, their comments).
    const shown = renderText(dry.planned.plan) + JSON.stringify(toJsonPlan(dry.planned.plan));
    expect(shown).toContain('local all postgres peer map=hostkit');
    for (const line of stock.hba
      .toString()
      .split('\n')
      .filter((l) => /^(local|host)\s/.test(l)))
      expect(shown).not.toContain(line);
    expect(shown).not.toContain('PostgreSQL Client Authentication');
    expect(shown).not.toContain('scram-sha-256');
    expect(await snapshot(m)).toEqual(stock); // a dry run changes nothing

    const result = appliedOk(await reconcile(m, repoDir, { env }));
    firstRun = result.run!;
    const ids = result.steps.map((s) => s.id);
    expect(ids.indexOf('pgaccess/local')).toBeGreaterThanOrEqual(0);
    expect(ids.indexOf('pgaccess/local')).toBeLessThan(ids.indexOf('pgrole/shop'));
    expect(await rootLogin(m)).toEqual({ ok: true, said: '' });
    expect(await admin(m, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'")).toBe('shop');

    const hba = (await m.host.readFile(HBA))!.toString();
    const lines = hba.split('\n');
    const ours = lines.indexOf(HBA_LINE);
    expect(lines[ours - 1]).toMatch(/^# HostKit \(pgaccess\/local\)/);
    expect(lines[ours + 1]).toMatch(/^local\s+all\s+postgres\s+peer\s*$/);
    expect(lines.filter((l, i) => i !== ours && i !== ours - 1)).toEqual(stock.hba.toString().split('\n'));
    expect((await m.host.readFile(IDENT))!.toString()).toBe(
      `${stock.ident.toString()}# BEGIN HostKit (pgaccess/local): root and postgres log in as postgres\nhostkit root postgres\nhostkit postgres postgres\n# END HostKit\n`,
    );
    expect((await snapshot(m)).owners).toBe(stock.owners);
    // The postgres OS user still logs in as before (its own line in the map).
    expect(await admin(m, 'SELECT current_user')).toBe('postgres');
  });

  it('a second reconcile makes 0 changes and writes neither file', async () => {
    const m = machine();
    const before = await snapshot(m);
    const outcome = await reconcile(m, await repo({ 'projects/shop.yaml': shop() }), { env });
    expect(applied(outcome).status).toBe('no-changes');
    if (outcome.stage !== 'applied') return;
    expect(outcome.planned.plan.summary).toMatchObject({ create: 0, update: 0, delete: 0, replace: 0 });
    expect(outcome.planned.plan.changes.find((c) => c.id === 'pgaccess/local')?.action).toBe('noop');
    expect(await snapshot(m)).toEqual(before);
  });

  it('rollback of the first run puts both files back byte for byte and reloads: root is refused again, the database is kept', async () => {
    const m = machine();
    const target = await findRun(m.host, STATE, { id: firstRun });
    const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
    expect(done.result?.errors).toEqual([]);
    expect(await snapshot(m)).toEqual(stock);
    expect(await rootLogin(m)).toMatchObject({ ok: false, said: expect.stringMatching(/Peer authentication failed/) });
    expect(await admin(m, "SELECT count(*) FROM pg_database WHERE datname = 'shop'")).toBe('1');
  });
});

// The bare image with PostgreSQL just installed from the local repository (by hand here; the
// package kind does it in a run): the cluster Debian's package made, untouched, is what HostKit finds.
describeHost('reconciler/drivers/postgresql/access on a bare host after PostgreSQL is installed', () => {
  const machine = useHost({ variant: 'bare', aptRepo: true });

  it('a fresh cluster from the package: one reconcile sets up access and creates the database; a second makes 0 changes', async () => {
    const m = machine();
    const served = await serveAptRepo(m);
    expect(aptSourceManifest(served)).toMatchObject({ uris: [served.uri], suites: ['hostkit-test'], components: ['main'] });
    await m.host.mkdir('/etc/apt/keyrings', { uid: 0, gid: 0, mode: 0o755 });
    await m.host.writeFile('/etc/apt/keyrings/test.asc', served.armoredKey, { uid: 0, gid: 0, mode: 0o644 });
    const list = `deb [signed-by=/etc/apt/keyrings/test.asc] ${served.uri} ${served.suite} ${served.component}\n`;
    await m.host.writeFile('/etc/apt/sources.list.d/test.list', list, { uid: 0, gid: 0, mode: 0o644 });
    await m.exec('apt-get', ['update', '-q'], { timeoutMs: 120_000 });
    await m.exec('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'postgresql'], {
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 170_000,
    });
    expect(await rootLogin(m)).toMatchObject({ ok: false });
    const stock = await snapshot(m);

    const repoDir = await repo({ 'projects/shop.yaml': shop() });
    const result = appliedOk(await reconcile(m, repoDir, { env }));
    expect(result.steps.map((s) => s.id)).toEqual(expect.arrayContaining(['pgaccess/local', 'pgrole/shop', 'pgdatabase/shop']));
    expect(await rootLogin(m)).toEqual({ ok: true, said: '' });
    expect(await admin(m, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'shop'")).toBe('shop');
    expect((await m.host.readFile(HBA))!.toString()).toContain(HBA_LINE);
    expect((await snapshot(m)).owners).toBe(stock.owners);

    const again = await reconcile(m, repoDir, { env });
    expect(applied(again).status).toBe('no-changes');
  });
});
