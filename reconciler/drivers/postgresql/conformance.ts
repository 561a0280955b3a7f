import { FakePostgres } from '../../../test/support/fake-postgres.js';
import { idsOf, many, type ConformanceFixture, type FakeWorld, type Guard, type ManifestDoc } from '../../../test/support/conformance.js';
import { pgName } from '../../manifests/expand.js';
import type { Connect } from './connection.js';
import { makePostgresDrivers } from './index.js';
import { BEGIN, COMMIT, ROLLBACK } from './sql.js';

// Roles with a password and a connection limit; databases with an extension, owned by a role made first.

/**
 * The fake server as a client that may be killed reaches it: every statement but a
 * SELECT is a step; when the client dies the server aborts its open transactions.
 */
function guarded(server: FakePostgres, guard: Guard): Connect {
  return async (ctx, database) => {
    guard.alive(`connect to ${database}`);
    const session = await server.connect(ctx, database);
    let open = false;
    guard.onDeath(() => {
      if (open) void session.query(ROLLBACK);
      open = false;
    });
    return {
      query: async (statement, values) => {
        const what = `${database}: ${statement.display}`;
        if (/^\s*SELECT\b/.test(statement.text)) guard.alive(what);
        else guard.step(what);
        if (statement === BEGIN) open = true;
        if (statement === COMMIT || statement === ROLLBACK) open = false;
        return session.query(statement, values);
      },
      close: () => session.close(),
    };
  };
}

function fakeServer(): FakeWorld {
  const server = new FakePostgres();
  return {
    drivers: (guard) => {
      const { role, database } = makePostgresDrivers(guarded(server, guard));
      return [role, database];
    },
    costs: () => ({ sessions: server.sessions.length, statements: server.sent.length }),
  };
}

const role = (set: string, i: number) => `ck-${set}-r${i}`;
const roleIds = (set: string, count: number) => idsOf('pgrole', count, (i) => pgName(role(set, i)));
const database = (set: string, i: number) => `ck-${set}-db${i}`;
const databaseIds = (set: string, count: number) => idsOf('pgdatabase', count, (i) => pgName(database(set, i)));
const owner = (set: string) => `ck-${set}-owner`;

const needs = (set: string): ManifestDoc[] => [{ kind: 'PostgresRole', name: owner(set), spec: { connectionLimit: 2 } }];

const KEPT = 'apply/restore.ts keeps what a run created: "database roles are kept", "databases are kept (they hold data)" (README, Safe apply)';

export const fixtures: ConformanceFixture[] = [
  {
    kind: 'pgrole',
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({
        kind: 'PostgresRole',
        name: role(set, i),
        project: role(set, i),
        spec: { connectionLimit: change ? 6 : 5, password: { env: 'CK_PG_PASSWORD' } },
      })),
    paths: () => [],
    env: { CK_PG_PASSWORD: 'conformance-pg-7f3e' },
    fake: fakeServer,
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => roleIds(set, count), paths: () => [], asApplied: true },
    },
  },
  {
    kind: 'pgdatabase',
    needs,
    declare: (set, count, changed) => [
      ...needs(set),
      ...many(count, changed, (i, change) => ({
        kind: 'PostgresDatabase',
        name: database(set, i),
        spec: { owner: pgName(owner(set)), extensions: change ? ['pg_trgm', 'pgcrypto'] : ['pg_trgm'] },
      })),
    ],
    paths: () => [],
    fake: fakeServer,
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => databaseIds(set, count), paths: () => [], asApplied: true },
      update: { reason: KEPT, resources: ({ set }) => databaseIds(set, 1), paths: () => [], asApplied: true },
    },
    observeCost: {
      reason: 'README, PostgreSQL: observe makes "one query per existing database that declares extensions", in a session of its own',
      perResource: { sessions: 1, statements: 1 },
    },
  },
];
