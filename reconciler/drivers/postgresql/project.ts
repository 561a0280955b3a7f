import { pgName } from '../../manifests/primitive.js';
import type { ProjectPart } from '../manifest-types.js';
import type { HostSpec } from '../../manifests/types.js';
import type { PgAccessSpec, PgDatabaseSpec, PgRoleSpec } from './spec.js';

/** Where PostgreSQL listens when the Host manifest does not say (Debian, Ubuntu, RHEL: /var/run is a link to /run). */
export const DEFAULT_SOCKET_DIRECTORY = '/run/postgresql';
export const DEFAULT_PORT = 5432;

/**
 * The admin access HostKit sets up itself (pgaccess/local) on a host with roles or
 * databases: only for the default admin connection, postgres over the local socket by
 * peer authentication. A TCP host, another user or a password is the operator's set-up.
 */
export function adminAccess(postgresql: HostSpec['postgresql']): PgAccessSpec | undefined {
  const spec = postgresql ?? {};
  if (spec.host !== undefined || spec.password !== undefined || (spec.user ?? 'postgres') !== 'postgres') return undefined;
  return { socket: spec.socket ?? DEFAULT_SOCKET_DIRECTORY, port: spec.port ?? DEFAULT_PORT };
}

// spec.database: a role and a database it owns, before the service that uses them.
export const projectDatabase: ProjectPart = {
  name: 'database',
  expand(x) {
    const db = x.project.spec.database;
    if (!db) return;
    const role = db.role ?? pgName(x.name);
    const database = db.name ?? pgName(x.name);
    const roleId = x.add<PgRoleSpec>('pgrole', role, { role, password: db.password, connectionLimit: db.connectionLimit ?? -1 }, x.at('/spec/database'));
    x.ids.databases.push(roleId);
    x.ids.databases.push(
      x.add<PgDatabaseSpec>('pgdatabase', database, { database, owner: role, extensions: db.extensions ?? [] }, x.at('/spec/database'), {
        dependsOn: [roleId],
      }),
    );
  },
};
