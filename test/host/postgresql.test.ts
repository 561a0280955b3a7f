import { beforeAll, expect, it } from 'vitest';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { renderRestorePlan } from '../../reconciler/commands/safety.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { toJsonPlan } from '../../reconciler/diff/render/json.js';
import { renderText } from '../../reconciler/diff/render/text.js';
import { makeVerifier, verifierMatches } from '../../reconciler/drivers/postgresql/scram.js';
import type { ExecResult } from '../../reconciler/hosts/types.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, eventually, HOST_NAME, reconcile, repo, service } from './reconcile.js';
import { admin, CLUSTER, mapRootToPostgres } from './postgres-admin.js';

const LOG = '/var/log/postgresql/postgresql-15-main.log';
const ENV_FILE = '/etc/hostkit/env/shop.env';

// Characters a URL must encode, one SASLprep maps (the "ﬁ" ligature becomes "fi"), and a quote.
const PASSWORD_1 = `Sh0p pässw/rd:ﬁ@1%'"`;
const PASSWORD_2 = 'rotated-7Qx!ﬁ#2 new';

function shop(command = '/usr/bin/python3, -m, http.server, "9201", --bind, 127.0.0.1'): string {
  return service('shop', 9201, '  database:\n    password: { env: SHOP_DB_PASSWORD }\n    extensions: [pg_trgm, pgcrypto]\n    connectionLimit: 20\n').replace(
    '/usr/bin/python3, -m, http.server, "9201", --bind, 127.0.0.1',
    command,
  );
}

function url(role: string, password: string, database: string): string {
  return `postgresql://${role}:${encodeURIComponent(password)}@127.0.0.1:5432/${database}`;
}

/**
 * What the service sees: a transient unit running as the project's user, with
 * the env file HostKit wrote read by systemd itself, connecting with
 * $DATABASE_URL over TCP to 127.0.0.1.
 */
function asService(m: TestHost, project: string, sql: string): Promise<ExecResult> {
  return m.host.exec('systemd-run', [
    '--wait',
    '--pipe',
    '--quiet',
    '--collect',
    `--property=EnvironmentFile=/etc/hostkit/env/${project}.env`,
    `--property=User=${project}`,
    '/bin/sh',
    '-c',
    'exec psql "$DATABASE_URL" -XtA -c "$1"',
    'sh',
    sql,
  ]);
}

async function logSize(m: TestHost): Promise<number> {
  return (await m.host.stat(LOG))?.size ?? 0;
}

async function logSince(m: TestHost, offset: number): Promise<string> {
  return ((await m.host.readFile(LOG)) ?? Buffer.alloc(0)).subarray(offset).toString('utf8');
}

// Statements (simple or extended protocol) in a slice of the server log; a
// statement's further lines are the log's tab-indented continuation lines.
function statements(log: string): string[] {
  const entries: string[] = [];
  for (const line of log.split('\n')) {
    if (line.startsWith('\t') && entries.length > 0) entries[entries.length - 1] += `\n${line.slice(1)}`;
    else entries.push(line);
  }
  return entries.map((e) => /LOG: {2}(?:statement|execute [^:]*): ([\s\S]*)$/.exec(e)?.[1]).filter((s): s is string => s !== undefined);
}

const DDL = /^\s*(CREATE|ALTER|DROP|GRANT|REVOKE|COMMENT|BEGIN|COMMIT)\b/i;

/** Every PostgreSQL log on the host (the cluster's file, its data directory's log folder if any, the journal). */
async function allServerLogs(m: TestHost): Promise<string> {
  const files = (await m.host.exec('sh', ['-c', 'cat /var/log/postgresql/* /var/lib/postgresql/15/main/log/* 2>/dev/null; true'])).stdout;
  const journal = (await m.host.exec('journalctl', ['--no-pager', '-o', 'cat', '-u', CLUSTER])).stdout;
  return files + journal;
}

// A PostgreSQL string literal for any text, in the Unicode escape form (no encoding questions on the way to psql).
function unicodeLiteral(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x20 && cp < 0x7f && ch !== '\\' && ch !== "'") out += ch;
    else out += cp <= 0xffff ? `\\${cp.toString(16).padStart(4, '0')}` : `\\+${cp.toString(16).padStart(6, '0')}`;
  }
  return `U&'${out}'`;
}

describeHost('reconciler/drivers/postgresql on a real host', () => {
  const machine = useHost();

  // The documented admin set-up: HostKit (root) logs in as postgres over the
  // socket through a pg_ident map. Plus statement logging, to see what was sent.
  beforeAll(async () => {
    const m = machine();
    await mapRootToPostgres(m);
    await admin(m, "ALTER SYSTEM SET log_statement = 'all'");
    await m.exec('systemctl', ['reload', CLUSTER]);
    expect(await eventually(async () => (await admin(m, 'SHOW log_statement')) === 'all', 10_000)).toBe(true);
  });

  it('a project with a database: role, database and extensions exist, and the service logs in with its env file over TCP', async () => {
    const m = machine();
    const offset = await logSize(m);
    const outcome = await reconcile(m, await repo({ 'projects/shop.yaml': shop() }), { env: { SHOP_DB_PASSWORD: PASSWORD_1 } });
    const result = appliedOk(outcome);
    expect(result.steps.map((s) => s.id)).toEqual(expect.arrayContaining(['pgrole/shop', 'pgdatabase/shop', `envfile${ENV_FILE}`]));
    expect(result.steps.findIndex((s) => s.id === 'pgrole/shop')).toBeLessThan(result.steps.findIndex((s) => s.id === 'pgdatabase/shop'));

    expect(await admin(m, "SELECT rolcanlogin, rolconnlimit, rolsuper, left(rolpassword, 19) FROM pg_authid WHERE rolname = 'shop'")).toBe(
      't|20|f|SCRAM-SHA-256$4096:',
    );
    expect(await admin(m, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'shop'")).toBe('shop|UTF8');
    expect(await admin(m, "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension", 'shop')).toBe('pg_trgm,pgcrypto,plpgsql');

    const login = await asService(
      m,
      'shop',
      "SELECT current_user || '@' || current_database() || ' ' || host(inet_server_addr()) || ' ' || (similarity('shop', 'shops') > 0) || ' ' || length(digest('x', 'sha256'))",
    );
    expect(login.stderr).toBe('');
    expect(login.stdout.trim()).toBe('shop@shop 127.0.0.1 true 32');

    // The role was created with a verifier: the password itself never reached the server.
    const sent = statements(await logSince(m, offset));
    expect(sent.filter((s) => s.startsWith('CREATE ROLE'))).toEqual([
      expect.stringMatching(/^CREATE ROLE "shop" WITH LOGIN CONNECTION LIMIT 20 PASSWORD 'SCRAM-SHA-256\$4096:/),
    ]);
    expect(sent).toContain('CREATE DATABASE "shop" WITH OWNER "shop" TEMPLATE template0 ENCODING \'UTF8\'');
    expect(await allServerLogs(m)).not.toContain(PASSWORD_1);
  });

  it('applying again changes nothing and sends no DDL: one catalog query, one extension query', async () => {
    const m = machine();
    const offset = await logSize(m);
    const outcome = await reconcile(m, await repo({ 'projects/shop.yaml': shop() }), { env: { SHOP_DB_PASSWORD: PASSWORD_1 } });
    expect(applied(outcome).status).toBe('no-changes');
    if (outcome.stage !== 'applied') return;
    expect(outcome.planned.plan.summary).toMatchObject({ create: 0, update: 0, delete: 0, replace: 0 });
    const sent = statements(await logSince(m, offset));
    expect(sent.filter((s) => DDL.test(s))).toEqual([]);
    expect(sent.filter((s) => s.includes('pg_authid'))).toHaveLength(1);
    expect(sent.filter((s) => s.includes('pg_extension'))).toHaveLength(1);
  });

  it('drift made by hand (role attributes, a dropped extension) is planned and healed; the password is left alone', async () => {
    const m = machine();
    await admin(m, 'ALTER ROLE shop NOLOGIN CONNECTION LIMIT 3');
    await admin(m, 'DROP EXTENSION pg_trgm', 'shop');
    const repoDir = await repo({ 'projects/shop.yaml': shop() });
    const env = { SHOP_DB_PASSWORD: PASSWORD_1 };
    const plan = await reconcile(m, repoDir, { env, dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    const byId = new Map(plan.planned.plan.changes.map((c) => [c.id, c]));
    expect(byId.get('pgrole/shop')).toMatchObject({
      action: 'update',
      fields: [
        { field: '/login', before: false, after: true },
        { field: '/connectionLimit', before: 3, after: 20 },
      ],
    });
    expect(byId.get('pgdatabase/shop')).toMatchObject({
      action: 'update',
      fields: [{ field: '/extensions', before: ['pgcrypto'], after: ['pg_trgm', 'pgcrypto'] }],
    });
    const offset = await logSize(m);
    expect(appliedOk(await reconcile(m, repoDir, { env })).steps.map((s) => s.id)).toEqual(['pgrole/shop', 'pgdatabase/shop']);
    // One transaction per step.
    expect(statements(await logSince(m, offset)).filter((s) => DDL.test(s))).toEqual([
      'BEGIN',
      'ALTER ROLE "shop" WITH LOGIN CONNECTION LIMIT 20',
      'COMMIT',
      'BEGIN',
      'CREATE EXTENSION IF NOT EXISTS "pg_trgm"',
      'COMMIT',
    ]);
    expect(applied(await reconcile(m, repoDir, { env })).status).toBe('no-changes');
  });

  it('an extension the server does not have (vector without pgvector) is an error in the plan: nothing is applied', async () => {
    const m = machine();
    const offset = await logSize(m);
    const outcome = await reconcile(m, await repo({ 'projects/shop.yaml': shop().replace('[pg_trgm, pgcrypto]', '[pg_trgm, pgcrypto, vector]') }), {
      env: { SHOP_DB_PASSWORD: PASSWORD_1 },
    });
    expect(outcome.stage).toBe('planned');
    if (outcome.stage !== 'planned') return;
    expect(outcome.planned.plan.diagnostics).toContainEqual(
      expect.objectContaining({
        severity: 'error',
        summary: 'extension not available',
        detail: expect.stringContaining('extension vector is not available on this PostgreSQL 15 server'),
      }),
    );
    expect(statements(await logSince(m, offset)).filter((s) => DDL.test(s))).toEqual([]);
  });

  it('a rotated password secret: exactly one ALTER ROLE, the new password works, the old one does not, and neither is in any server log', async () => {
    const m = machine();
    const offset = await logSize(m);
    const outcome = await reconcile(m, await repo({ 'projects/shop.yaml': shop() }), { env: { SHOP_DB_PASSWORD: PASSWORD_2 } });
    const result = appliedOk(outcome);
    expect(result.steps.map((s) => s.id)).toEqual(['pgrole/shop', `envfile${ENV_FILE}`, 'unit/hk-shop.service']);
    if (outcome.stage !== 'applied') return;
    const role = outcome.planned.plan.changes.find((c) => c.id === 'pgrole/shop')!;
    expect(role.fields).toEqual([
      { field: '/password', before: '(redacted) a different password', after: expect.stringMatching(/^\(redacted\) hmac:[0-9a-f]{12}$/), redacted: true },
    ]);
    const shown = renderText(outcome.planned.plan) + JSON.stringify(toJsonPlan(outcome.planned.plan));
    for (const secret of [PASSWORD_1, PASSWORD_2, encodeURIComponent(PASSWORD_2), 'SCRAM-SHA-256$']) expect(shown).not.toContain(secret);

    const ddl = statements(await logSince(m, offset)).filter((s) => DDL.test(s));
    expect(ddl).toEqual([
      'BEGIN',
      expect.stringMatching(/^ALTER ROLE "shop" WITH PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'$/),
      'COMMIT',
    ]);

    expect((await asService(m, 'shop', 'SELECT 1')).stdout.trim()).toBe('1');
    const old = await m.host.exec('psql', [url('shop', PASSWORD_1, 'shop'), '-XtAc', 'SELECT 1']);
    expect(old.exitCode).not.toBe(0);
    expect(old.stderr).toContain('password authentication failed for user "shop"');
    const logs = await allServerLogs(m);
    for (const secret of [PASSWORD_1, PASSWORD_2, encodeURIComponent(PASSWORD_1), encodeURIComponent(PASSWORD_2)]) expect(logs).not.toContain(secret);
  });

  it('a run that fails after changing the password rolls it back exactly: the previous verifier is back', async () => {
    const m = machine();
    const verifier = await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'");
    const envBefore = await m.host.readFile(ENV_FILE);
    const broken = shop('/bin/sh, -c, "exit 3"');
    const result = applied(await reconcile(m, await repo({ 'projects/shop.yaml': broken }), { env: { SHOP_DB_PASSWORD: 'a-third-password' } }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('unit/hk-shop.service');
    expect(result.rollbackErrors).toEqual([]);
    expect(await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'")).toBe(verifier);
    expect(await m.host.readFile(ENV_FILE)).toEqual(envBefore);
    expect((await asService(m, 'shop', 'SELECT 1')).stdout.trim()).toBe('1');
  });

  it('hostkit rollback --last of a password rotation puts the role (password, connection limit) back with the env file: the service logs in again, and so does the rollback of it', async () => {
    const m = machine();
    const verifier = await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'");
    const envBefore = await m.host.readFile(ENV_FILE);
    const limited = shop().replace('connectionLimit: 20', 'connectionLimit: 7');
    const rotated = appliedOk(await reconcile(m, await repo({ 'projects/shop.yaml': limited }), { env: { SHOP_DB_PASSWORD: 'a-fourth-password' } }));
    expect(rotated.status).toBe('applied');
    const rotatedVerifier = await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'");
    expect(rotatedVerifier).not.toBe(verifier);
    expect(await admin(m, "SELECT rolconnlimit FROM pg_authid WHERE rolname = 'shop'")).toBe('7');

    const target = await findRun(m.host, '/var/lib/hostkit', { last: true });
    expect(target.record.id).toBe(rotated.run);
    const dry = await rollbackRun(target, { dryRun: true, log: silentLogger() });
    expect(renderRestorePlan(dry.plan)).toContain('restore PostgreSQL role shop: login, connection limit and stored password');
    expect(renderRestorePlan(dry.plan)).not.toContain('SCRAM');
    const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
    expect(done.result?.errors).toEqual([]);
    expect(await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'")).toBe(verifier);
    expect(await admin(m, "SELECT rolconnlimit FROM pg_authid WHERE rolname = 'shop'")).toBe('20');
    expect(await m.host.readFile(ENV_FILE)).toEqual(envBefore);
    expect((await asService(m, 'shop', 'SELECT 1')).stdout.trim()).toBe('1');

    // The rollback is a run of its own: undoing it brings the rotated password back.
    const again = await rollbackRun(await findRun(m.host, '/var/lib/hostkit', { id: done.run! }), { dryRun: false, log: silentLogger() });
    expect(again.result?.errors).toEqual([]);
    expect(await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop'")).toBe(rotatedVerifier);
    expect(await admin(m, "SELECT rolconnlimit FROM pg_authid WHERE rolname = 'shop'")).toBe('7');
    expect((await asService(m, 'shop', 'SELECT 1')).stdout.trim()).toBe('1');
  });

  it('a run that fails after creating a role and a database drops both again', async () => {
    const m = machine();
    const cart = service('cart', 9202, '  database:\n    password: { env: CART_DB_PASSWORD }\n    extensions: [pgcrypto]\n').replace(
      '/usr/bin/python3, -m, http.server, "9202", --bind, 127.0.0.1',
      '/bin/sh, -c, "exit 3"',
    );
    const offset = await logSize(m);
    const env = { SHOP_DB_PASSWORD: PASSWORD_2, CART_DB_PASSWORD: 'cart-password-1' };
    const result = applied(await reconcile(m, await repo({ 'projects/shop.yaml': shop(), 'projects/cart.yaml': cart }), { env }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('unit/hk-cart.service');
    expect(result.rollbackErrors).toEqual([]);
    expect(await admin(m, "SELECT count(*) FROM pg_roles WHERE rolname = 'cart'")).toBe('0');
    expect(await admin(m, "SELECT count(*) FROM pg_database WHERE datname = 'cart'")).toBe('0');
    const ddl = statements(await logSince(m, offset)).filter((s) => /^(CREATE|DROP) (ROLE|DATABASE)/.test(s));
    expect(ddl).toEqual([
      expect.stringMatching(/^CREATE ROLE "cart" WITH LOGIN CONNECTION LIMIT -1 PASSWORD 'SCRAM-SHA-256\$/),
      'CREATE DATABASE "cart" WITH OWNER "cart" TEMPLATE template0 ENCODING \'UTF8\'',
      'DROP DATABASE IF EXISTS "cart" WITH (FORCE)',
      'DROP ROLE "cart"',
    ]);
  });

  it('a project removed from the repository: its database and role are reported as orphans and kept; with drop: true they are dropped', async () => {
    const m = machine();
    const repoDir = await repo({});
    const plan = await reconcile(m, repoDir, { dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    const byId = new Map(plan.planned.plan.changes.map((c) => [c.id, c]));
    for (const id of ['pgrole/shop', 'pgdatabase/shop']) {
      expect(byId.get(id)).toMatchObject({ action: 'noop', orphan: true, reason: expect.stringContaining('drop: true') });
    }
    const text = renderText(plan.planned.plan);
    expect(text).toContain('! pgdatabase/shop');
    expect(text).toContain('! pgrole/shop');

    const offset = await logSize(m);
    appliedOk(await reconcile(m, repoDir));
    expect(statements(await logSince(m, offset)).filter((s) => DDL.test(s))).toEqual([]);
    expect(await admin(m, "SELECT count(*) FROM pg_database WHERE datname = 'shop'")).toBe('1');
    expect(await admin(m, "SELECT count(*) FROM pg_roles WHERE rolname = 'shop'")).toBe('1');
    // Still reported on the next run: the inventory keeps reported orphans.
    const again = await reconcile(m, repoDir, { dryRun: true });
    if (again.stage !== 'planned') throw new Error(`expected a plan, got ${again.stage}`);
    expect(again.planned.plan.changes.find((c) => c.id === 'pgdatabase/shop')).toMatchObject({ orphan: true });

    // The opt-in: tombstone manifests with the same names and drop: true, from a host-level path (a project may not drop).
    const tombstones = `apiVersion: hostkit.dev/v1
kind: PostgresRole
metadata: { name: shop }
spec:
  placement: { hosts: [${HOST_NAME}] }
  drop: true
---
apiVersion: hostkit.dev/v1
kind: PostgresDatabase
metadata: { name: shop }
spec:
  placement: { hosts: [${HOST_NAME}] }
  owner: shop
  drop: true
`;
    const dropRepo = await repo({ 'hosts/shop-drop.yaml': tombstones });
    const dropPlan = await reconcile(m, dropRepo, { dryRun: true });
    if (dropPlan.stage !== 'planned') throw new Error(`expected a plan, got ${dropPlan.stage}`);
    expect(dropPlan.planned.plan.changes.filter((c) => c.action === 'delete').map((c) => [c.id, Boolean(c.irreversible)])).toEqual([
      ['pgdatabase/shop', true],
      ['pgrole/shop', false],
    ]);
    expect(appliedOk(await reconcile(m, dropRepo)).status).toBe('applied');
    expect(await admin(m, "SELECT count(*) FROM pg_database WHERE datname = 'shop'")).toBe('0');
    expect(await admin(m, "SELECT count(*) FROM pg_roles WHERE rolname = 'shop'")).toBe('0');
  });

  it('verifiers computed here are accepted by PostgreSQL (libpq logs in), and verifiers PostgreSQL computed match here', async () => {
    const m = machine();
    await admin(m, 'CREATE ROLE hk_vector LOGIN');
    const login = (password: string) =>
      m.host.exec('psql', ['-X', '-h', '127.0.0.1', '-U', 'hk_vector', '-d', 'postgres', '-tAc', 'SELECT 1'], { env: { PGPASSWORD: password } });
    // ASCII; NFKC folding (ligature, roman numeral); NBSP mapped to space; soft hyphen removed;
    // a code point unassigned in Unicode 3.2 (SASLprep refuses: the raw bytes count); mixed-direction text (refused too).
    const passwords = ['pencil', 'ﬁsh-Ⅸ', 'a\u00a0b', 'so\u00adft', 'x\u0221y', '\u05d0a', "quote'and\\back$lash"];
    for (const password of passwords) {
      await admin(m, `ALTER ROLE hk_vector PASSWORD '${makeVerifier(password)}'`);
      const ok = await login(password);
      expect({ password, exitCode: ok.exitCode, stdout: ok.stdout.trim(), stderr: ok.stderr }).toEqual({ password, exitCode: 0, stdout: '1', stderr: '' });
      expect((await login(`${password}x`)).exitCode).not.toBe(0);

      await admin(m, `SET password_encryption = 'scram-sha-256'; ALTER ROLE hk_vector PASSWORD ${unicodeLiteral(password)}`);
      const stored = await admin(m, "SELECT rolpassword FROM pg_authid WHERE rolname = 'hk_vector'");
      expect({ password, matches: verifierMatches(password, stored) }).toEqual({ password, matches: true });
      expect(verifierMatches(`${password}x`, stored)).toBe(false);
    }
    await admin(m, 'DROP ROLE hk_vector');
  });
});
