// Statements run as the postgres OS user through psql on the managed host (peer
// authentication, as the distribution sets it up): how HostKit reads the server,
// finds its configuration files and reloads it before its own admin access
// (pgaccess) exists, and after a restore took that access away again.
import { HostKitError } from '../../core/errors.js';
import { describeExec, type Host } from '../../hosts/types.js';
import { ADMIN_DATABASE, type Connect } from './connection.js';
import type { PgAccessSpec } from './spec.js';
import { escapeLiteral, type Statement } from './sql.js';

const PSQL_TIMEOUT_MS = 30_000;

/** Where the cluster is: the socket directory and port (the Host manifest's, or the defaults). */
export type Cluster = Pick<PgAccessSpec, 'socket' | 'port'>;

// A bind value written as a literal: psql takes no bind parameters (names and text arrays only).
function literal(value: unknown): string {
  if (Array.isArray(value)) return `ARRAY[${value.map((v) => escapeLiteral(String(v))).join(', ')}]::text[]`;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string') return escapeLiteral(value);
  throw new HostKitError('PG_INVALID_VALUE', `Expected a string, an integer or an array of strings, got ${typeof value}`);
}

/**
 * The rows of `statement` (each as node-postgres would give it: JSON columns parsed,
 * integers as numbers), run by `psql` as postgres in `database`. Reads only; throws
 * PG_CONNECT_FAILED with psql's message when the server cannot be reached that way.
 */
export async function psqlRows<R>(host: Host, cluster: Cluster, database: string, statement: Statement, values: readonly unknown[] = []): Promise<R[]> {
  const text = statement.text.replace(/\$(\d+)/g, (_, n: string) => literal(values[Number(n) - 1]));
  const sql = `SELECT coalesce(json_agg(row_to_json(q)), '[]')::text FROM (${text}) q;\n`;
  const output = await psql(host, cluster, database, sql);
  return JSON.parse(output) as R[];
}

/** Runs `sql` (psql's standard input) as postgres; its unaligned, tuples-only output. */
export async function psql(host: Host, cluster: Cluster, database: string, sql: string): Promise<string> {
  const args = [
    '-u',
    'postgres',
    '--',
    'psql',
    '-X',
    '-A',
    '-t',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    cluster.socket,
    '-p',
    String(cluster.port),
    '-d',
    database,
  ];
  const result = await host.exec('runuser', args, { input: sql, timeoutMs: PSQL_TIMEOUT_MS });
  if (result.exitCode !== 0) {
    throw new HostKitError(
      'PG_CONNECT_FAILED',
      `Cannot ask PostgreSQL (socket ${cluster.socket}, port ${cluster.port}) as the postgres OS user: ${describeExec('runuser', args, result)}`,
      {
        data: { where: `socket ${cluster.socket} on ${host.name}`, exitCode: result.exitCode },
      },
    );
  }
  return result.stdout.trim();
}

/** The cluster's authentication files (what `SHOW hba_file` and `SHOW ident_file` say). */
export interface ClusterFiles {
  hba: string;
  ident: string;
}

/** Where the cluster keeps pg_hba.conf and pg_ident.conf, and its version: the server says, asked as postgres (one psql). */
export async function clusterFiles(host: Host, cluster: Cluster): Promise<ClusterFiles & { version: number }> {
  const out = await psql(
    host,
    cluster,
    ADMIN_DATABASE,
    "SELECT current_setting('hba_file') || E'\\n' || current_setting('ident_file') || E'\\n' || current_setting('server_version_num');\n",
  );
  const [hba, ident, version] = out.split('\n');
  if (!hba?.startsWith('/') || !ident?.startsWith('/')) {
    throw new HostKitError('PG_ACCESS_FAILED', `PostgreSQL did not name its pg_hba.conf and pg_ident.conf (got "${out}")`);
  }
  return { hba, ident, version: Number(version) };
}

/** Reloads the cluster's configuration (pg_reload_conf, as postgres): its authentication files are read again. */
export async function reloadCluster(host: Host, cluster: Cluster): Promise<void> {
  await psql(host, cluster, ADMIN_DATABASE, 'SELECT pg_reload_conf();\n');
}

/** Sessions that read through psql as postgres: what observe uses while root cannot log in yet. */
export function psqlConnect(cluster: Cluster): Connect {
  return async (ctx, database) => ({
    query: <R extends object>(statement: Statement, values?: readonly unknown[]) => psqlRows<R>(ctx.host, cluster, database, statement, values),
    close: async () => undefined,
  });
}

/** How long a cluster installed by this run may take to answer. */
const START_WAIT_MS = 15_000;

/** clusterFiles, waiting up to START_WAIT_MS for a server that is still starting (installed by this run). */
export async function startedCluster(host: Host, cluster: Cluster): Promise<ClusterFiles & { version: number }> {
  const deadline = Date.now() + START_WAIT_MS;
  for (;;) {
    try {
      return await clusterFiles(host, cluster);
    } catch (cause) {
      // Only "psql got no answer" is waited out (PG_CONNECT_FAILED); anything else is thrown at once.
      if (!(cause instanceof HostKitError && cause.code === 'PG_CONNECT_FAILED') || Date.now() >= deadline) throw cause;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
