// The admin connection to a host's PostgreSQL, from the Host manifest's
// spec.postgresql: a Unix socket of the managed host (peer authentication, the
// default), or TCP with a password. Sessions are short: one per step, closed
// when the step ends, so nothing is left open between plan and apply.
import type pg from 'pg';

// node-postgres is loaded by the first session of a run: a host without databases does not pay its start-up.
let loaded: Promise<typeof pg> | undefined;
const pgModule = async () => (await (loaded ??= import('pg').then((m) => m.default))) as typeof pg;
import { HostKitError } from '../../core/errors.js';
import type { DriverContext } from '../types.js';
import { DEFAULT_PORT, DEFAULT_SOCKET_DIRECTORY } from './project.js';
import { BEGIN, COMMIT, ROLLBACK, type Statement } from './sql.js';

export { DEFAULT_PORT, DEFAULT_SOCKET_DIRECTORY } from './project.js';
export const DEFAULT_ADMIN_USER = 'postgres';
/** The database admin sessions connect to when they do not work inside one database. */
export const ADMIN_DATABASE = 'postgres';

export interface SqlSession {
  /** Runs one statement; a PostgreSQL error becomes a HostKitError naming the statement's display form. */
  query<R extends object = Record<string, unknown>>(statement: Statement, values?: readonly unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

/** Opens a session as the admin role in `database`. Unit tests pass a fake one. */
export type Connect = (ctx: DriverContext, database: string) => Promise<SqlSession>;

export interface AdminTarget {
  config: pg.ClientConfig;
  /** For messages: "socket /run/postgresql on HOST" or "127.0.0.1:5432". */
  where: string;
}

// Resolved once per run: the admin password secret is read at most once.
function adminTarget(ctx: DriverContext): Promise<AdminTarget> {
  return (ctx.run.postgresql.target ??= resolveTarget(ctx));
}

async function resolveTarget(ctx: DriverContext): Promise<AdminTarget> {
  const spec = ctx.hostManifest.spec?.postgresql ?? {};
  const port = spec.port ?? DEFAULT_PORT;
  const user = spec.user ?? DEFAULT_ADMIN_USER;
  let password: string | undefined;
  if (spec.password) {
    const secret = await ctx.secrets.resolve(spec.password);
    if (!secret.ok) {
      throw new HostKitError('PG_ADMIN_SECRET_UNAVAILABLE', `The PostgreSQL admin password (Host spec.postgresql.password) cannot be read: ${secret.reason}`);
    }
    password = secret.value;
  }
  const common: pg.ClientConfig = {
    user,
    port,
    application_name: 'hostkit',
    connectionTimeoutMillis: 10_000,
    // Startup parameters, not SET statements: a DDL step waiting on a lock fails instead of hanging.
    lock_timeout: 30_000,
    statement_timeout: 300_000,
    ...(password !== undefined ? { password } : {}),
  };
  if (spec.host) return { config: { ...common, host: spec.host }, where: `${spec.host}:${port}` };
  const socket = spec.socket ?? DEFAULT_SOCKET_DIRECTORY;
  const local = await ctx.host.localPath(socket);
  if (local === undefined) {
    throw new HostKitError(
      'PG_SOCKET_UNREACHABLE',
      `PostgreSQL's socket directory ${socket} on ${ctx.host.name} cannot be opened from this machine; ` +
        'run HostKit on that host, or set spec.postgresql.host, port, user and password in its Host manifest for a TCP admin connection',
      { data: { host: ctx.host.name, socket } },
    );
  }
  return { config: { ...common, host: local }, where: `socket ${socket} on ${ctx.host.name}` };
}

// Admin-database connections of one run, reused from step to step: a new
// connection costs a backend fork and authentication (~10-20 ms), as much as the
// statement a step sends. Idle ones close after a moment and never keep the
// process alive; the run's end closes the pool (ctx.run.close()). Sessions in other
// databases stay one-shot, so no idle client ever holds a database a later step drops.
function adminPool(ctx: DriverContext, target: AdminTarget, lib: typeof pg): pg.Pool {
  const run = ctx.run.postgresql;
  if (!run.pool) {
    run.pool = new lib.Pool({ ...target.config, database: ADMIN_DATABASE, max: 4, idleTimeoutMillis: 200, allowExitOnIdle: true });
    // An error on an idle client (the server went away) must not crash the process; the next session reports it.
    run.pool.on('error', () => undefined);
  }
  return run.pool;
}

interface Connection {
  client: pg.ClientBase;
  /** Ends the session: back to the pool when it is clean, closed otherwise. */
  end(broken: boolean): Promise<void>;
}

async function open(ctx: DriverContext, target: AdminTarget, database: string): Promise<Connection> {
  const lib = await pgModule();
  if (database === ADMIN_DATABASE) {
    const client = await adminPool(ctx, target, lib).connect();
    return {
      client,
      end: async (broken) => client.release(broken),
    };
  }
  const client = new lib.Client({ ...target.config, database });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    await client.end().catch(() => undefined);
    throw cause;
  }
  return { client, end: () => client.end().catch(() => undefined) };
}

/** The real connection: node-postgres to the admin target. */
export const connectAdmin: Connect = async (ctx, database) => {
  const target = await adminTarget(ctx);
  let connection: Connection;
  try {
    connection = await open(ctx, target, database);
  } catch (cause) {
    const fields = pgFields(cause);
    // 28000 is a refused peer or pg_hba.conf match, 28P01 a wrong password: set-up problems, not passing ones.
    const refused = fields.sqlstate === '28000' || fields.sqlstate === '28P01';
    const hint =
      refused && target.config.password === undefined
        ? `; HostKit runs as root: map root to ${target.config.user} with a pg_ident.conf map on that pg_hba.conf line, or give a password (see README, PostgreSQL admin connection)`
        : '';
    throw new HostKitError(
      'PG_CONNECT_FAILED',
      `Cannot connect to PostgreSQL (${target.where}) as ${target.config.user} to database ${database}: ${pgMessage(cause)}${hint}`,
      { cause, retryable: !refused, data: { database, where: target.where, ...fields } },
    );
  }
  const { client } = connection;
  // A session that saw an error, or ends inside a transaction, is not handed on.
  let broken = false;
  let inTransaction = false;
  return {
    async query<R extends object>(statement: Statement, values?: readonly unknown[]): Promise<R[]> {
      ctx.log.debug({ database, sql: statement.display }, 'sql');
      try {
        const result = await client.query(statement.text, values ? [...values] : undefined);
        if (statement === BEGIN) inTransaction = true;
        if (statement === COMMIT || statement === ROLLBACK) inTransaction = false;
        return result.rows as R[];
      } catch (cause) {
        broken = true;
        throw statementFailed(statement, database, cause);
      }
    },
    async close() {
      await connection.end(broken || inTransaction);
    },
  };
};

/** A failed statement: PostgreSQL's message (and detail) with the statement's display form, never its secret part. */
export function statementFailed(statement: Statement, database: string, cause: unknown): HostKitError {
  const fields = pgFields(cause);
  // 55006 object_in_use (e.g. a database others are connected to), 40001/40P01 serialization and deadlock: trying again can help.
  const retryable = fields.sqlstate === '55006' || fields.sqlstate === '40001' || fields.sqlstate === '40P01' || fields.sqlstate === '55P03';
  return new HostKitError('PG_STATEMENT_FAILED', `PostgreSQL rejected "${statement.display}" (database ${database}): ${pgMessage(cause)}`, {
    cause,
    retryable,
    data: { database, statement: statement.display, ...fields },
  });
}

function pgMessage(cause: unknown): string {
  const e = cause as { message?: string; detail?: string; hint?: string };
  const parts = [e.message ?? String(cause)];
  if (e.detail) parts.push(e.detail);
  if (e.hint) parts.push(`hint: ${e.hint}`);
  return parts.join('; ');
}

function pgFields(cause: unknown): { sqlstate?: string } {
  const code = (cause as { code?: unknown }).code;
  return typeof code === 'string' ? { sqlstate: code } : {};
}

/** Opens a session, runs `fn`, and closes the session whatever happens. */
export async function withSession<T>(connect: Connect, ctx: DriverContext, database: string, fn: (s: SqlSession) => Promise<T>): Promise<T> {
  const session = await connect(ctx, database);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/**
 * BEGIN, `fn`, COMMIT; on any error ROLLBACK, so PostgreSQL leaves the step's
 * statements undone, and the error (PostgreSQL's message) is thrown on.
 */
export async function inTransaction<T>(session: SqlSession, fn: () => Promise<T>): Promise<T> {
  await session.query(BEGIN);
  try {
    const result = await fn();
    await session.query(COMMIT);
    return result;
  } catch (error) {
    await session.query(ROLLBACK).catch(() => undefined);
    throw error;
  }
}
