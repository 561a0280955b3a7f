import { pgName } from '../../manifests/primitive.js';
import type { ProjectPart } from '../manifest-types.js';
import type { PgDatabaseSpec, PgRoleSpec } from './spec.js';

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
