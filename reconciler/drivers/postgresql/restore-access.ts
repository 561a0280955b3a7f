import type { Change } from '../../diff/model.js';
import type { AfterRestore, Restore } from '../types.js';
import type { AccessOp, ObservedAccess } from './access.js';
import { reloadCluster, startedCluster, type Cluster } from './psql.js';
import type { PgAccessSpec } from './spec.js';

// The undo of HostKit's PostgreSQL admin access (pgaccess): pg_hba.conf and
// pg_ident.conf come back from the run journal byte for byte, then the cluster
// is reloaded once, as postgres (root's access goes with the files).

interface ClusterRecord {
  cluster: Cluster;
}

/** Reload the clusters whose files the restore changed. */
interface ReloadPlan {
  clusters: Cluster[];
}

const afterRestore: AfterRestore<ReloadPlan> = {
  async plan(steps, changes) {
    const touched = new Set(steps.filter((s) => s.resource.startsWith('pgaccess/') && 'unchanged' in s && s.unchanged === false).map((s) => s.resource));
    const clusters = changes
      .filter((c) => touched.has(c.id))
      .flatMap((c) => c.records.filter((r) => r.key === 'cluster').map((r) => (r.data as ClusterRecord).cluster));
    return clusters.length > 0 ? { clusters } : undefined;
  },
  describe: (plan) => plan.clusters.map((c) => `  reload PostgreSQL (socket ${c.socket}, port ${c.port}): its authentication files were put back`),
  async apply(plan, ctx) {
    for (const cluster of plan.clusters) await reloadCluster(ctx.host, cluster);
  },
};

export const accessRestore: Restore<Change<unknown, ObservedAccess, PgAccessSpec, AccessOp>, ClusterRecord> = {
  // Both files, wherever the server keeps them (asked again: PostgreSQL may have been installed by this run).
  async backup(change, journal) {
    const spec = change.resource?.spec;
    if (!spec) return;
    const cluster = { socket: spec.socket, port: spec.port };
    const observed = change.observed;
    // Not reachable at plan time: installed by this run, it may still be starting.
    const files = observed?.login === 'refused' ? observed.files : await startedCluster(journal.host, cluster);
    await journal.backupState('cluster', { cluster } satisfies ClusterRecord);
    await journal.backupFiles([files.hba, files.ident]);
  },
  after: afterRestore,
};
