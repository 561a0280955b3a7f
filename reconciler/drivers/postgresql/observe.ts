// Live state of roles, databases and extensions. The two drivers (pgrole,
// pgdatabase) are observed by the engine one right after the other; their
// requests are gathered into one batch, so roles, databases and installable
// extensions come from a single query on one connection. Installed extensions
// live in each database's own catalog: one more connection and query per
// existing database that declares extensions, none for the others.
import type { DriverContext } from '../types.js';
import { ADMIN_DATABASE, withSession, type Connect } from './connection.js';
import { CATALOG_QUERY, EXTENSIONS_QUERY } from './sql.js';

export interface RoleRow {
  name: string;
  login: boolean;
  connectionLimit: number;
  /** pg_authid.rolpassword: a verifier, kept in memory for comparison and rollback only. */
  password: string | null;
}

export interface DatabaseRow {
  name: string;
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
}

export interface Catalog {
  /** server_version_num, e.g. 150020. */
  version: number;
  roles: Map<string, RoleRow>;
  databases: Map<string, DatabaseRow>;
  /** Of the extensions asked about, those the server can install (pg_available_extensions). */
  available: Set<string>;
}

export interface CatalogRequest {
  roles?: readonly string[];
  databases?: readonly string[];
  extensions?: readonly string[];
}

export interface CatalogBatch {
  roles: Set<string>;
  databases: Set<string>;
  extensions: Set<string>;
  result: Promise<Catalog>;
}

/**
 * The catalog rows for the names asked for. Requests made in the same turn of
 * the event loop for the same run share one query; later ones start a new one
 * (so verify, after apply, always reads fresh state).
 */
export function loadCatalog(connect: Connect, ctx: DriverContext, request: CatalogRequest): Promise<Catalog> {
  const run = ctx.run.postgresql;
  let batch = run.batch;
  if (!batch) {
    const names = { roles: new Set<string>(), databases: new Set<string>(), extensions: new Set<string>() };
    // Queried on the next turn, once every driver of this run has added its names.
    const result = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      run.batch = undefined;
      return queryCatalog(await reader(connect, ctx), ctx, names);
    });
    batch = { ...names, result };
    run.batch = batch;
  }
  for (const r of request.roles ?? []) batch.roles.add(r);
  for (const d of request.databases ?? []) batch.databases.add(d);
  for (const e of request.extensions ?? []) batch.extensions.add(e);
  return batch.result;
}

async function queryCatalog(connect: Connect, ctx: DriverContext, batch: Omit<CatalogBatch, 'result'>): Promise<Catalog> {
  const [row] = await withSession(connect, ctx, ADMIN_DATABASE, (s) =>
    s.query<{ version: number; roles: RoleRow[]; databases: DatabaseRow[]; available: string[] }>(CATALOG_QUERY, [
      [...batch.roles],
      [...batch.databases],
      [...batch.extensions],
    ]),
  );
  if (!row) throw new Error('the catalog query returned no row');
  return {
    version: row.version,
    roles: new Map(row.roles.map((r) => [r.name, r])),
    databases: new Map(row.databases.map((d) => [d.name, d])),
    available: new Set(row.available),
  };
}

// Observe reads as the postgres OS user (psql) while HostKit's own admin access is set up later in the same run (pgaccess).
async function reader(connect: Connect, ctx: DriverContext): Promise<Connect> {
  const access = await ctx.run.postgresql.access;
  return access?.pending ? access.read : connect;
}

/**
 * The server does not answer at all while HostKit sets up its admin access in this run
 * (pgaccess): not installed or not started yet, so no role or database can exist that an
 * apply would have to know of. Roles and databases are then planned as if absent even
 * in an apply; a create that finds one fails at apply, loudly.
 */
export async function serverAbsent(ctx: DriverContext): Promise<boolean> {
  return (await ctx.run.postgresql.access?.catch(() => undefined))?.absent === true;
}

/** Installed extensions of each named database (one session and query per database, concurrently). */
export async function loadExtensions(connect: Connect, ctx: DriverContext, databases: readonly string[]): Promise<Map<string, string[]>> {
  connect = await reader(connect, ctx);
  const lists = await Promise.all(
    databases.map((db) => withSession(connect, ctx, db, async (s) => (await s.query<{ name: string }>(EXTENSIONS_QUERY)).map((r) => r.name))),
  );
  return new Map(databases.map((db, i) => [db, lists[i]!]));
}

// Verify reads the catalog once per run, not once per change: every name applied
// so far is asked for at the first verify, and the answer is shared until the next
// apply or rollback of either driver (which makes it stale).
export interface VerifyState {
  generation: number;
  roles: Set<string>;
  databases: Set<string>;
  cached?: { generation: number; roles: Set<string>; databases: Set<string>; catalog: Promise<Catalog> };
}

/** Called by apply and rollback before they change anything: the names verify will ask about, and staleness. */
export function noteChanging(ctx: DriverContext, names: { roles?: readonly string[]; databases?: readonly string[] }): void {
  const state = ctx.run.postgresql.verifying;
  state.generation++;
  for (const r of names.roles ?? []) state.roles.add(r);
  for (const d of names.databases ?? []) state.databases.add(d);
}

/** The catalog as it is after this run's changes (see noteChanging), for verify. */
export function catalogAfterChanges(
  connect: Connect,
  ctx: DriverContext,
  request: { roles?: readonly string[]; databases?: readonly string[] },
): Promise<Catalog> {
  const state = ctx.run.postgresql.verifying;
  const c = state.cached;
  const covered = (set: Set<string> | undefined, names: readonly string[] | undefined) => (names ?? []).every((n) => set?.has(n));
  if (c && c.generation === state.generation && covered(c.roles, request.roles) && covered(c.databases, request.databases)) return c.catalog;
  const roles = new Set([...state.roles, ...(request.roles ?? [])]);
  const databases = new Set([...state.databases, ...(request.databases ?? [])]);
  const catalog = queryCatalog(connect, ctx, { roles, databases, extensions: new Set() });
  state.cached = { generation: state.generation, roles, databases, catalog };
  catalog.catch(() => {
    if (state.cached?.catalog === catalog) state.cached = undefined; // a failed read is not shared
  });
  return catalog;
}
