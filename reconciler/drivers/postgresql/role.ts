import { planLifecycle } from './lifecycle.js';
import { inInventory, isProjectLevel, notOwnRefusal } from '../shared/owned.js';
import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import { REDACTED } from '../../core/secrets.js';
import type { PgRoleSpec } from '../../core/specs.js';
import { changeBase, findOp, hasOp, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import type { Driver, DriverContext } from '../types.js';
import { ADMIN_DATABASE, DEFAULT_ADMIN_USER, inTransaction, withSession, type Connect } from './connection.js';
import { catalogAfterChanges, loadCatalog, noteChanging, serverAbsent, type Catalog } from './observe.js';
import { makeVerifier, storedPasswordKind, verifierMatches } from './scram.js';
import { alterRole, createRole, dropRole, ROLE_QUERY, type RoleAttributes } from './sql.js';
import { pgRoleDefinition } from './definition.js';
import { roleRestore } from './restore.js';

/** The role spec, with the explicit drop opt-in (proposed manifest field `drop: true`). */
export type RoleSpec = PgRoleSpec & { drop?: boolean };

export interface DesiredRole {
  role: string;
  /** Drop the role (explicit opt-in); nothing else below applies then. */
  drop: boolean;
  login: boolean;
  connectionLimit: number;
  /** When the manifest manages the password and its secret could be read. In memory only, never shown. */
  password?: { value: string; fingerprint: string };
}

export interface RoleSettings {
  login: boolean;
  connectionLimit: number;
  /** pg_authid.rolpassword: a verifier or null. Compared and restored, never shown. */
  password: string | null;
}

export type ObservedRole =
  | ({
      exists: true;
      /** HostKit created it: its inventory lists the role for the same project (shared/owned.ts). */
      hostkit?: boolean;
    } & RoleSettings)
  | { exists: false; unreachable: string };

export interface RoleUndo {
  created?: boolean;
  /** Settings before an update (read in the same transaction as the change), restored exactly. */
  previous?: RoleSettings;
  /** Settings of a role this run dropped, to create it again. */
  dropped?: RoleSettings;
}

/**
 * What apply does to a role: CREATE ROLE, or one ALTER ROLE for the attributes and the
 * password that differ, or DROP ROLE. `set-password` says that a password is set (with the
 * role's creation, or by the ALTER), never what it is: the verifier is made in apply.
 */
export type RoleOp = { op: 'create' } | { op: 'alter-attributes'; attributes: ('login' | 'connectionLimit')[] } | { op: 'set-password' } | { op: 'drop' };

const ORPHAN_REASON = 'no manifest declares it any more; kept (declare it with drop: true to drop it)';
const UNKNOWN_CREATE_REASON = 'PostgreSQL not reachable: planned as if the role did not exist';

export function planRole({
  resource,
  desired,
  observed,
  orphan,
}: {
  resource: Resource<RoleSpec>;
  desired: DesiredRole | undefined;
  observed: ObservedRole | undefined;
  orphan: boolean;
}): Change<DesiredRole, ObservedRole, RoleSpec, RoleOp> {
  const base = { ...changeBase(resource), disruptive: false };
  const unreachable = observed && !observed.exists ? observed.unreachable : undefined;
  const exists = observed?.exists === true;
  if (desired && !orphan && observed?.exists && observed.hostkit === false && isProjectLevel(resource)) {
    // A role HostKit did not create: a project may neither set its password (and log in as it) nor drop it.
    const [rule, what] = desired.drop
      ? [
          'pg-drop-foreign',
          `role ${desired.role} exists and HostKit did not create it for this project; a project manifest may drop only what HostKit created for it`,
        ]
      : [
          'pg-role-adopt',
          `role ${desired.role} exists and HostKit did not create it for this project; a project manifest may not adopt it or set its password`,
        ];
    return refusedChange(base, notOwnRefusal(rule, what, resource.origin), desired, observed);
  }
  const decided = planLifecycle({
    resource,
    desired,
    observed,
    orphan,
    exists,
    unreachable,
    orphanReason: ORPHAN_REASON,
    dropReason: 'drop: true in its manifest',
    irreversibleDrop: false,
  });
  if (decided.change) return decided.change;
  const unknown = decided.diagnostics;
  if (!desired) throw new Error('unreachable: planLifecycle decides when nothing is desired');
  const fields: FieldChange[] = [];
  const password = desired.password ? `${REDACTED} ${desired.password.fingerprint}` : undefined;
  if (!exists) {
    fields.push({ field: '/login', after: desired.login }, { field: '/connectionLimit', after: desired.connectionLimit });
    if (password) fields.push({ field: '/password', after: password, redacted: true });
    return {
      ...base,
      action: 'create',
      fields,
      ops: [{ op: 'create' }, ...(desired.password ? [{ op: 'set-password' as const }] : [])],
      desired,
      diagnostics: unknown,
      ...(unreachable ? { reason: UNKNOWN_CREATE_REASON } : {}),
    };
  }
  const attributes: ('login' | 'connectionLimit')[] = [];
  if (observed.login !== desired.login) {
    fields.push({ field: '/login', before: observed.login, after: desired.login });
    attributes.push('login');
  }
  if (observed.connectionLimit !== desired.connectionLimit) {
    fields.push({ field: '/connectionLimit', before: observed.connectionLimit, after: desired.connectionLimit });
    attributes.push('connectionLimit');
  }
  const ops: RoleOp[] = attributes.length > 0 ? [{ op: 'alter-attributes', attributes }] : [];
  if (desired.password && !verifierMatches(desired.password.value, observed.password)) {
    fields.push({ field: '/password', before: describeStored(observed.password), after: password, redacted: true });
    ops.push({ op: 'set-password' });
  }
  return { ...base, action: fields.length > 0 ? 'update' : 'noop', fields, ops, desired, observed };
}

// The stored password, described without a value or verifier.
function describeStored(rolpassword: string | null): string {
  switch (storedPasswordKind(rolpassword)) {
    case 'none':
      return 'not set';
    case 'md5':
      return `${REDACTED} md5 hash, not SCRAM-SHA-256`;
    case 'unknown':
      return `${REDACTED} unrecognized format`;
    default:
      return `${REDACTED} a different password`;
  }
}

/**
 * PostgreSQL login roles (kind pgrole): LOGIN, CONNECTION LIMIT and a password
 * from a secret reference, set as a client-computed SCRAM-SHA-256 verifier and
 * compared with the stored one, never set again while it matches. A role whose
 * manifest is gone is reported, never dropped; `drop: true` drops it.
 */
export function makeRoleDriver(connect: Connect): Driver<RoleSpec, DesiredRole, ObservedRole, RoleUndo, 'pgrole', void, RoleOp> {
  async function observeRoles(
    resources: readonly Resource<RoleSpec>[],
    ctx: DriverContext,
    load: (request: { roles: string[] }) => Promise<Catalog> = (request) => loadCatalog(connect, ctx, request),
  ): Promise<Map<string, ObservedRole>> {
    const out = new Map<string, ObservedRole>();
    let catalog;
    try {
      catalog = await load({ roles: resources.map((r) => r.spec.role) });
    } catch (cause) {
      // A dry run where PostgreSQL cannot be reached (e.g. a laptop) still shows the rest of the plan; so does a run that installs it.
      if (ctx.mode !== 'plan' && !(await serverAbsent(ctx))) throw cause;
      for (const r of resources) out.set(r.id, { exists: false, unreachable: errorMessage(cause) });
      return out;
    }
    for (const r of resources) {
      const row = catalog.roles.get(r.spec.role);
      if (row)
        out.set(r.id, { exists: true, login: row.login, connectionLimit: row.connectionLimit, password: row.password, hostkit: inInventory(ctx.inventory, r) });
    }
    return out;
  }

  return {
    ...pgRoleDefinition,

    async desire(resources, ctx) {
      const admin = ctx.hostManifest.spec?.postgresql?.user ?? DEFAULT_ADMIN_USER;
      const out = new Map<string, { desired: DesiredRole; diagnostics: Diagnostic[] }>();
      await Promise.all(
        resources.map(async (r) => {
          const diagnostics: Diagnostic[] = [];
          const drop = r.spec.drop === true;
          if (r.spec.role === admin) {
            diagnostics.push(error('admin role declared', `${r.id}: ${admin} is the role HostKit administers PostgreSQL with; it cannot be managed`, r.origin));
          }
          let password: DesiredRole['password'];
          if (r.spec.password && !drop) {
            const secret = await ctx.secrets.resolve(r.spec.password);
            if (!secret.ok) {
              // A dry run can still show the rest of the plan; an apply must not create a role without its password.
              const make = ctx.mode === 'plan' ? warning : error;
              diagnostics.push(make('secret unavailable', `${r.id}: the password comes from a secret that cannot be read: ${secret.reason}`, r.origin));
            } else if (secret.value === '' || secret.value.includes('\0')) {
              diagnostics.push(error('invalid secret value', `${r.id}: the password secret is empty or contains NUL, which PostgreSQL cannot hold`, r.origin));
            } else {
              password = { value: secret.value, fingerprint: ctx.secrets.fingerprint(secret.value) };
            }
          }
          const desired: DesiredRole = { role: r.spec.role, drop, login: true, connectionLimit: r.spec.connectionLimit, ...(password ? { password } : {}) };
          out.set(r.id, { desired, diagnostics });
        }),
      );
      return out;
    },

    observe: (resources, ctx) => observeRoles(resources, ctx),
    plan: planRole,

    // One statement or one transaction per role. If it throws, PostgreSQL has
    // rolled the statement back: the role is as it was before.
    async apply(change, ctx) {
      const role = change.resource!.spec.role;
      noteChanging(ctx, { roles: [role] });
      const desired = change.desired!;
      return withSession(connect, ctx, ADMIN_DATABASE, async (s) => {
        if (hasOp(change, 'create')) {
          await s.query(
            createRole(role, {
              login: desired.login,
              connectionLimit: desired.connectionLimit,
              ...(hasOp(change, 'set-password') && desired.password ? { password: makeVerifier(desired.password.value) } : {}),
            }),
          );
          return { created: true };
        }
        return inTransaction(s, async () => {
          const [before] = await s.query<RoleSettings>(ROLE_QUERY, [role]);
          if (!before) throw new HostKitError('PG_ROLE_GONE', `Role ${role} no longer exists; plan again`, { data: { role } });
          if (hasOp(change, 'drop')) {
            await s.query(dropRole(role));
            return { dropped: before };
          }
          const attributes: RoleAttributes = {};
          for (const name of findOp(change, 'alter-attributes')?.attributes ?? []) {
            if (name === 'login') attributes.login = desired.login;
            else attributes.connectionLimit = desired.connectionLimit;
          }
          if (hasOp(change, 'set-password') && desired.password) attributes.password = makeVerifier(desired.password.value);
          await s.query(alterRole(role, attributes));
          return { previous: before };
        });
      });
    },

    async verify(change, ctx) {
      const resource = change.resource!;
      const observed = (await observeRoles([resource], ctx, (request) => catalogAfterChanges(connect, ctx, request))).get(change.id);
      if (observed?.exists) observed.hostkit = true; // this run created or changed it: its inventory entry comes after verify
      if (hasOp(change, 'drop')) {
        return observed?.exists ? [error('verification failed', `role ${resource.spec.role} still exists after DROP ROLE`, change.origin)] : [];
      }
      const again = planRole({ resource, desired: change.desired, observed, orphan: false });
      if (again.action === 'noop') return [];
      const fields = again.fields.map((f) => f.field.slice(1)).join(', ');
      return [error('verification failed', `role ${resource.spec.role} is not as applied (${fields || again.action})`, change.origin)];
    },

    // Its settings, or the role it dropped, come back from the run journal; a role it created is kept (restore.ts).
    restore: roleRestore(connect),
  };
}
