// HostKit's own admin access to a host's PostgreSQL (kind pgaccess, id
// pgaccess/local): HostKit runs as root and connects as postgres over the local
// socket, which the distribution's peer rule refuses. It adds a peer map
// `hostkit` (root -> postgres, postgres -> postgres) to pg_ident.conf and one
// `local all postgres peer map=hostkit` line to pg_hba.conf ahead of the
// distribution's, both marked as HostKit's, reloads the cluster and logs in.
import { error, warning, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError } from '../../core/errors.js';
import type { Resource } from '../../core/resource.js';
import { changeBase, hasOp, type Change, type FieldChange } from '../../diff/model.js';
import type { Host } from '../../hosts/types.js';
import type { Driver, DriverContext } from '../types.js';
import { ADMIN_DATABASE, withSession, type Connect } from './connection.js';
import { pgAccessDefinition } from './definition.js';
import { clusterFiles, psql, psqlConnect, reloadCluster, startedCluster, type Cluster, type ClusterFiles } from './psql.js';
import { accessRestore } from './restore-access.js';
import type { PgAccessSpec } from './spec.js';
import { VERSION_QUERY } from './sql.js';

/** The pg_ident.conf map HostKit adds, and the pg_hba.conf line that uses it. */
export const MAP = 'hostkit';
export const IDENT_LINES = [`${MAP} root postgres`, `${MAP} postgres postgres`];
export const HBA_LINE = `local   all             postgres                                peer map=${MAP}`;
const IDENT_BEGIN = '# BEGIN HostKit (pgaccess/local): root and postgres log in as postgres';
const IDENT_END = '# END HostKit';
const HBA_MARK = '# HostKit (pgaccess/local): root and postgres log in as postgres through the peer map hostkit (pg_ident.conf)';

// The distribution's rule for postgres over the socket (Debian: `local all postgres peer`).
const DISTRIBUTION_RULE = /^[ \t]*local[ \t]+all[ \t]+postgres[ \t]+peer[ \t]*(#.*)?$/m;
// After a reload the postmaster takes a moment to read the files again: new logins are tried this long.
const LOGIN_WAIT_MS = 5_000;
// A cluster installed by this run (the package's own start) is waited for this long before apply gives up.

export type ObservedAccess =
  /** Root logs in as postgres already (HostKit's map, the README's manual one, or any other rule). */
  | { login: 'ok' }
  /** The server refused root; `files` say which of HostKit's lines are there (never the files' content). */
  | { login: 'refused'; reason: string; files: ClusterFiles; identMap: boolean; hbaLine: boolean }
  /**
   * Not running or not installed (yet: a package of this run installs it); found again when
   * apply runs. `remote`: its socket cannot be reached from where HostKit runs at all.
   */
  | { login: 'unreachable'; reason: string; remote?: true };

/** What apply does: add HostKit's map to pg_ident.conf, its line to pg_hba.conf, then reload the cluster and log in. */
export type AccessOp = { op: 'ident' } | { op: 'hba' } | { op: 'reload' };

export interface AccessUndo {
  files: ClusterFiles;
}

type AccessChange = Change<PgAccessSpec, ObservedAccess, PgAccessSpec, AccessOp>;

/** pg_ident.conf with HostKit's map (a marked block at the end), or as it is when the map is there. */
export function withIdentMap(text: string): string {
  if (hasIdentMap(text)) return text;
  const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return `${body}${IDENT_BEGIN}\n${IDENT_LINES.join('\n')}\n${IDENT_END}\n`;
}

/** pg_hba.conf with HostKit's line just before the distribution's postgres rule (first match wins), or before the first rule. */
export function withHbaLine(text: string): string {
  if (hasHbaLine(text)) return text;
  const lines = text.split('\n');
  const rule = lines.findIndex((line) => DISTRIBUTION_RULE.test(line));
  const first = lines.findIndex((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  const at = rule >= 0 ? rule : first >= 0 ? first : lines.length - (text.endsWith('\n') ? 1 : 0);
  lines.splice(at, 0, HBA_MARK, HBA_LINE);
  return lines.join('\n');
}

export function hasIdentMap(text: string): boolean {
  const lines = text.split('\n').map((line) => line.trim().split(/\s+/).join(' '));
  return IDENT_LINES.every((entry) => lines.includes(entry));
}

export function hasHbaLine(text: string): boolean {
  return text.split('\n').some((line) => line.trim().split(/\s+/).join(' ') === HBA_LINE.split(/\s+/).join(' '));
}

// Root logs in as postgres (the admin connection every role and database change uses), or why not.
async function rootLogin(connect: Connect, ctx: DriverContext): Promise<{ reason: string; refused: boolean; remote: boolean } | undefined> {
  try {
    await withSession(connect, ctx, ADMIN_DATABASE, (s) => s.query(VERSION_QUERY));
    return undefined;
  } catch (cause) {
    // 28000: no pg_hba.conf line lets root in, or peer authentication failed (connection.ts keeps it as data.sqlstate).
    const sqlstate = cause instanceof HostKitError ? cause.data.sqlstate : (cause as { code?: unknown }).code;
    const remote = cause instanceof HostKitError && cause.code === 'PG_SOCKET_UNREACHABLE';
    return { reason: errorMessage(cause), refused: sqlstate === '28000', remote };
  }
}

export function planAccess({
  resource,
  observed,
  orphan,
}: {
  resource: Resource<PgAccessSpec>;
  observed: ObservedAccess | undefined;
  orphan: boolean;
}): AccessChange {
  const base = { ...changeBase(resource), disruptive: false };
  if (orphan) return { ...base, action: 'noop', fields: [], ops: [], orphan: true, reason: 'no database is declared any more; the access is kept' };
  if (!observed || observed.login === 'ok') return { ...base, action: 'noop', fields: [], ops: [], desired: resource.spec, ...(observed ? { observed } : {}) };
  // A socket HostKit cannot open from where it runs: no file edit can help (an apply stops at the roles' observe, saying what to do).
  if (observed.login === 'unreachable' && observed.remote) {
    return { ...base, action: 'noop', fields: [], ops: [], diagnostics: [warning('PostgreSQL not reachable', observed.reason, resource.origin)], observed };
  }
  const ident = observed.login === 'unreachable' || !observed.identMap;
  const hba = observed.login === 'unreachable' || !observed.hbaLine;
  const fields: FieldChange[] = [
    ...(ident ? [{ field: '/pg_ident.conf', after: IDENT_LINES.join(', ') }] : []),
    ...(hba ? [{ field: '/pg_hba.conf', after: HBA_LINE.split(/\s+/).join(' ') }] : []),
  ];
  const ops: AccessOp[] = [...(ident ? [{ op: 'ident' as const }] : []), ...(hba ? [{ op: 'hba' as const }] : []), { op: 'reload' }];
  const reason =
    observed.login === 'unreachable'
      ? `PostgreSQL not reachable now (${observed.reason}); its files are found when this applies`
      : `root cannot log in as postgres over the socket: ${observed.reason}`;
  return { ...base, action: ident && hba ? 'create' : 'update', fields, ops, disruptive: true, reason, desired: resource.spec, observed };
}

/**
 * HostKit's admin access to PostgreSQL over the local socket (kind pgaccess). Observe
 * logs in as root (one session, the run's pool) and, only when that is refused, asks
 * the server as postgres where its files are and reads them, keeping only whether
 * HostKit's lines are there. Orphans: reported and kept.
 */
export function makeAccessDriver(
  connect: Connect,
  asPostgres: (cluster: Cluster) => Connect = psqlConnect,
): Driver<PgAccessSpec, PgAccessSpec, ObservedAccess, AccessUndo, 'pgaccess', void, AccessOp> {
  async function observeAccess(spec: PgAccessSpec, ctx: DriverContext): Promise<ObservedAccess> {
    const login = await rootLogin(connect, ctx);
    if (login === undefined) return { login: 'ok' };
    const { reason } = login;
    if (!login.refused) return { login: 'unreachable', reason, ...(login.remote ? { remote: true as const } : {}) };
    let files: ClusterFiles;
    try {
      const found = await clusterFiles(ctx.host, spec);
      files = { hba: found.hba, ident: found.ident };
    } catch (cause) {
      return { login: 'unreachable', reason: `${reason}; ${errorMessage(cause)}` };
    }
    const [hba, ident] = await Promise.all([ctx.host.readFile(files.hba), ctx.host.readFile(files.ident)]);
    return { login: 'refused', reason, files, hbaLine: hasHbaLine(hba?.toString('utf8') ?? ''), identMap: hasIdentMap(ident?.toString('utf8') ?? '') };
  }

  return {
    ...pgAccessDefinition,

    async desire(resources) {
      return new Map(resources.map((r) => [r.id, { desired: r.spec, diagnostics: [] as Diagnostic[] }]));
    },

    // One resource per host. Roles and databases are observed at the same time: they read the catalog
    // as postgres through psql while this says root cannot log in yet (observe.ts).
    async observe(resources, ctx) {
      const out = new Map<string, ObservedAccess>();
      const resource = resources[0];
      if (!resource) return out;
      const observed = observeAccess(resource.spec, ctx);
      ctx.run.postgresql.access = observed.then((o) => ({
        pending: o.login !== 'ok',
        absent: o.login === 'unreachable' && !o.remote,
        read: asPostgres(resource.spec),
      }));
      out.set(resource.id, await observed);
      return out;
    },

    plan: planAccess,

    /**
     * Adds HostKit's lines to the files that lack them (same owner and mode), has the
     * server check them (pg_hba_file_rules, pg_ident_file_mappings), reloads it and logs
     * in as root. If any of that fails, both files get their previous bytes back and the
     * cluster is reloaded before the error is thrown: the host is as before (the run
     * journal holds the same bytes for a later rollback).
     */
    async apply(change, ctx) {
      const spec = change.resource!.spec;
      const { version, ...files } = await startedCluster(ctx.host, spec);
      const before = { hba: await readOwned(ctx.host, files.hba), ident: await readOwned(ctx.host, files.ident) };
      try {
        if (hasOp(change, 'ident')) await writeLike(ctx.host, files.ident, before.ident, withIdentMap(before.ident.text));
        if (hasOp(change, 'hba')) await writeLike(ctx.host, files.hba, before.hba, withHbaLine(before.hba.text));
        await checkFiles(ctx.host, spec, version);
        await reloadCluster(ctx.host, spec);
        await awaitLogin(connect, ctx);
      } catch (cause) {
        try {
          await writeLike(ctx.host, files.hba, before.hba, before.hba.text);
          await writeLike(ctx.host, files.ident, before.ident, before.ident.text);
          await reloadCluster(ctx.host, spec);
        } catch (again) {
          throw new HostKitError(
            'PG_ACCESS_FAILED',
            `${errorMessage(cause)}; putting back ${files.hba} and ${files.ident} also failed: ${errorMessage(again)}`,
            {
              cause,
              data: { resourceId: change.id },
            },
          );
        }
        throw new HostKitError(
          'PG_ACCESS_FAILED',
          `HostKit's PostgreSQL admin access did not work, so ${files.hba} and ${files.ident} were put back: ${errorMessage(cause)}`,
          {
            cause,
            data: { resourceId: change.id, ...files },
          },
        );
      }
      ctx.run.postgresql.access = Promise.resolve({ pending: false, absent: false, read: connect });
      return { files };
    },

    async verify(change, ctx) {
      const login = await rootLogin(connect, ctx);
      return login === undefined ? [] : [error('verification failed', `root still cannot log in as postgres: ${login.reason}`, change.origin)];
    },

    // Both files come back from the run journal; the cluster is reloaded once after (restore-access.ts).
    restore: accessRestore,
  };
}

interface OwnedText {
  text: string;
  uid: number;
  gid: number;
  mode: number;
}

async function readOwned(host: Host, file: string): Promise<OwnedText> {
  const [bytes, st] = await Promise.all([host.readFile(file), host.stat(file)]);
  if (bytes === undefined || st === undefined)
    throw new HostKitError('PG_ACCESS_FAILED', `${file}, which PostgreSQL names as its configuration, does not exist`);
  return { text: bytes.toString('utf8'), uid: st.uid, gid: st.gid, mode: st.mode };
}

async function writeLike(host: Host, file: string, like: OwnedText, text: string): Promise<void> {
  await host.writeFile(file, text, { uid: like.uid, gid: like.gid, mode: like.mode });
}

// The server parses the files as they are on disk now: a line it would reject is found before the reload
// (pg_ident_file_mappings exists from PostgreSQL 15 on).
async function checkFiles(host: Host, cluster: Cluster, version: number): Promise<void> {
  const ident =
    version >= 150000
      ? `UNION ALL SELECT 'pg_ident.conf line ' || line_number || ': ' || error FROM pg_catalog.pg_ident_file_mappings WHERE error IS NOT NULL`
      : '';
  const out = await psql(
    host,
    cluster,
    ADMIN_DATABASE,
    `SELECT string_agg(f.e, '; ') FROM (SELECT 'pg_hba.conf line ' || line_number || ': ' || error AS e FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL ${ident}) f;\n`,
  );
  if (out !== '') throw new HostKitError('PG_ACCESS_FAILED', `PostgreSQL rejects its authentication files: ${out}`);
}

// A cluster a package of this run installed may still be starting: its files are asked for a little while.

async function awaitLogin(connect: Connect, ctx: DriverContext): Promise<void> {
  const deadline = Date.now() + LOGIN_WAIT_MS;
  for (;;) {
    const login = await rootLogin(connect, ctx);
    if (login === undefined) return;
    if (Date.now() >= deadline) throw new HostKitError('PG_ACCESS_FAILED', `root cannot log in as postgres after the reload: ${login.reason}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
