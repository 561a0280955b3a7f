import { FakePostgres } from '../../../test/support/fake-postgres.js';
import { idsOf, many, type ConformanceFixture, type FakeWorld, type Guard, type ManifestDoc } from '../../../test/support/conformance.js';
import type { FakeHost } from '../../hosts/fake.js';
import type { ExecResult, Host } from '../../hosts/types.js';
import { pgName } from '../../manifests/expand.js';
import { hasHbaLine, hasIdentMap, HBA_LINE } from './access.js';
import type { Connect } from './connection.js';
import { makePostgresDrivers } from './index.js';
import { DEFAULT_PORT, DEFAULT_SOCKET_DIRECTORY } from './project.js';
import { reloadCluster } from './psql.js';
import { BEGIN, COMMIT, ROLLBACK } from './sql.js';

// Roles with a password and a connection limit; databases with an extension, owned by a role made first;
// HostKit's admin access, from the distribution's pg_hba.conf and pg_ident.conf.

/**
 * The fake server as a client that may be killed reaches it: every statement but a
 * SELECT is a step; when the client dies the server aborts its open transactions.
 */
export function guarded(server: FakePostgres, guard: Guard): Connect {
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
      const { access, role, database } = makePostgresDrivers(guarded(server, guard));
      return [access, role, database];
    },
    costs: () => ({ sessions: server.sessions.length, statements: server.sent.length }),
  };
}

// Debian 12's cluster files (postgresql-15), comments shortened.
const CONF = '/etc/postgresql/15/main';
const HBA = `${CONF}/pg_hba.conf`;
const IDENT = `${CONF}/pg_ident.conf`;
const DISTRIBUTION_LINE = 'local   all             postgres                                peer';
const STOCK_HBA = `# Database administrative login by Unix domain socket\n${DISTRIBUTION_LINE}\n\nlocal   all             all                                     peer\nhost    all             all             127.0.0.1/32            scram-sha-256\n`;
const STOCK_IDENT = '# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n';

/**
 * The distribution's files, without any map for root: HostKit's lines and the README's
 * manual ones go (a real host of the kit has the manual map), then the cluster reloads.
 */
async function stockAccess(host: Host): Promise<void> {
  const [hba, ident, st] = await Promise.all([host.readFile(HBA), host.readFile(IDENT), host.stat(HBA)]);
  const owner = st ? { uid: st.uid, gid: st.gid, mode: st.mode } : { uid: 0, gid: 0, mode: 0o640 };
  if (!st) for (const dir of ['/etc/postgresql', '/etc/postgresql/15', CONF]) await host.mkdir(dir, { uid: 0, gid: 0, mode: 0o755 });
  const mapped = (line: string) => line.trim().split(/\s+/).join(' ') === HBA_LINE.split(/\s+/).join(' ');
  const hbaLines = (hba?.toString('utf8') ?? STOCK_HBA).split('\n').filter((l) => !l.startsWith('# HostKit (pgaccess/local)'));
  const kept = hbaLines.some((l) => l === DISTRIBUTION_LINE) ? hbaLines.filter((l) => !mapped(l)) : hbaLines.map((l) => (mapped(l) ? DISTRIBUTION_LINE : l));
  const ours = /^(# BEGIN HostKit|# END HostKit|hostkit\s+(root|postgres)\s+postgres\s*$)/;
  const identLines = (ident?.toString('utf8') ?? STOCK_IDENT).split('\n').filter((l) => !ours.test(l));
  await host.writeFile(HBA, kept.join('\n'), owner);
  await host.writeFile(IDENT, identLines.join('\n'), owner);
  await reloadCluster(host, { socket: DEFAULT_SOCKET_DIRECTORY, port: DEFAULT_PORT });
}

const ok = (stdout: string): ExecResult => ({ exitCode: 0, stdout, stderr: '' });

/**
 * A cluster whose pg_hba.conf and pg_ident.conf are the fake host's files: root logs in
 * once the files the server last loaded (at a reload) map it to postgres; `psql` as the
 * postgres OS user names the files, checks them and reloads.
 */
function fakeCluster(host: FakeHost): FakeWorld {
  const server = new FakePostgres();
  let loaded = { hba: '', ident: '' };
  host.onExec((call) => {
    if (call.file !== 'runuser' || !call.args.includes('psql')) return undefined;
    const sql = call.input ?? '';
    if (sql.includes("current_setting('hba_file')")) return ok(`${HBA}\n${IDENT}\n${server.version}\n`);
    if (sql.includes('pg_hba_file_rules')) return ok('\n');
    if (sql.includes('pg_reload_conf()')) {
      loaded = { hba: host.text(HBA) ?? '', ident: host.text(IDENT) ?? '' };
      return ok('t\n');
    }
    return { exitCode: 3, stdout: '', stderr: `the fake psql does not understand: ${sql}` };
  });
  return {
    drivers: (guard) => {
      const asPostgres = guarded(server, guard);
      const asRoot: Connect = async (ctx, database) => {
        if (!hasHbaLine(loaded.hba) || !hasIdentMap(loaded.ident)) {
          throw Object.assign(new Error('Peer authentication failed for user "postgres"'), { code: '28000' });
        }
        return asPostgres(ctx, database);
      };
      const { access, role, database } = makePostgresDrivers(asRoot, () => asPostgres);
      return [access, role, database];
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

const accessRole = (set: string, i: number) => `ck-${set}-a${i}`;

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
  {
    kind: 'pgaccess',
    // Roles that need the admin connection; `changed` alters one, which its own undo puts back.
    declare: (set, count, changed) =>
      many(count, changed, (i, change) => ({ kind: 'PostgresRole', name: accessRole(set, i), spec: { connectionLimit: change ? 4 : 3 } })),
    prepare: stockAccess,
    paths: () => [HBA, IDENT],
    fake: fakeCluster,
    single: { reason: 'one per host (pgaccess/local): the roles declared size what needs it' },
    rollback: {
      create: { reason: KEPT, resources: ({ set, count }) => idsOf('pgrole', count, (i) => pgName(accessRole(set, i))), paths: () => [], asApplied: true },
    },
  },
];
