// The statements HostKit sends to PostgreSQL, built in one place. DDL takes no
// bind parameters, so every name goes through escapeIdentifier and every value
// through escapeLiteral (or is an integer checked as such), the node-postgres
// client's own rules, restated here so planning does not load the client
// (sql.spec.ts checks them against it):
// no manifest text is ever interpolated raw. A password is only ever given to
// the server as a verifier (scram.ts), and statements that carry one have a
// display form without it for logs and errors.
import { HostKitError } from '../../core/errors.js';
import { REDACTED } from '../../core/secrets.js';

export interface Statement {
  text: string;
  /** What logs and error messages show: the text, or the text with its secret part redacted. */
  display: string;
}

/** pg.escapeIdentifier: double quotes around, inner double quotes doubled. */
export function escapeIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** pg.escapeLiteral: single quotes around, quotes and backslashes doubled, an E prefix when there were backslashes. */
export function escapeLiteral(value: string): string {
  const quoted = `'${value.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`;
  return value.includes('\\') ? ` E${quoted}` : quoted;
}

const ident = escapeIdentifier;
const literal = escapeLiteral;

function statement(text: string, display = text): Statement {
  return { text, display };
}

function integer(value: number, what: string): string {
  if (!Number.isSafeInteger(value)) throw new HostKitError('PG_INVALID_VALUE', `Expected an integer for ${what}, got ${value}`);
  return String(value);
}

// The guard that keeps plain text passwords from ever reaching the server: only
// a SCRAM verifier, an md5 hash (restoring one on rollback) or NULL passes.
function passwordClause(password: string | null): { text: string; display: string } {
  if (password === null) return { text: ' PASSWORD NULL', display: ' PASSWORD NULL' };
  if (!/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(password) && !/^md5[0-9a-f]{32}$/.test(password)) {
    throw new HostKitError('PG_PLAINTEXT_PASSWORD', 'Refusing to send a password that is not a SCRAM-SHA-256 verifier or md5 hash to PostgreSQL');
  }
  return { text: ` PASSWORD ${literal(password)}`, display: ` PASSWORD ${REDACTED}` };
}

export interface RoleAttributes {
  login?: boolean;
  connectionLimit?: number;
  /** A verifier (or md5 hash) to store, null to remove the password, undefined to leave it. */
  password?: string | null;
}

function roleOptions(a: RoleAttributes): { text: string; display: string } {
  let options = '';
  if (a.login !== undefined) options += a.login ? ' LOGIN' : ' NOLOGIN';
  if (a.connectionLimit !== undefined) options += ` CONNECTION LIMIT ${integer(a.connectionLimit, 'the connection limit')}`;
  const password = a.password === undefined ? { text: '', display: '' } : passwordClause(a.password);
  return { text: options + password.text, display: options + password.display };
}

export function createRole(role: string, a: RoleAttributes): Statement {
  const o = roleOptions(a);
  return statement(`CREATE ROLE ${ident(role)} WITH${o.text}`, `CREATE ROLE ${ident(role)} WITH${o.display}`);
}

/** One ALTER ROLE for every attribute that changes (a rotated password is exactly one statement). */
export function alterRole(role: string, a: RoleAttributes): Statement {
  const o = roleOptions(a);
  if (o.text === '') throw new HostKitError('PG_EMPTY_ALTER', `Nothing to change on role ${role}`);
  return statement(`ALTER ROLE ${ident(role)} WITH${o.text}`, `ALTER ROLE ${ident(role)} WITH${o.display}`);
}

export function dropRole(role: string): Statement {
  return statement(`DROP ROLE ${ident(role)}`);
}

export interface DatabaseOptions {
  owner: string;
  encoding: string;
  /** LC_COLLATE and LC_CTYPE; the cluster's default when undefined. */
  locale?: string;
}

// From template0: a new database gets exactly the encoding and locale asked for,
// whatever was added to template1.
export function createDatabase(database: string, o: DatabaseOptions): Statement {
  const locale = o.locale === undefined ? '' : ` LOCALE ${literal(o.locale)}`;
  return statement(`CREATE DATABASE ${ident(database)} WITH OWNER ${ident(o.owner)} TEMPLATE template0 ENCODING ${literal(o.encoding)}${locale}`);
}

export function alterDatabaseOwner(database: string, owner: string): Statement {
  return statement(`ALTER DATABASE ${ident(database)} OWNER TO ${ident(owner)}`);
}

/** FORCE (PostgreSQL 13 and later) ends other sessions; used only to undo a database this run created. */
export function dropDatabase(database: string, o: { force: boolean; ifExists?: boolean }): Statement {
  return statement(`DROP DATABASE ${o.ifExists ? 'IF EXISTS ' : ''}${ident(database)}${o.force ? ' WITH (FORCE)' : ''}`);
}

export function createExtension(name: string): Statement {
  return statement(`CREATE EXTENSION IF NOT EXISTS ${ident(name)}`);
}

export function dropExtension(name: string): Statement {
  return statement(`DROP EXTENSION IF EXISTS ${ident(name)}`);
}

export const BEGIN = statement('BEGIN');
export const COMMIT = statement('COMMIT');
export const ROLLBACK = statement('ROLLBACK');

// Read-only queries: values are bind parameters here, never text.

/**
 * Roles, databases and installable extensions in one round trip (pg_authid holds
 * the password verifiers, so the admin role must be a superuser).
 * $1 role names, $2 database names, $3 extension names.
 */
export const CATALOG_QUERY = statement(`SELECT current_setting('server_version_num')::int AS version,
  (SELECT coalesce(json_agg(json_build_object('name', a.rolname, 'login', a.rolcanlogin, 'connectionLimit', a.rolconnlimit, 'password', a.rolpassword)), '[]')
     FROM pg_catalog.pg_authid a WHERE a.rolname = ANY($1::text[])) AS roles,
  (SELECT coalesce(json_agg(json_build_object('name', d.datname, 'owner', pg_catalog.pg_get_userbyid(d.datdba),
       'encoding', pg_catalog.pg_encoding_to_char(d.encoding), 'collate', d.datcollate, 'ctype', d.datctype)), '[]')
     FROM pg_catalog.pg_database d WHERE d.datname = ANY($2::text[])) AS databases,
  (SELECT coalesce(json_agg(e.name), '[]') FROM pg_catalog.pg_available_extensions e WHERE e.name = ANY($3::text[])) AS available`);

/** The extensions installed in the database the session is connected to. */
export const VERSION_QUERY = statement(`SELECT current_setting('server_version_num')::int AS version`);

export const EXTENSIONS_QUERY = statement('SELECT extname AS name FROM pg_catalog.pg_extension ORDER BY extname');

/** One role's settings, read inside the transaction that changes it, for rollback. $1 role name. */
export const ROLE_QUERY = statement(
  'SELECT rolcanlogin AS login, rolconnlimit AS "connectionLimit", rolpassword AS password FROM pg_catalog.pg_authid WHERE rolname = $1',
);

/** One database's owner, read inside the transaction that changes it, for rollback. $1 database name. */
export const OWNER_QUERY = statement('SELECT pg_catalog.pg_get_userbyid(datdba) AS owner FROM pg_catalog.pg_database WHERE datname = $1');
