import { resourceId } from '../../core/resource.js';
import { pgName } from '../../manifests/primitive.js';
import type { SecretRef } from '../../manifests/types.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { PgDatabaseSpec, PgRoleSpec } from './spec.js';

/** A PostgresRole manifest's spec as written. */
export interface PostgresRoleManifestSpec {
  role?: string;
  password?: SecretRef;
  connectionLimit?: number;
  drop?: boolean;
}

/** A PostgresDatabase manifest's spec as written. */
export interface PostgresDatabaseManifestSpec {
  database?: string;
  owner: string;
  extensions?: string[];
  drop?: boolean;
  encoding?: string;
  locale?: string;
}

// A login role named after the manifest (dashes as underscores) unless given.
export const postgresRolePrimitive: PrimitiveDefinition<'PostgresRole', PostgresRoleManifestSpec> = {
  kind: 'PostgresRole',
  schema: {
    title: 'A PostgreSQL login role',
    properties: {
      role: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
      password: { $ref: 'common.schema.json#/$defs/secretRef' },
      connectionLimit: { type: 'integer', minimum: -1, maximum: 10000 },
      drop: { type: 'boolean', description: 'Drop this role. HostKit never drops a role otherwise; keep the manifest until a run has applied it.' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const role = s.role ?? pgName(m.name);
    x.add<PgRoleSpec>(
      'pgrole',
      role,
      { role, connectionLimit: s.connectionLimit ?? -1, ...(s.password ? { password: s.password } : {}), ...(s.drop ? { drop: true } : {}) },
      x.origin,
    );
  },

  policy(m, c) {
    const s = m.value.spec;
    c.pgName(s.role ?? pgName(m.name), s.role ? '/spec/role' : '/metadata/name', 'role');
    c.drop(s.drop, '/spec/drop');
  },
};

// A database owned by a declared role, after it.
export const postgresDatabasePrimitive: PrimitiveDefinition<'PostgresDatabase', PostgresDatabaseManifestSpec> = {
  kind: 'PostgresDatabase',
  schema: {
    title: 'A PostgreSQL database',
    required: ['owner'],
    properties: {
      database: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
      owner: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
      extensions: { type: 'array', maxItems: 64, items: { type: 'string', $ref: 'common.schema.json#/$defs/pgExtension' }, uniqueItems: true },
      drop: {
        type: 'boolean',
        description: 'Drop this database and all its data. HostKit never drops a database otherwise; keep the manifest until a run has applied it.',
      },
      encoding: { type: 'string', description: 'Fixed at creation (default UTF8).', pattern: '^[A-Za-z0-9_-]{1,32}$' },
      locale: { type: 'string', description: 'Fixed at creation.', pattern: '^[A-Za-z0-9_.@-]{1,64}$' },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const database = s.database ?? pgName(m.name);
    const dbSpec: PgDatabaseSpec = {
      database,
      owner: s.owner,
      extensions: s.extensions ?? [],
      ...(s.drop ? { drop: true } : {}),
      ...(s.encoding ? { encoding: s.encoding } : {}),
      ...(s.locale ? { locale: s.locale } : {}),
    };
    x.add<PgDatabaseSpec>('pgdatabase', database, dbSpec, x.origin, {
      dependsOn: [resourceId('pgrole', s.owner)],
      fieldOrigins: {
        owner: x.at('/spec/owner'),
        ...(s.extensions ? { extensions: x.at('/spec/extensions') } : {}),
        ...(s.encoding ? { encoding: x.at('/spec/encoding') } : {}),
        ...(s.locale ? { locale: x.at('/spec/locale') } : {}),
      },
    });
  },

  policy(m, c) {
    const s = m.value.spec;
    c.pgName(s.database ?? pgName(m.name), s.database ? '/spec/database' : '/metadata/name', 'database');
    c.pgName(s.owner, '/spec/owner', 'owner role');
    c.extensions(s.extensions, '/spec/extensions');
    c.drop(s.drop, '/spec/drop');
  },
};
