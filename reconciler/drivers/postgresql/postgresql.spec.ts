import { toInventoryEntry, type Inventory } from '../../apply/inventory.js';
import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import type { Diagnostic } from '../../core/diagnostics.js';
import type { HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import { Redactor } from '../../core/secrets.js';
import { summarize, type Change, type FieldChange } from '../../diff/model.js';
import { toJsonPlan } from '../../diff/render/json.js';
import { renderMarkdown } from '../../diff/render/markdown.js';
import { renderText } from '../../diff/render/text.js';
import { FakeHost } from '../../hosts/fake.js';
import { FakePostgres } from '../../../test/support/fake-postgres.js';
import { JournaledRun } from '../../../test/support/undo.js';
import type { DriverContext } from '../types.js';
import { connectAdmin } from './connection.js';
import { planDatabase, type DatabaseOp, type DatabaseSpec, type DesiredDatabase, type ObservedDatabase } from './database.js';
import { makePostgresDrivers } from './index.js';
import { planRole, type DesiredRole, type ObservedRole, type RoleOp, type RoleSpec } from './role.js';
import { makeVerifier } from './scram.js';
import { CATALOG_QUERY, EXTENSIONS_QUERY } from './sql.js';

const origin = { file: 'projects/shop.yaml', line: 12, pointer: '/spec/database' };

function roleResource(spec: Partial<RoleSpec> = {}): Resource<RoleSpec> {
  return {
    id: 'pgrole/shop',
    kind: 'pgrole',
    name: 'shop',
    spec: { role: 'shop', connectionLimit: 20, password: { env: 'SHOP_DB_PASSWORD' }, ...spec },
    dependsOn: [],
    origin,
    project: 'shop',
  };
}

function databaseResource(spec: Partial<DatabaseSpec> = {}): Resource<DatabaseSpec> {
  return {
    id: 'pgdatabase/shop',
    kind: 'pgdatabase',
    name: 'shop',
    spec: { database: 'shop', owner: 'shop', extensions: ['pgcrypto', 'pg_trgm'], ...spec },
    dependsOn: ['pgrole/shop'],
    origin,
    project: 'shop',
  };
}

const PASSWORD = 'hunter2-correct-horse';
const ROTATED = 'rotated-battery-staple';

/**
 * One run as the engine makes it: both observes started together, desire,
 * plan, then apply in order (roles first; deletes databases first) and verify.
 */
async function run(
  server: FakePostgres,
  options: {
    role?: Resource<RoleSpec>;
    database?: Resource<DatabaseSpec>;
    env?: NodeJS.ProcessEnv;
    mode?: 'plan' | 'apply';
    ctx?: DriverContext;
    /** What HostKit created before; by default the role and database (as the earlier runs of a test did). */
    inventory?: Inventory;
  } = {},
) {
  const { role: roleDriver, database: dbDriver } = makePostgresDrivers(server.connect);
  const role = options.role ?? roleResource();
  const database = options.database ?? databaseResource();
  const redactor = new Redactor();
  const inventory = options.inventory ?? {
    version: 1,
    host: 'test-1',
    resources: { [role.id]: toInventoryEntry(role), [database.id]: toInventoryEntry(database) },
  };
  const ctx =
    options.ctx ?? driverContext(new FakeHost(), { env: options.env ?? { SHOP_DB_PASSWORD: PASSWORD }, mode: options.mode ?? 'apply', redactor, inventory });
  const dbRun = dbDriver.createRun!(ctx);
  const observing = [roleDriver.observe([role], ctx), dbDriver.observe([database], ctx, dbRun)] as const;
  const roleWanted = (await roleDriver.desire([role], ctx)).get(role.id)!;
  const dbWanted = (await dbDriver.desire([database], ctx, dbRun)).get(database.id)!;
  const [roles, databases] = await Promise.all(observing);
  const roleChange = roleDriver.plan({ resource: role, desired: roleWanted.desired, observed: roles.get(role.id), orphan: false });
  roleChange.diagnostics.push(...roleWanted.diagnostics);
  const dbChange = dbDriver.plan({ resource: database, desired: dbWanted.desired, observed: databases.get(database.id), orphan: false });
  dbChange.diagnostics.push(...dbWanted.diagnostics);
  const order = roleChange.action === 'delete' ? ([dbChange, roleChange] as const) : ([roleChange, dbChange] as const);
  // Applied as the executor applies, each change backed up in a run journal first; rolled back from that journal.
  const journaled = await JournaledRun.open(ctx, order, [roleDriver, dbDriver]);
  const apply = async () => {
    const undo: unknown[] = [];
    for (const change of order) {
      if (change.action === 'noop') continue;
      undo.push(change.kind === 'pgrole' ? await journaled.apply(roleDriver, roleChange) : await journaled.apply(dbDriver, dbChange, dbRun));
    }
    return undo;
  };
  const rollback = () => journaled.rollback();
  return { ctx, dbRun, roleDriver, dbDriver, roleChange, dbChange, apply, rollback, journaled, redactor };
}

function everythingShown(changes: Change[]): string {
  const plan = { host: 'h', repository: 'r', changes, diagnostics: changes.flatMap((c) => c.diagnostics), summary: summarize(changes) };
  return JSON.stringify(toJsonPlan(plan)) + renderText(plan, { verbose: true }) + renderMarkdown(plan);
}

const desiredRole = (over: Partial<DesiredRole> = {}): DesiredRole => ({
  role: 'shop',
  drop: false,
  login: true,
  connectionLimit: 20,
  password: { value: PASSWORD, fingerprint: 'hmac:abcdef012345' },
  ...over,
});
const liveRole = (over: Partial<Extract<ObservedRole, { exists: true }>> = {}): ObservedRole => ({
  exists: true,
  login: true,
  connectionLimit: 20,
  password: makeVerifier(PASSWORD),
  ...over,
});

describe('reconciler/drivers/postgresql', () => {
  describe('planRole: desired vs observed -> change', () => {
    it.each<[string, DesiredRole | undefined, ObservedRole | undefined, RoleOp[]]>([
      ['absent: created, with its password set', desiredRole(), undefined, [{ op: 'create' }, { op: 'set-password' }]],
      ['absent, password not managed: created only', desiredRole({ password: undefined }), undefined, [{ op: 'create' }]],
      [
        'another connection limit: its attributes altered',
        desiredRole({ connectionLimit: 5 }),
        liveRole(),
        [{ op: 'alter-attributes', attributes: ['connectionLimit'] }],
      ],
      [
        'login and limit differ: both in one alter',
        desiredRole({ login: false, connectionLimit: 5 }),
        liveRole(),
        [{ op: 'alter-attributes', attributes: ['login', 'connectionLimit'] }],
      ],
      ['a new password: set-password only', desiredRole({ password: { value: ROTATED, fingerprint: 'hmac:0' } }), liveRole(), [{ op: 'set-password' }]],
      ['as desired: nothing', desiredRole(), liveRole(), []],
      ['drop: true: dropped', desiredRole({ drop: true }), liveRole(), [{ op: 'drop' }]],
      ['orphan: kept, nothing', undefined, liveRole(), []],
    ])('operations: %s', (_title, desired, observed, ops) => {
      expect(planRole({ resource: roleResource(), desired, observed, orphan: desired === undefined }).ops).toEqual(ops);
    });

    it.each<[string, DesiredRole | undefined, ObservedRole | undefined, boolean, Partial<Change>, FieldChange[]]>([
      [
        'absent: created with its password (redacted)',
        desiredRole(),
        undefined,
        false,
        { action: 'create' },
        [
          { field: '/login', after: true },
          { field: '/connectionLimit', after: 20 },
          { field: '/password', after: '(redacted) hmac:abcdef012345', redacted: true },
        ],
      ],
      [
        'absent, password not managed',
        desiredRole({ password: undefined }),
        undefined,
        false,
        { action: 'create' },
        [
          { field: '/login', after: true },
          { field: '/connectionLimit', after: 20 },
        ],
      ],
      ['same settings, the stored verifier is of this password', desiredRole(), liveRole(), false, { action: 'noop' }, []],
      [
        'another password stored',
        desiredRole(),
        liveRole({ password: makeVerifier('old') }),
        false,
        { action: 'update' },
        [{ field: '/password', before: '(redacted) a different password', after: '(redacted) hmac:abcdef012345', redacted: true }],
      ],
      [
        'an md5 hash stored (scram-sha-256 logins would fail)',
        desiredRole(),
        liveRole({ password: 'md5' + '1'.repeat(32) }),
        false,
        { action: 'update' },
        [{ field: '/password', before: '(redacted) md5 hash, not SCRAM-SHA-256', after: '(redacted) hmac:abcdef012345', redacted: true }],
      ],
      [
        'no password stored',
        desiredRole(),
        liveRole({ password: null }),
        false,
        { action: 'update' },
        [{ field: '/password', before: 'not set', after: '(redacted) hmac:abcdef012345', redacted: true }],
      ],
      [
        'password not managed: whatever is stored is left alone',
        desiredRole({ password: undefined }),
        liveRole({ password: null }),
        false,
        { action: 'noop' },
        [],
      ],
      [
        'NOLOGIN and another limit set by hand',
        desiredRole(),
        liveRole({ login: false, connectionLimit: 3 }),
        false,
        { action: 'update' },
        [
          { field: '/login', before: false, after: true },
          { field: '/connectionLimit', before: 3, after: 20 },
        ],
      ],
      ['orphan that exists: reported, kept', undefined, liveRole(), true, { action: 'noop', orphan: true, reason: expect.stringContaining('drop: true') }, []],
      ['orphan already gone', undefined, undefined, true, { action: 'noop', reason: 'already removed' }, []],
      ['drop: true and it exists', desiredRole({ drop: true }), liveRole(), false, { action: 'delete', reason: 'drop: true in its manifest' }, []],
      ['drop: true and it is gone', desiredRole({ drop: true }), undefined, false, { action: 'noop', reason: expect.stringContaining('dropped') }, []],
    ])('%s', (_name, desired, observed, orphan, expected, fields) => {
      const change = planRole({ resource: roleResource(), desired, observed, orphan });
      expect(change).toMatchObject(expected);
      expect(change.fields).toEqual(fields);
      expect(change.diagnostics).toEqual([]);
      if (!expected.orphan) expect(change.orphan).toBeUndefined();
    });

    it('a dry run without PostgreSQL: planned as if absent, with a warning; orphans stay reported', () => {
      const unreachable: ObservedRole = { exists: false, unreachable: 'connect ENOENT /run/postgresql/.s.PGSQL.5432' };
      const create = planRole({ resource: roleResource(), desired: desiredRole(), observed: unreachable, orphan: false });
      expect(create).toMatchObject({ action: 'create', reason: expect.stringContaining('not reachable') });
      expect(create.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', summary: 'PostgreSQL not reachable' })]);
      const orphan = planRole({ resource: roleResource(), desired: undefined, observed: unreachable, orphan: true });
      expect(orphan).toMatchObject({ action: 'noop', orphan: true });
    });
  });

  describe('planDatabase: desired vs observed -> change', () => {
    const desired = (over: Partial<DesiredDatabase> = {}): DesiredDatabase => ({
      database: 'shop',
      owner: 'shop',
      extensions: ['pg_trgm', 'pgcrypto'],
      encoding: 'UTF8',
      drop: false,
      ...over,
    });
    const live = (over: Partial<Extract<ObservedDatabase, { exists: true }>> = {}): ObservedDatabase => ({
      exists: true,
      owner: 'shop',
      encoding: 'UTF8',
      collate: 'C.UTF-8',
      ctype: 'C.UTF-8',
      extensions: ['pg_trgm', 'pgcrypto', 'plpgsql'],
      version: 150020,
      available: ['pg_trgm', 'pgcrypto'],
      ...over,
    });
    const absent: ObservedDatabase = { exists: false, version: 150020, available: ['pg_trgm', 'pgcrypto'] };

    it.each<[string, DesiredDatabase | undefined, ObservedDatabase | undefined, DatabaseOp[]]>([
      ['absent: created, then its extensions', desired(), absent, [{ op: 'create' }, { op: 'create-extensions', extensions: ['pg_trgm', 'pgcrypto'] }]],
      ['absent, no extensions: created only', desired({ extensions: [] }), absent, [{ op: 'create' }]],
      ['another owner: set-owner', desired({ owner: 'admin' }), live(), [{ op: 'set-owner' }]],
      ['an extension missing: only that one created', desired(), live({ extensions: ['pgcrypto'] }), [{ op: 'create-extensions', extensions: ['pg_trgm'] }]],
      ['as desired: nothing', desired(), live(), []],
      ['drop: true: dropped', desired({ drop: true }), live(), [{ op: 'drop' }]],
      ['orphan: kept, nothing', undefined, live(), []],
    ])('operations: %s', (_title, want, observed, ops) => {
      expect(planDatabase({ resource: databaseResource(), desired: want, observed, orphan: want === undefined }).ops).toEqual(ops);
    });

    it.each<[string, DesiredDatabase | undefined, ObservedDatabase | undefined, boolean, Partial<Change>, FieldChange[], string[]]>([
      [
        'absent: created',
        desired(),
        absent,
        false,
        { action: 'create' },
        [
          { field: '/owner', after: 'shop' },
          { field: '/encoding', after: 'UTF8' },
          { field: '/extensions', after: ['pg_trgm', 'pgcrypto'] },
        ],
        [],
      ],
      [
        'absent, with a declared locale',
        desired({ extensions: [], locale: 'C.UTF-8' }),
        absent,
        false,
        { action: 'create' },
        [
          { field: '/owner', after: 'shop' },
          { field: '/encoding', after: 'UTF8' },
          { field: '/locale', after: 'C.UTF-8' },
        ],
        [],
      ],
      ['as declared (undeclared plpgsql left alone)', desired(), live(), false, { action: 'noop' }, [], []],
      ['encoding and locale spelled differently are the same', desired({ encoding: 'utf-8', locale: 'C.utf8' }), live(), false, { action: 'noop' }, [], []],
      ['another owner', desired(), live({ owner: 'postgres' }), false, { action: 'update' }, [{ field: '/owner', before: 'postgres', after: 'shop' }], []],
      [
        'an extension dropped by hand',
        desired(),
        live({ extensions: ['pgcrypto', 'plpgsql'] }),
        false,
        { action: 'update' },
        [{ field: '/extensions', before: ['pgcrypto'], after: ['pg_trgm', 'pgcrypto'] }],
        [],
      ],
      [
        'a declared extension the server cannot install',
        desired({ extensions: ['vector'] }),
        live({ available: [] }),
        false,
        { action: 'update' },
        [{ field: '/extensions', before: [], after: ['vector'] }],
        [
          'error extension not available: pgdatabase/shop: extension vector is not available on this PostgreSQL 15 server; install the package that provides it (postgresql-15-pgvector on Debian)',
        ],
      ],
      [
        'created with another encoding: an error, never a recreate',
        desired(),
        live({ encoding: 'SQL_ASCII' }),
        false,
        { action: 'noop' },
        [],
        [expect.stringMatching(/^error database encoding differs: pgdatabase\/shop: the database was created with encoding SQL_ASCII/) as unknown as string],
      ],
      [
        'a declared locale that differs: an error',
        desired({ locale: 'en_US.UTF-8' }),
        live(),
        false,
        { action: 'noop' },
        [],
        [
          expect.stringMatching(
            /^error database locale differs: .*LC_COLLATE C.UTF-8 and LC_CTYPE C.UTF-8, the manifest asks for en_US.UTF-8/,
          ) as unknown as string,
        ],
      ],
      [
        'no declared locale: whatever it was created with is fine',
        desired(),
        live({ collate: 'en_US.UTF-8', ctype: 'en_US.UTF-8' }),
        false,
        { action: 'noop' },
        [],
        [],
      ],
      [
        'orphan that exists: reported, kept with its data',
        undefined,
        live(),
        true,
        { action: 'noop', orphan: true, reason: expect.stringContaining('kept with its data') },
        [],
        [],
      ],
      ['orphan already gone', undefined, absent, true, { action: 'noop', reason: 'already removed' }, [], []],
      ['drop: true and it exists', desired({ drop: true }), live(), false, { action: 'delete', reason: expect.stringContaining('all its data') }, [], []],
      ['drop: true and it is gone', desired({ drop: true }), absent, false, { action: 'noop' }, [], []],
    ])('%s', (_name, want, observed, orphan, expected, fields, diagnostics) => {
      const change = planDatabase({ resource: databaseResource(), desired: want, observed, orphan });
      expect(change).toMatchObject(expected);
      expect(change.fields).toEqual(fields);
      expect(change.diagnostics.map((d) => `${d.severity} ${d.summary}: ${d.detail}`)).toEqual(diagnostics);
    });
  });

  describe('many new databases in one run', () => {
    const many = Array.from({ length: 6 }, (_, i) => databaseResource({ database: `app_${i}`, owner: 'shop', extensions: [] })).map((r, i) => ({
      ...r,
      id: `pgdatabase/app_${i}`,
      name: `app_${i}`,
    }));

    async function planMany(server: FakePostgres) {
      const { database: dbDriver } = makePostgresDrivers(server.connect);
      const ctx = driverContext(new FakeHost(), { env: {}, mode: 'apply' });
      const dbRun = dbDriver.createRun!(ctx);
      const wanted = await dbDriver.desire(many, ctx, dbRun);
      const observed = await dbDriver.observe(many, ctx, dbRun);
      const changes = many.map((r) => dbDriver.plan({ resource: r, desired: wanted.get(r.id)!.desired, observed: observed.get(r.id), orphan: false }));
      return { dbDriver, ctx, dbRun, changes };
    }

    it('the first create starts them all; every step then only collects its result, and verify reads the catalog once', async () => {
      const server = new FakePostgres();
      server.roles.set('shop', { login: true, connectionLimit: -1, password: null });
      const { dbDriver, ctx, dbRun, changes } = await planMany(server);
      server.sent.length = 0;
      const first = await dbDriver.apply(changes[0]!, ctx, dbRun);
      expect(first.batch).toEqual(['app_1', 'app_2', 'app_3', 'app_4', 'app_5']);
      for (const c of changes.slice(1)) expect(await dbDriver.apply(c, ctx, dbRun)).toEqual({ created: { force: true } });
      expect([...server.databases.keys()]).toEqual(expect.arrayContaining(many.map((r) => r.spec.database)));
      expect(server.statements().filter((sql) => sql.startsWith('CREATE DATABASE'))).toHaveLength(6);
      server.sent.length = 0;
      for (const c of changes) expect(await dbDriver.verify(c, ctx, dbRun)).toEqual([]);
      expect(server.sent).toHaveLength(1);
    });

    it('rolling back the first steps drops the databases created ahead whose own steps never ran', async () => {
      const server = new FakePostgres();
      server.roles.set('shop', { login: true, connectionLimit: -1, password: null });
      const { dbDriver, ctx, dbRun, changes } = await planMany(server);
      const journaled = await JournaledRun.open(ctx, changes, [dbDriver]);
      await journaled.apply(dbDriver, changes[0]!, dbRun);
      await journaled.apply(dbDriver, changes[1]!, dbRun);
      // The run fails here: nothing used its databases yet, so its rollback drops all six.
      await journaled.rollback();
      expect([...server.databases.keys()]).toEqual(['postgres']);
    });

    it("a database the batch could not create gets its own statement and PostgreSQL's error, and the others are taken back", async () => {
      const server = new FakePostgres();
      server.roles.set('shop', { login: true, connectionLimit: -1, password: null });
      const { dbDriver, ctx, dbRun, changes } = await planMany(server);
      server.failOn = { pattern: /CREATE DATABASE "app_0"/, message: 'could not write to file', code: '53100' };
      await expect(dbDriver.apply(changes[0]!, ctx, dbRun)).rejects.toThrow(/could not write to file/);
      expect([...server.databases.keys()]).toEqual(['postgres']);
    });
  });

  describe('driver runs against a recording server', () => {
    it('creates the role, then the database with its extensions in one transaction; verify passes; a second run sends no DDL', async () => {
      const server = new FakePostgres();
      const first = await run(server);
      expect([first.roleChange.action, first.dbChange.action]).toEqual(['create', 'create']);
      await first.apply();
      expect(server.statements()).toEqual([
        expect.stringMatching(/^CREATE ROLE "shop" WITH LOGIN CONNECTION LIMIT 20 PASSWORD 'SCRAM-SHA-256\$4096:/),
        `CREATE DATABASE "shop" WITH OWNER "shop" TEMPLATE template0 ENCODING 'UTF8'`,
        'BEGIN',
        'CREATE EXTENSION IF NOT EXISTS "pg_trgm"',
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto"',
        'COMMIT',
      ]);
      expect(server.sent.find((s) => s.sql.startsWith('CREATE EXTENSION'))!.database).toBe('shop');
      expect(await first.roleDriver.verify(first.roleChange, first.ctx)).toEqual([]);
      expect(await first.dbDriver.verify(first.dbChange, first.ctx, first.dbRun)).toEqual([]);

      server.sent.length = 0;
      server.sessions.length = 0;
      const second = await run(server);
      expect([second.roleChange.action, second.dbChange.action]).toEqual(['noop', 'noop']);
      await second.apply();
      // One catalog query for both drivers, one extension query in the one database that declares extensions.
      expect(server.sent).toEqual([
        { database: 'postgres', sql: CATALOG_QUERY.text },
        { database: 'shop', sql: EXTENSIONS_QUERY.text },
      ]);
      expect(server.sessions).toEqual(['postgres', 'shop']);
    });

    it('a rotated secret: exactly one ALTER ROLE carrying a verifier; rollback restores the previous verifier exactly', async () => {
      const server = new FakePostgres();
      await (await run(server)).apply();
      const before = { ...server.roles.get('shop')! };
      server.sent.length = 0;
      const rotated = await run(server, { env: { SHOP_DB_PASSWORD: ROTATED } });
      expect(rotated.roleChange.fields.map((f) => f.field)).toEqual(['/password']);
      const [undo] = await rotated.apply();
      expect(server.statements()).toEqual(['BEGIN', expect.stringMatching(/^ALTER ROLE "shop" WITH PASSWORD 'SCRAM-SHA-256\$4096:[^']+'$/), 'COMMIT']);
      expect(server.statements().join('\n')).not.toContain(ROTATED);
      expect(server.roles.get('shop')!.password).not.toBe(before.password);
      expect((await run(server, { env: { SHOP_DB_PASSWORD: ROTATED } })).roleChange.action).toBe('noop');

      expect(undo).toBeDefined();
      await rotated.rollback();
      expect(server.roles.get('shop')).toEqual(before);
      expect((await run(server)).roleChange.action).toBe('noop');
    });

    it('a statement PostgreSQL rejects: the step is rolled back, the error carries its message, and no secret', async () => {
      const server = new FakePostgres();
      await (await run(server)).apply();
      const rotated = await run(server, { env: { SHOP_DB_PASSWORD: ROTATED } });
      server.failOn = { pattern: /^ALTER ROLE/, message: 'permission denied to alter role', code: '42501' };
      server.sent.length = 0;
      const failure = (await rotated.apply().then(
        () => undefined,
        (e: unknown) => e,
      )) as HostKitError;
      expect(failure).toMatchObject({
        code: 'PG_STATEMENT_FAILED',
        message: 'PostgreSQL rejected "ALTER ROLE "shop" WITH PASSWORD (redacted)" (database postgres): permission denied to alter role',
        retryable: false,
      });
      expect(JSON.stringify({ message: failure.message, data: failure.data })).not.toMatch(/SCRAM-SHA-256|rotated|hunter2/);
      expect(server.statements()).toEqual(['BEGIN', expect.stringMatching(/^ALTER ROLE/), 'ROLLBACK']);
    });

    it('CREATE DATABASE cannot be in a transaction: when its extensions then fail, apply drops the database again before throwing', async () => {
      const server = new FakePostgres();
      server.failOn = { pattern: /"postgis"/, message: 'could not open extension control file', code: '58P01' };
      const r = await run(server, { database: databaseResource({ extensions: ['pgcrypto', 'postgis'] }) });
      await expect(r.apply()).rejects.toThrow(/could not open extension control file/);
      expect(server.statements().slice(1)).toEqual([
        `CREATE DATABASE "shop" WITH OWNER "shop" TEMPLATE template0 ENCODING 'UTF8'`,
        'BEGIN',
        'CREATE EXTENSION IF NOT EXISTS "pgcrypto"',
        'CREATE EXTENSION IF NOT EXISTS "postgis"',
        'ROLLBACK',
        'DROP DATABASE "shop" WITH (FORCE)',
      ]);
      expect(server.databases.has('shop')).toBe(false);
    });

    it('rollback drops what the failed run created, puts back an owner, keeps the extensions it added, and says a dropped database cannot come back', async () => {
      const server = new FakePostgres();
      const created = await run(server);
      await created.apply();
      await created.rollback();
      expect(server.statements().slice(-2)).toEqual(['DROP DATABASE IF EXISTS "shop" WITH (FORCE)', 'DROP ROLE "shop"']);
      expect([server.roles.has('shop'), server.databases.has('shop')]).toEqual([false, false]);

      // `hostkit rollback` of a completed run keeps them: they may hold data by now.
      const completed = await run(server);
      await completed.apply();
      await completed.journaled.journal.close('applied');
      const kept = await completed.rollback();
      expect(kept.warnings).toEqual([
        expect.stringMatching(/^pgdatabase\/shop: databases are kept/),
        expect.stringMatching(/^pgrole\/shop: database roles are kept/),
      ]);
      expect([server.roles.has('shop'), server.databases.has('shop')]).toEqual([true, true]);

      server.databases.get('shop')!.owner = 'postgres';
      server.databases.get('shop')!.extensions.delete('pg_trgm');
      const update = await run(server);
      expect(update.dbChange.fields.map((f) => f.field)).toEqual(['/owner', '/extensions']);
      const [undo] = await update.apply();
      expect(undo).toEqual({ previousOwner: 'postgres', createdExtensions: ['pg_trgm'] });
      server.sent.length = 0;
      await update.rollback();
      expect(server.statements()).toEqual(['ALTER DATABASE "shop" OWNER TO "postgres"']);
      expect(server.databases.get('shop')!.owner).toBe('postgres');
      // An extension may have objects depending on it by now: dropping it could take them along.
      expect([...server.databases.get('shop')!.extensions].sort()).toEqual(['pg_trgm', 'pgcrypto', 'plpgsql']);

      const dropped = await run(server, { role: roleResource({ drop: true }), database: databaseResource({ drop: true }) });
      expect([dropped.roleChange.action, dropped.dbChange.action]).toEqual(['delete', 'delete']);
      await dropped.apply();
      expect([server.roles.has('shop'), server.databases.has('shop')]).toEqual([false, false]);
      await expect(dropped.rollback()).rejects.toThrow(/PG_DROP_IRREVERSIBLE|was dropped by this run \(drop: true\) and cannot be restored/);
      // A dropped role comes back with its settings and verifier (the database's error does not stop the other steps).
      expect(server.roles.get('shop')).toMatchObject({ login: true, connectionLimit: 20, password: expect.stringMatching(/^SCRAM-SHA-256\$/) });
    });

    it('a role or database HostKit did not create: a project manifest may neither set the password nor drop it; a host-level one may', async () => {
      const server = new FakePostgres();
      await (await run(server, { env: { SHOP_DB_PASSWORD: 'set-by-hand-1' } })).apply(); // as if made by hand: the inventory below is empty
      const none: Inventory = { version: 1, host: 'test-1', resources: {} };
      const adopt = await run(server, { inventory: none });
      expect(adopt.roleChange).toMatchObject({ action: 'noop', fields: [] });
      expect(adopt.roleChange.diagnostics).toEqual([
        expect.objectContaining({
          severity: 'error',
          summary: 'not allowed in a project manifest',
          detail: expect.stringMatching(/^rule pg-role-adopt: role shop exists/),
        }),
      ]);
      const drop = await run(server, { role: roleResource({ drop: true }), database: databaseResource({ drop: true }), inventory: none });
      expect([drop.roleChange.action, drop.dbChange.action]).toEqual(['noop', 'noop']);
      expect([...drop.roleChange.diagnostics, ...drop.dbChange.diagnostics].map((d) => d.detail.split(':')[0])).toEqual([
        'rule pg-drop-foreign',
        'rule pg-drop-foreign',
      ]);
      // Another project's inventory entry does not make it this project's.
      const theirs = { ...none, resources: { 'pgrole/shop': toInventoryEntry({ ...roleResource(), project: 'other' }) } };
      expect((await run(server, { inventory: theirs })).roleChange.diagnostics.map((d) => d.summary)).toEqual(['not allowed in a project manifest']);
      const hostLevel = await run(server, {
        role: { ...roleResource({ drop: true }), hostLevel: true } as Resource<RoleSpec>,
        database: { ...databaseResource({ drop: true }), hostLevel: true } as Resource<DatabaseSpec>,
        inventory: none,
      });
      expect([hostLevel.roleChange.action, hostLevel.dbChange.action]).toEqual(['delete', 'delete']);
      expect([...hostLevel.roleChange.diagnostics, ...hostLevel.dbChange.diagnostics]).toEqual([]);
    });

    it('drops only with drop: true, database first, and never an orphan', async () => {
      const server = new FakePostgres();
      await (await run(server)).apply();
      const { role: roleDriver, database: dbDriver } = makePostgresDrivers(server.connect);
      const ctx = driverContext(new FakeHost(), { env: {} });
      const [roles, databases] = await Promise.all([
        roleDriver.observe([roleResource()], ctx),
        dbDriver.observe([databaseResource()], ctx, dbDriver.createRun!(ctx)),
      ]);
      expect(roleDriver.plan({ resource: roleResource(), desired: undefined, observed: roles.get('pgrole/shop'), orphan: true })).toMatchObject({
        action: 'noop',
        orphan: true,
      });
      expect(dbDriver.plan({ resource: databaseResource(), desired: undefined, observed: databases.get('pgdatabase/shop'), orphan: true })).toMatchObject({
        action: 'noop',
        orphan: true,
      });
      server.sent.length = 0;
      const dropped = await run(server, { role: roleResource({ drop: true }), database: databaseResource({ drop: true }) });
      await dropped.apply();
      expect(server.statements()).toEqual(['DROP DATABASE "shop"', 'BEGIN', 'DROP ROLE "shop"', 'COMMIT']);
      expect(await dropped.dbDriver.verify(dropped.dbChange, dropped.ctx, dropped.dbRun)).toEqual([]);
      expect(await dropped.roleDriver.verify(dropped.roleChange, dropped.ctx)).toEqual([]);
      const again = await run(server, { role: roleResource({ drop: true }), database: databaseResource({ drop: true }) });
      expect([again.roleChange.action, again.dbChange.action]).toEqual(['noop', 'noop']);
    });

    it('plans, logs and errors never show the password, its URL form, or any verifier', async () => {
      const server = new FakePostgres();
      await (await run(server, { env: { SHOP_DB_PASSWORD: 'old-one-here' } })).apply();
      const r = await run(server);
      expect(r.roleChange.action).toBe('update');
      const shown = everythingShown([r.roleChange, r.dbChange]);
      expect(shown).toContain('(redacted) hmac:');
      for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), 'old-one-here', 'SCRAM-SHA-256$']) expect(shown).not.toContain(secret);
      // The redactor learnt the value, so any line HostKit prints is scrubbed of it too.
      expect(r.redactor.scrub(`x ${PASSWORD} y`)).toBe('x (redacted) y');
    });

    it('an unreadable password secret is a warning in a dry run and an error in an apply; an empty one is an error; the admin role cannot be declared', async () => {
      const server = new FakePostgres();
      const dry = await run(server, { env: {}, mode: 'plan' });
      expect(dry.roleChange.diagnostics.map((d: Diagnostic) => `${d.severity} ${d.summary}`)).toEqual(['warning secret unavailable']);
      const wet = await run(server, { env: {} });
      expect(wet.roleChange.diagnostics.map((d: Diagnostic) => `${d.severity} ${d.summary}`)).toEqual(['error secret unavailable']);
      const empty = await run(server, { env: { SHOP_DB_PASSWORD: '' } });
      expect(empty.roleChange.diagnostics.map((d: Diagnostic) => `${d.severity} ${d.summary}`)).toEqual(['error invalid secret value']);
      const admin = await run(server, { role: roleResource({ role: 'postgres' }) });
      expect(admin.roleChange.diagnostics.map((d: Diagnostic) => `${d.severity} ${d.summary}`)).toEqual(['error admin role declared']);
    });

    it('PostgreSQL not reachable: a dry run plans as if absent with a warning; an apply stops with the reason', async () => {
      const server = new FakePostgres();
      server.unreachable = 'connect ENOENT /run/postgresql/.s.PGSQL.5432';
      const dry = await run(server, { mode: 'plan' });
      expect([dry.roleChange.action, dry.dbChange.action]).toEqual(['create', 'create']);
      expect(dry.dbChange.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', summary: 'PostgreSQL not reachable' })]);
      await expect(run(server)).rejects.toThrow('connect ENOENT /run/postgresql/.s.PGSQL.5432');
    });

    it('the admin connection of a host whose socket is not on this machine is a clear error', async () => {
      const ctx = driverContext(new FakeHost());
      await expect(connectAdmin(ctx, 'postgres')).rejects.toMatchObject({
        code: 'PG_SOCKET_UNREACHABLE',
        message: expect.stringContaining('set spec.postgresql.host, port, user and password'),
      });
    });
  });
});

describe('reconciler/drivers/postgresql operations', () => {
  it('a password change: the plan says set-password and shows no password; apply alters only the password, a new limit only the limit', async () => {
    const server = new FakePostgres();
    await (await run(server)).apply();
    const rotated = await run(server, { env: { SHOP_DB_PASSWORD: ROTATED } });
    expect(rotated.roleChange.ops).toEqual([{ op: 'set-password' }]);
    const json = toJsonPlan({ host: 'h', repository: 'r', changes: [rotated.roleChange], diagnostics: [], summary: summarize([rotated.roleChange]) });
    expect(json.changes[0]!.ops).toEqual([{ op: 'set-password' }]);
    const shown = everythingShown([rotated.roleChange]);
    for (const secret of [PASSWORD, ROTATED, 'SCRAM-SHA-256', server.roles.get('shop')!.password!]) expect(shown).not.toContain(secret);
    server.sent.length = 0;
    await rotated.apply();
    expect(server.statements()).toEqual(['BEGIN', expect.stringMatching(/^ALTER ROLE "shop" WITH PASSWORD '/), 'COMMIT']);

    const limit = await run(server, { env: { SHOP_DB_PASSWORD: ROTATED }, role: roleResource({ connectionLimit: 5 }) });
    expect(limit.roleChange.ops).toEqual([{ op: 'alter-attributes', attributes: ['connectionLimit'] }]);
    server.sent.length = 0;
    await limit.apply();
    expect(server.statements()).toEqual(['BEGIN', 'ALTER ROLE "shop" WITH CONNECTION LIMIT 5', 'COMMIT']);
  });
});
