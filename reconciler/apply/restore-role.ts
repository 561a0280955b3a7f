import type { Logger } from 'pino';
import { Redactor, SecretResolver } from '../core/secrets.js';
import { ADMIN_DATABASE, connectAdmin, withSession } from '../drivers/postgresql/connection.js';
import { alterRole, ROLE_QUERY } from '../drivers/postgresql/sql.js';
import type { DriverContext } from '../drivers/types.js';
import type { Host } from '../hosts/types.js';
import type { HostSpec } from '../manifests/types.js';
import type { RunJournal } from './journal.js';

// A role's stored password, put back by a restore. Loaded only when a run being
// restored changed one (it brings in the PostgreSQL client).

/**
 * Set `role`'s stored password back to `password` (a verifier, or none): one ALTER
 * ROLE, as the admin connection of the Host manifest reaches the server. `record`
 * (the run doing the restore) first backs up the password it replaces.
 */
export async function restoreRolePassword(options: {
  host: Host;
  stateDirectory: string;
  log: Logger;
  role: string;
  password: string | null;
  postgresql: HostSpec['postgresql'];
  resource: string;
  record?: RunJournal;
}): Promise<void> {
  const { host, role } = options;
  const ctx: DriverContext = {
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
    warnings: [],
    // The admin password, if the Host manifest names one, comes from the same place an apply reads it.
    secrets: new SecretResolver({ host, redactor: new Redactor() }),
  };
  await withSession(connectAdmin, ctx, ADMIN_DATABASE, async (s) => {
    const [now] = await s.query<{ password: string | null }>(ROLE_QUERY, [role]);
    if (!now) throw new Error(`role ${role} no longer exists; its password cannot be put back`);
    if (now.password === options.password) return;
    await options.record?.backupText(
      options.resource,
      { type: 'pgrole-password', role, ...(options.postgresql ? { postgresql: options.postgresql } : {}) },
      JSON.stringify({ password: now.password }),
    );
    await s.query(alterRole(role, { password: options.password }));
  });
}
