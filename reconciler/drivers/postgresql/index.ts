// PostgreSQL roles (pgrole) and databases (pgdatabase), through an admin
// connection described by the Host manifest (connection.ts), which HostKit sets
// up itself for the default local one (pgaccess, access.ts). Both drivers share
// one catalog query per run (observe.ts); passwords are SCRAM verifiers
// computed here (scram.ts); every statement is built in sql.ts.
import { makeAccessDriver } from './access.js';
import { connectAdmin, type Connect } from './connection.js';
import { makeDatabaseDriver } from './database.js';
import type { Cluster } from './psql.js';
import { makeRoleDriver } from './role.js';

export type { AccessOp, AccessUndo, ObservedAccess } from './access.js';
export type { Connect, SqlSession } from './connection.js';
export type { DatabaseSpec, DatabaseUndo, DesiredDatabase, ObservedDatabase } from './database.js';
export type { DesiredRole, ObservedRole, RoleSpec, RoleUndo } from './role.js';

/** The drivers over one way of connecting (unit tests pass a fake). */
export function makePostgresDrivers(connect: Connect = connectAdmin, asPostgres?: (cluster: Cluster) => Connect) {
  return { access: makeAccessDriver(connect, asPostgres), role: makeRoleDriver(connect), database: makeDatabaseDriver(connect) };
}

const real = makePostgresDrivers();
export const pgAccessDriver = real.access;
export const pgRoleDriver = real.role;
export const pgDatabaseDriver = real.database;
