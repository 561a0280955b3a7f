import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Redactor, SecretResolver } from '../core/secrets.js';
import { ADMIN_DATABASE, connectAdmin, withSession } from '../drivers/postgresql/connection.js';
import { createRunServices } from '../drivers/run.js';
import type { RoleSettings } from '../drivers/postgresql/role.js';
import { alterRole, ROLE_QUERY } from '../drivers/postgresql/sql.js';
import type { DriverContext } from '../drivers/types.js';
import type { Host } from '../hosts/types.js';
import type { HostSpec } from '../manifests/types.js';
import type { RunJournal } from './journal.js';

// A role's settings, put back by a restore. Loaded only when a run being restored
// changed one (it brings in the PostgreSQL client).

/**
 * Set `role`'s login, connection limit and stored password (a verifier, or none)
 * back to `settings`: one ALTER ROLE, as the admin connection of the Host manifest
 * reaches the server. `record` (the run doing the restore) first backs up what it replaces.
 */
export async function restoreRoleSettings(options: {
  host: Host;
  stateDirectory: string;
  log: Logger;
  role: string;
  settings: RoleSettings;
  postgresql: HostSpec['postgresql'];
  resource: string;
  record?: RunJournal;
}): Promise<void> {
  const { host, role, settings } = options;
  const ctx: DriverContext = {
    run: createRunServices({ host, stateDirectory: options.stateDirectory, log: options.log }),
    host,
    hostManifest: {
      apiVersion: 'hostkit.dev/v1',
      kind: 'Host',
      metadata: { name: host.name },
      spec: { ...(options.postgresql ? { postgresql: options.postgresql } : {}) },
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
  try {
    await withSession(connectAdmin, ctx, ADMIN_DATABASE, async (s) => {
      const [now] = await s.query<RoleSettings>(ROLE_QUERY, [role]);
      if (!now) throw new Error(`role ${role} no longer exists; its settings cannot be put back`);
      if (now.login === settings.login && now.connectionLimit === settings.connectionLimit && now.password === settings.password) return;
      await options.record?.backupText(
        options.resource,
        { type: 'pgrole', role, ...(options.postgresql ? { postgresql: options.postgresql } : {}) },
        JSON.stringify({ login: now.login, connectionLimit: now.connectionLimit, password: now.password } satisfies RoleSettings),
      );
      await s.query(alterRole(role, settings));
    });
  } finally {
    await ctx.run.close();
  }
}
