// What manifests expand into for this kind, defaults applied (a plan compares it with the host): PostgreSQL roles and databases.
import type { SecretRef } from '../../manifests/types.js';

export interface PgRoleSpec {
  role: string;
  password?: SecretRef;
  connectionLimit: number;
  /** Explicit opt-in: drop the role (HostKit never drops one otherwise). */
  drop?: boolean;
}

export interface PgDatabaseSpec {
  database: string;
  owner: string;
  extensions: string[];
  /** Explicit opt-in: drop the database and its data (HostKit never drops one otherwise). */
  drop?: boolean;
  /** Fixed at creation; a different value later is an error, never a recreate. */
  encoding?: string;
  locale?: string;
}

/** HostKit's own admin access (pgaccess/local): root logs in as the admin role over the local socket through a peer map. */
export interface PgAccessSpec {
  /** The socket directory the admin connection uses (spec.postgresql.socket). */
  socket: string;
  /** The cluster's port (the socket file's suffix). */
  port: number;
}
