import { inInventory, isProjectLevel, notOwnRefusal } from '../shared/owned.js';
import { planLifecycle } from './lifecycle.js';
import { error, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import type { PgDatabaseSpec } from '../../core/specs.js';
import { changeBase, findOp, hasOp, refusedChange, type Change, type FieldChange } from '../../diff/model.js';
import type { Driver, DriverContext } from '../types.js';
import { ADMIN_DATABASE, inTransaction, withSession, type Connect } from './connection.js';
import { catalogAfterChanges, loadCatalog, loadExtensions, noteChanging, serverAbsent, type Catalog, type CatalogRequest } from './observe.js';
import { alterDatabaseOwner, createDatabase, createExtension, dropDatabase, EXTENSIONS_QUERY, OWNER_QUERY } from './sql.js';
import { pgDatabaseDefinition } from './definition.js';
import { databaseRestore } from './restore.js';

/**
 * The database spec, with what the manifests do not carry yet (proposed fields):
 * the explicit drop opt-in, and encoding and locale fixed at creation.
 */
export type DatabaseSpec = PgDatabaseSpec & { drop?: boolean; encoding?: string; locale?: string };

export const DEFAULT_ENCODING = 'UTF8';

export interface DesiredDatabase {
  database: string;
  owner: string;
  /** Sorted, without duplicates. Extensions installed but not declared are left alone. */
  extensions: string[];
  encoding: string;
  /** LC_COLLATE and LC_CTYPE; undefined: the cluster's default at creation, not checked afterwards. */
  locale?: string;
  /** Drop the database and all its data (explicit opt-in). */
  drop: boolean;
}

interface ServerFacts {
  /** server_version_num, e.g. 150020. */
  version: number;
  /** Of the declared extensions, those this server can install. */
  available: string[];
}

export type ObservedDatabase =
  | ({
      exists: true;
      owner: string;
      encoding: string;
      collate: string;
      ctype: string;
      extensions: string[];
      /** HostKit created it: its inventory lists the database for the same project (shared/owned.ts). */
      hostkit?: boolean;
    } & ServerFacts)
  | ({ exists: false } & ServerFacts)
  | { exists: false; unreachable: string };

/**
 * What apply does to a database: CREATE DATABASE (a step of its own), ALTER DATABASE ...
 * OWNER, CREATE EXTENSION for the extensions it lacks (one transaction in it), or DROP DATABASE.
 */
export type DatabaseOp = { op: 'create' } | { op: 'set-owner' } | { op: 'create-extensions'; extensions: string[] } | { op: 'drop' };

export interface DatabaseUndo {
  /** This run created the database; rollback drops it (FORCE on PostgreSQL 13 and later). */
  created?: { force: boolean };
  /** The owner before an update changed it. */
  previousOwner?: string;
  /** Extensions this run created in an existing database. */
  createdExtensions?: string[];
  dropped?: boolean;
  /** Other databases this step created ahead of their own steps (see createAhead); rollback drops those still there. */
  batch?: string[];
}

// What one run wants and saw, so the first database it creates can start all of them.
export interface DatabaseRun {
  desired: Map<string, DesiredDatabase>;
  observed: Map<string, ObservedDatabase | undefined>;
  /** Per database created ahead: whether CREATE DATABASE succeeded. */
  ahead?: Promise<Map<string, Promise<boolean>>>;
}

/** CREATE DATABASE statements in flight at once: each is mostly I/O (the template's pages written to WAL). */
const CREATE_LANES = 3;

const ORPHAN_REASON = 'no manifest declares it any more; kept with its data (declare it with drop: true to drop it)';
const UNKNOWN_CREATE_REASON = 'PostgreSQL not reachable: planned as if the database did not exist';

// Encoding and locale names as PostgreSQL and libc compare them: case, "-" and "_" do not count ("UTF-8" is "utf8").
function sameName(a: string, b: string): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  return norm(a) === norm(b);
}

export function planDatabase({
  resource,
  desired,
  observed,
  orphan,
}: {
  resource: Resource<DatabaseSpec>;
  desired: DesiredDatabase | undefined;
  observed: ObservedDatabase | undefined;
  orphan: boolean;
}): Change<DesiredDatabase, ObservedDatabase, DatabaseSpec, DatabaseOp> {
  const base = { ...changeBase(resource), disruptive: false };
  const unreachable = observed && 'unreachable' in observed ? observed.unreachable : undefined;
  const exists = observed?.exists === true;
  if (desired?.drop && !orphan && observed?.exists && observed.hostkit === false && isProjectLevel(resource)) {
    const what = `database ${desired.database} exists and HostKit did not create it for this project; a project manifest may drop only what HostKit created for it`;
    return refusedChange(base, notOwnRefusal('pg-drop-foreign', what, resource.fieldOrigins?.['drop'] ?? resource.origin), desired, observed);
  }
  const decided = planLifecycle({
    resource,
    desired,
    observed,
    orphan,
    exists,
    unreachable,
    orphanReason: ORPHAN_REASON,
    dropReason: 'drop: true in its manifest: the database and all its data are dropped',
    irreversibleDrop: true,
  });
  if (decided.change) return decided.change;
  const diagnostics = decided.diagnostics;
  if (!desired) throw new Error('unreachable: planLifecycle decides when nothing is desired');

  const installed = observed?.exists ? observed.extensions : [];
  const missing = desired.extensions.filter((e) => !installed.includes(e));
  if (observed && !unreachable) {
    const facts = observed as ServerFacts;
    for (const e of missing.filter((m) => !facts.available.includes(m))) {
      diagnostics.push(
        error(
          'extension not available',
          `${resource.id}: extension ${e} is not available on this PostgreSQL ${Math.floor(facts.version / 10000)} server; install the package that provides it` +
            (e === 'vector' ? ` (postgresql-${Math.floor(facts.version / 10000)}-pgvector on Debian)` : ''),
          resource.fieldOrigins?.extensions ?? resource.origin,
        ),
      );
    }
  }

  const fields: FieldChange[] = [];
  if (!observed?.exists) {
    fields.push({ field: '/owner', after: desired.owner }, { field: '/encoding', after: desired.encoding });
    if (desired.locale !== undefined) fields.push({ field: '/locale', after: desired.locale });
    if (desired.extensions.length > 0) fields.push({ field: '/extensions', after: desired.extensions });
    const ops: DatabaseOp[] = [
      { op: 'create' },
      ...(desired.extensions.length > 0 ? [{ op: 'create-extensions' as const, extensions: desired.extensions }] : []),
    ];
    return { ...base, action: 'create', fields, ops, desired, diagnostics, ...(unreachable ? { reason: UNKNOWN_CREATE_REASON } : { observed }) };
  }

  // Encoding and locale are fixed when a database is created; changing them
  // means dump, recreate and restore, which HostKit never does on its own.
  if (!sameName(observed.encoding, desired.encoding)) {
    diagnostics.push(
      error(
        'database encoding differs',
        `${resource.id}: the database was created with encoding ${observed.encoding}, the manifest asks for ${desired.encoding}; ` +
          'an encoding cannot be changed in place and HostKit does not recreate databases: dump, recreate and restore it by hand, or declare its encoding',
        resource.fieldOrigins?.encoding ?? resource.origin,
      ),
    );
  }
  if (desired.locale !== undefined && (!sameName(observed.collate, desired.locale) || !sameName(observed.ctype, desired.locale))) {
    diagnostics.push(
      error(
        'database locale differs',
        `${resource.id}: the database was created with LC_COLLATE ${observed.collate} and LC_CTYPE ${observed.ctype}, the manifest asks for ${desired.locale}; ` +
          'a locale cannot be changed in place and HostKit does not recreate databases: dump, recreate and restore it by hand, or declare its locale',
        resource.fieldOrigins?.locale ?? resource.origin,
      ),
    );
  }
  const ops: DatabaseOp[] = [];
  if (observed.owner !== desired.owner) {
    fields.push({ field: '/owner', before: observed.owner, after: desired.owner });
    ops.push({ op: 'set-owner' });
  }
  if (missing.length > 0) {
    fields.push({ field: '/extensions', before: desired.extensions.filter((e) => installed.includes(e)), after: desired.extensions });
    ops.push({ op: 'create-extensions', extensions: missing });
  }
  return { ...base, action: fields.length > 0 ? 'update' : 'noop', fields, ops, desired, observed, diagnostics };
}

/**
 * PostgreSQL databases (kind pgdatabase): owner, encoding and locale fixed at
 * creation, and extensions. A database whose manifest is gone is reported and
 * kept with its data; `drop: true` drops it.
 */
export function makeDatabaseDriver(
  connect: Connect,
): Driver<DatabaseSpec, DesiredDatabase, ObservedDatabase, DatabaseUndo, 'pgdatabase', DatabaseRun, DatabaseOp> {
  // One catalog query shared with the role driver, then one query per existing
  // database that declares extensions (each database has its own pg_extension).
  async function observeDatabases(
    resources: readonly Resource<DatabaseSpec>[],
    ctx: DriverContext,
    load: (request: CatalogRequest) => Promise<Catalog> = (request) => loadCatalog(connect, ctx, request),
  ): Promise<Map<string, ObservedDatabase>> {
    const out = new Map<string, ObservedDatabase>();
    const unknown = async (cause: unknown) => {
      // A dry run where PostgreSQL cannot be reached (e.g. a laptop) still shows the rest of the plan; so does a run that installs it.
      if (ctx.mode !== 'plan' && !(await serverAbsent(ctx))) throw cause;
      for (const r of resources) out.set(r.id, { exists: false, unreachable: errorMessage(cause) });
      return out;
    };
    let catalog;
    let installed;
    try {
      catalog = await load({
        databases: resources.map((r) => r.spec.database),
        extensions: [...new Set(resources.flatMap((r) => r.spec.extensions))],
      });
      const withExtensions = resources.filter((r) => !r.spec.drop && r.spec.extensions.length > 0 && catalog!.databases.has(r.spec.database));
      installed = await loadExtensions(connect, ctx, [...new Set(withExtensions.map((r) => r.spec.database))]);
    } catch (cause) {
      return unknown(cause);
    }
    for (const r of resources) {
      const facts = { version: catalog.version, available: r.spec.extensions.filter((e) => catalog.available.has(e)) };
      const row = catalog.databases.get(r.spec.database);
      out.set(
        r.id,
        row
          ? {
              exists: true,
              owner: row.owner,
              encoding: row.encoding,
              collate: row.collate,
              ctype: row.ctype,
              extensions: installed.get(r.spec.database) ?? [],
              hostkit: inInventory(ctx.inventory, r),
              ...facts,
            }
          : { exists: false, ...facts },
      );
    }
    return out;
  }

  /**
   * The first database a run creates starts CREATE DATABASE for every plain new
   * database of the run (no extensions, owner already there), a few at a time on
   * separate connections: one database costs ~100 ms of server I/O, and they do
   * not wait on each other. Each step then only collects its own result.
   */
  async function createAhead(ctx: DriverContext, state: DatabaseRun): Promise<Map<string, Promise<boolean>>> {
    const candidates = [...state.desired.values()].filter((d) => {
      const o = state.observed.get(d.database);
      return state.observed.has(d.database) && !d.drop && d.extensions.length === 0 && o !== undefined && !o.exists && !('unreachable' in o);
    });
    const results = new Map<string, Promise<boolean>>();
    if (candidates.length < 2) return results;
    const catalog = await loadCatalog(connect, ctx, { roles: candidates.map((d) => d.owner), databases: candidates.map((d) => d.database) });
    const ready = candidates.filter((d) => catalog.roles.has(d.owner) && !catalog.databases.has(d.database));
    noteChanging(ctx, { databases: ready.map((d) => d.database) });
    const lanes: Promise<unknown>[] = Array.from({ length: CREATE_LANES }, () => Promise.resolve());
    ready.forEach((d, i) => {
      const created = lanes[i % CREATE_LANES]!.then(() =>
        withSession(connect, ctx, ADMIN_DATABASE, (s) =>
          s.query(createDatabase(d.database, { owner: d.owner, encoding: d.encoding, ...(d.locale !== undefined ? { locale: d.locale } : {}) })),
        ).then(
          () => true,
          () => false, // its own step runs the statement again and reports PostgreSQL's error
        ),
      );
      lanes[i % CREATE_LANES] = created;
      results.set(d.database, created);
    });
    return results;
  }

  return {
    ...pgDatabaseDefinition,

    createRun: () => ({ desired: new Map(), observed: new Map() }),

    async desire(resources, _ctx, state) {
      return new Map(
        resources.map((r) => {
          const desired: DesiredDatabase = {
            database: r.spec.database,
            owner: r.spec.owner,
            extensions: [...new Set(r.spec.extensions)].sort(),
            encoding: r.spec.encoding ?? DEFAULT_ENCODING,
            ...(r.spec.locale !== undefined ? { locale: r.spec.locale } : {}),
            drop: r.spec.drop === true,
          };
          state.desired.set(desired.database, desired);
          return [r.id, { desired, diagnostics: [] as Diagnostic[] }];
        }),
      );
    },

    async observe(resources, ctx, state) {
      const observed = await observeDatabases(resources, ctx);
      if (!state.ahead) for (const r of resources) state.observed.set(r.spec.database, observed.get(r.id));
      return observed;
    },
    plan: planDatabase,

    // CREATE DATABASE and DROP DATABASE cannot run inside a transaction block:
    // each is a step of its own. Everything else of one database (owner,
    // extensions) is one transaction in that database. If apply throws, the
    // database is as it was: PostgreSQL rolled the transaction back, and a
    // database created by this call is dropped again before the error is thrown.
    async apply(change, ctx, state) {
      const database = change.resource!.spec.database;
      noteChanging(ctx, { databases: [database] });
      const desired = change.desired!;
      const version = change.observed && 'version' in change.observed ? change.observed.version : 0;
      if (hasOp(change, 'drop')) {
        await withSession(connect, ctx, ADMIN_DATABASE, (s) => s.query(dropDatabase(database, { force: false })));
        return { dropped: true };
      }
      const extensions = findOp(change, 'create-extensions')?.extensions ?? [];
      if (hasOp(change, 'create')) {
        const force = version >= 130000;
        if (extensions.length === 0) {
          const first = state.ahead === undefined;
          if (first) state.ahead = createAhead(ctx, state);
          const ahead = await state.ahead!.catch(() => new Map<string, Promise<boolean>>());
          const others = [...ahead.keys()].filter((d) => d !== database);
          if (await ahead.get(database)) return { created: { force }, ...(first && others.length > 0 ? { batch: others } : {}) };
          if (first && others.length > 0) {
            // This step failed where the others may not have: take theirs back before reporting it.
            await Promise.all(ahead.values());
            for (const d of others) {
              await withSession(connect, ctx, ADMIN_DATABASE, (s) => s.query(dropDatabase(d, { force, ifExists: true }))).catch((dropError: unknown) => {
                ctx.log.error({ database: d, error: errorMessage(dropError) }, 'could not drop a database this run created');
              });
            }
          }
        }
        await withSession(connect, ctx, ADMIN_DATABASE, (s) =>
          s.query(
            createDatabase(database, {
              owner: desired.owner,
              encoding: desired.encoding,
              ...(desired.locale !== undefined ? { locale: desired.locale } : {}),
            }),
          ),
        );
        if (extensions.length > 0) {
          try {
            await withSession(connect, ctx, database, (s) =>
              inTransaction(s, async () => {
                for (const e of extensions) await s.query(createExtension(e));
              }),
            );
          } catch (cause) {
            await withSession(connect, ctx, ADMIN_DATABASE, (s) => s.query(dropDatabase(database, { force }))).catch((dropError: unknown) => {
              ctx.log.error({ resource: change.id, error: errorMessage(dropError) }, 'could not drop the database this step created');
            });
            throw cause;
          }
        }
        return { created: { force } };
      }
      return withSession(connect, ctx, database, (s) =>
        inTransaction(s, async () => {
          const undo: DatabaseUndo = {};
          if (hasOp(change, 'set-owner')) {
            const [before] = await s.query<{ owner: string }>(OWNER_QUERY, [database]);
            if (!before) throw new HostKitError('PG_DATABASE_GONE', `Database ${database} no longer exists; plan again`, { data: { database } });
            await s.query(alterDatabaseOwner(database, desired.owner));
            undo.previousOwner = before.owner;
          }
          if (extensions.length > 0) {
            const present = new Set((await s.query<{ name: string }>(EXTENSIONS_QUERY)).map((r) => r.name));
            undo.createdExtensions = [];
            for (const e of extensions.filter((x) => !present.has(x))) {
              await s.query(createExtension(e));
              undo.createdExtensions.push(e);
            }
          }
          return undo;
        }),
      );
    },

    async verify(change, ctx) {
      const resource = change.resource!;
      const observed = (await observeDatabases([resource], ctx, (request) => catalogAfterChanges(connect, ctx, request))).get(change.id);
      if (hasOp(change, 'drop')) {
        return observed?.exists ? [error('verification failed', `database ${resource.spec.database} still exists after DROP DATABASE`, change.origin)] : [];
      }
      const again = planDatabase({ resource, desired: change.desired, observed, orphan: false });
      const problems = again.diagnostics.filter((d) => d.severity === 'error');
      if (again.action === 'noop' && problems.length === 0) return [];
      const fields = again.fields.map((f) => f.field.slice(1)).join(', ');
      return [
        error(
          'verification failed',
          `database ${resource.spec.database} is not as applied (${fields || problems.map((p) => p.summary).join(', ')})`,
          change.origin,
        ),
      ];
    },

    // A database it created is kept, its owner put back; one it dropped cannot come back (restore.ts).
    restore: databaseRestore(connect),
  };
}
