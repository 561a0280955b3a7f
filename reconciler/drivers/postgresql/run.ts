// What the two PostgreSQL drivers (pgrole, pgdatabase) share during one run, as
// ctx.run.postgresql: the admin connection (connection.ts) and the catalog reads
// (observe.ts). Closed by the engine when the run ends.
import type pg from 'pg';
import type { AdminTarget } from './connection.js';
import type { CatalogBatch, VerifyState } from './observe.js';
import type { Connect } from './connection.js';

export class PostgresRun {
  /**
   * Set by pgaccess's observe (access.ts): whether root cannot log in as postgres yet
   * (HostKit sets its access up in this run), so roles and databases read the catalog
   * through `read`, as the postgres OS user (observe.ts); `absent`: the server does not
   * answer at all (not installed or not started yet: a package of this run may install it).
   */
  access: Promise<{ pending: boolean; absent: boolean; read: Connect }> | undefined;
  /** Resolved once per run: the admin password secret is read at most once. */
  target: Promise<AdminTarget> | undefined;
  /** Admin-database connections, reused from step to step (connection.ts adminPool). */
  pool: pg.Pool | undefined;
  /** The catalog query being gathered this turn of the event loop (observe.ts loadCatalog). */
  batch: CatalogBatch | undefined;
  /** What verify asks about, and its cached answer (observe.ts catalogAfterChanges). */
  readonly verifying: VerifyState = { generation: 0, roles: new Set(), databases: new Set() };

  /** Ends the admin pool once its sessions are back; a later session of the same run opens a new one. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}
