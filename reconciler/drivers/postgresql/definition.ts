import { postgresDatabasePrimitive, postgresRolePrimitive } from './manifest.js';
import type { KindDefinition } from '../types.js';

// What validation, schema generation and ordering need of this folder's kinds, without
// loading the driver's code (the driver spreads it; drivers/kinds.ts lists it).
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
