import { postgresDatabasePrimitive, postgresRolePrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
export const pgAccessDefinition = {
  kind: 'pgaccess',
  // After packages (PostgreSQL installed), before the roles and databases that need the admin connection.
  rank: 1.8,
  // Kept when no database is declared any more: orphaned roles and databases are still observed through it.
  orphans: 'report',
} as const satisfies KindDefinition<string>;

export const pgRoleDefinition = {
  kind: 'pgrole',
  rank: 2,
  orphans: 'report',
  manifests: [postgresRolePrimitive],
} as const satisfies KindDefinition<string>;

export const pgDatabaseDefinition = {
  kind: 'pgdatabase',
  rank: 3,
  orphans: 'report',
  manifests: [postgresDatabasePrimitive],
} as const satisfies KindDefinition<string>;
