import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { HostKitError } from '../../core/errors.js';
import { Redactor, SecretResolver } from '../../core/secrets.js';
import { hasOp, type Change } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import type { HostSpec } from '../../manifests/types.js';
import { createRunServices } from '../run.js';
import type { ChangeJournal, DriverContext, JournaledChange, Restore } from '../types.js';
import type { DatabaseSpec } from './database.js';
import { ADMIN_DATABASE, withSession, type Connect } from './connection.js';
import type { DatabaseOp } from './database.js';
import type { ObservedRole, RoleOp, RoleSettings, RoleSpec } from './role.js';
import { alterDatabaseOwner, alterRole, createRole, dropDatabase, dropRole, OWNER_QUERY, ROLE_QUERY, VERSION_QUERY } from './sql.js';

// The undo of PostgreSQL changes. Roles and databases a run created are kept,
// with their inventory entries (a database holds data; a role may own objects).
// A role's settings (login, connection limit, stored password verifier) are a
// record of the run journal, taken before they change or before the role is
// dropped, with how the Host manifest reaches the server (references only, never
// a secret value): a restore sets them back in one ALTER ROLE, or creates a
// dropped role again with them. A dropped database cannot come back: its restore
// is an error that says so.

interface RoleRecord {
  role: string;
  postgresql?: HostSpec['postgresql'];
  settings: RoleSettings;
  /** The run dropped the role: a restore creates it again. */
  dropped?: true;
}

type RoleStep =
  ({ action: 'restore-role'; resource: string } & RoleRecord) | { action: 'drop-role'; resource: string; role: string; postgresql?: HostSpec['postgresql'] };

/** Made by this run (it planned a create) and the run never completed: nothing used it yet, so a restore drops it. */
function createdUnfinished(change: JournaledChange): boolean {
  return !change.finished && change.planned?.action === 'create';
}

// How the run reached the server: recorded before its create (absent for one made ahead in a batch: the default connection).
function createdWith(change: JournaledChange<{ postgresql?: HostSpec['postgresql'] }>): HostSpec['postgresql'] | undefined {
  return change.records.find((r) => r.key === 'created')?.data.postgresql;
}

export function roleRestore(connect: Connect): Restore<Change<unknown, ObservedRole, RoleSpec, RoleOp>, RoleRecord, RoleStep> {
  return {
    keeps: 'database roles are kept',

    // A create: how the server is reached, should the run fail and the role go again.
    // Before any of them changes. A new password goes with a new env file (DATABASE_URL): restoring the file alone would lock the service out.
    async backup(change, journal, ctx) {
      const observed = change.observed;
      if (hasOp(change, 'create') && change.resource) {
        const postgresql = ctx.hostManifest.spec?.postgresql;
        await journal.backupState('created', { role: change.resource.spec.role, ...(postgresql ? { postgresql } : {}) });
      }
      if (!observed?.exists || !change.resource) return;
      // All of them, whichever the ALTER sets: a restore puts them back in one ALTER ROLE.
      const dropped = hasOp(change, 'drop');
      if (!dropped && !hasOp(change, 'alter-attributes') && !hasOp(change, 'set-password')) return;
      const postgresql = ctx.hostManifest.spec?.postgresql;
      await journal.backupState('settings', {
        role: change.resource.spec.role,
        ...(postgresql ? { postgresql } : {}),
        settings: { login: observed.login, connectionLimit: observed.connectionLimit, password: observed.password },
        ...(dropped ? { dropped: true as const } : {}),
      } satisfies RoleRecord);
    },

    // Whether it is as before is asked when it is put back (one query, in the same session).
    plan: async (change) => {
      const role = (change.planned?.entry?.spec as Partial<RoleSpec> | undefined)?.role;
      if (createdUnfinished(change) && role) {
        const postgresql = createdWith(change as JournaledChange<{ postgresql?: HostSpec['postgresql'] }>);
        return [{ action: 'drop-role' as const, resource: change.id, role, ...(postgresql ? { postgresql } : {}) }];
      }
      return change.records.filter((r) => r.key === 'settings').map((r) => ({ action: 'restore-role' as const, resource: change.id, ...r.data }));
    },

    apply: (step, ctx) =>
      step.action === 'drop-role'
        ? inAdminSession(connect, ctx, step.postgresql, async (s) => {
            if ((await s.query(ROLE_QUERY, [step.role])).length > 0) await s.query(dropRole(step.role));
          })
        : restoreRoleSettings(connect, { ...ctx, step }),

    describe: (step) =>
      step.action === 'drop-role'
        ? `  drop PostgreSQL role ${step.role} (created by this run, which never completed)`
        : step.dropped
          ? `  create PostgreSQL role ${step.role} again, with its login, connection limit and stored password (one CREATE ROLE)`
          : `  restore PostgreSQL role ${step.role}: login, connection limit and stored password (one ALTER ROLE)`,
  };
}

/**
 * Set `role`'s login, connection limit and stored password (a verifier, or none)
 * back to `settings`, or create it again with them if the run dropped it: one
 * statement, as the admin connection of the Host manifest reaches the server.
 * `record` (the run doing the restore) first backs up what it replaces.
 */
async function restoreRoleSettings(
  connect: Connect,
  options: { host: Host; stateDirectory: string; log: Logger; step: Extract<RoleStep, { action: 'restore-role' }>; record?: ChangeJournal },
): Promise<void> {
  const { step } = options;
  const { role, settings, postgresql } = step;
  const ctx = adminContext(options, postgresql);
  try {
    await withSession(connect, ctx, ADMIN_DATABASE, async (s) => {
      const [now] = await s.query<RoleSettings>(ROLE_QUERY, [role]);
      if (!now) {
        if (!step.dropped) throw new Error(`role ${role} no longer exists; its settings cannot be put back`);
        await s.query(createRole(role, settings));
        return;
      }
      if (now.login === settings.login && now.connectionLimit === settings.connectionLimit && now.password === settings.password) return;
      await options.record?.backupState('settings', {
        role,
        ...(postgresql ? { postgresql } : {}),
        settings: { login: now.login, connectionLimit: now.connectionLimit, password: now.password },
      } satisfies RoleRecord);
      await s.query(alterRole(role, settings));
    });
  } finally {
    await ctx.run.close();
  }
}

/** One admin session for one restore step, closed afterwards. */
async function inAdminSession(
  connect: Connect,
  options: { host: Host; stateDirectory: string; log: Logger },
  postgresql: HostSpec['postgresql'] | undefined,
  work: Parameters<typeof withSession>[3],
): Promise<void> {
  const ctx = adminContext(options, postgresql);
  try {
    await withSession(connect, ctx, ADMIN_DATABASE, work);
  } finally {
    await ctx.run.close();
  }
}

/** A context that reaches the server as the Host manifest's admin connection does, for one restore step. */
function adminContext(options: { host: Host; stateDirectory: string; log: Logger }, postgresql: HostSpec['postgresql'] | undefined): DriverContext {
  const { host } = options;
  return {
    run: createRunServices({ host, stateDirectory: options.stateDirectory, log: options.log }),
    host,
    hostManifest: {
      apiVersion: 'hostkit.dev/v1',
      kind: 'Host',
      metadata: { name: host.name },
      spec: { ...(postgresql ? { postgresql } : {}) },
    },
    stateDirectory: options.stateDirectory,
    mode: 'apply',
    log: options.log,
    fileDigests: new Map(),
    digestKey: randomBytes(32), // nothing is rendered: a role's settings only
    inventory: { version: 1, host: host.name, resources: {} },
    written: new Map(),
    warnings: [],
    // The admin password, if the Host manifest names one, comes from the same place an apply reads it.
    secrets: new SecretResolver({ host, redactor: new Redactor() }),
  };
}

type DatabaseStep =
  | { action: 'dropped-database'; resource: string; database: string; withData?: true }
  | { action: 'drop-database'; resource: string; database: string; postgresql?: HostSpec['postgresql'] }
  | { action: 'restore-owner'; resource: string; database: string; owner: string; postgresql?: HostSpec['postgresql'] };

interface DatabaseRecord {
  database: string;
  /** Its owner before the run changed it. */
  owner?: string;
  postgresql?: HostSpec['postgresql'];
}

/**
 * Databases: kept when created (they hold data), their owner put back when a run changed
 * it; extensions a run added stay (dropping one drops what depends on it). A drop cannot
 * be undone, and a restore says so as an error.
 */
export function databaseRestore(
  connect: Connect,
): Restore<Change<unknown, { exists?: boolean; owner?: string }, { database: string }, DatabaseOp>, DatabaseRecord, DatabaseStep> {
  return {
    keeps: 'databases are kept (they hold data)',
    async backup(change, journal, ctx) {
      if (!change.resource) return;
      const database = change.resource.spec.database;
      if (hasOp(change, 'create')) {
        const postgresql = ctx.hostManifest.spec?.postgresql;
        await journal.backupState('created', { database, ...(postgresql ? { postgresql } : {}) });
      }
      if (hasOp(change, 'drop')) await journal.backupState('dropped', { database });
      const owner = change.observed?.exists ? change.observed.owner : undefined;
      if (owner && hasOp(change, 'set-owner')) {
        const postgresql = ctx.hostManifest.spec?.postgresql;
        await journal.backupState('owner', { database, owner, ...(postgresql ? { postgresql } : {}) });
      }
    },
    async plan(change) {
      const steps: DatabaseStep[] = [];
      const database = (change.planned?.entry?.spec as Partial<DatabaseSpec> | undefined)?.database;
      if (createdUnfinished(change) && database) {
        const postgresql = createdWith(change);
        return [{ action: 'drop-database', resource: change.id, database, ...(postgresql ? { postgresql } : {}) }];
      }
      for (const r of change.records) {
        if (r.key === 'dropped' && change.applied)
          steps.push({ action: 'dropped-database', resource: change.id, database: r.data.database, ...(change.withData ? { withData: true as const } : {}) });
        if (r.key === 'owner' && r.data.owner) steps.push({ action: 'restore-owner', resource: change.id, ...r.data, owner: r.data.owner });
      }
      return steps;
    },
    async apply(step, options) {
      if (step.action === 'dropped-database') {
        // `hostkit rollback --with-data`: the checkpoint the run took before the drop (with a Host spec.backup) brings it back.
        if (step.withData)
          return `database ${step.database} was dropped by this run: only the checkpoint taken before the drop brings it back (checkpoint/${step.database}, with a Host spec.backup)`;
        throw new HostKitError('PG_DROP_IRREVERSIBLE', `Database ${step.database} was dropped by this run (drop: true) and cannot be restored by a rollback`, {
          data: { database: step.database },
        });
      }
      if (step.action === 'drop-database') {
        return inAdminSession(connect, options, step.postgresql, async (s) => {
          const [server] = await s.query<{ version: number }>(VERSION_QUERY);
          await s.query(dropDatabase(step.database, { force: (server?.version ?? 0) >= 130000, ifExists: true }));
        });
      }
      const ctx = adminContext(options, step.postgresql);
      try {
        await withSession(connect, ctx, ADMIN_DATABASE, async (s) => {
          const [now] = await s.query<{ owner: string }>(OWNER_QUERY, [step.database]);
          if (!now) throw new Error(`database ${step.database} no longer exists; its owner cannot be put back`);
          if (now.owner === step.owner) return;
          await options.record?.backupState('owner', {
            database: step.database,
            owner: now.owner,
            ...(step.postgresql ? { postgresql: step.postgresql } : {}),
          });
          await s.query(alterDatabaseOwner(step.database, step.owner));
        });
      } finally {
        await ctx.run.close();
      }
    },
    describe: (step) =>
      step.action === 'drop-database'
        ? `  drop database ${step.database} (created by this run, which never completed)`
        : step.action === 'dropped-database'
          ? `  cannot restore database ${step.database}: this run dropped it (drop: true)`
          : `  give database ${step.database} back to its owner ${step.owner} (one ALTER DATABASE)`,
  };
}
