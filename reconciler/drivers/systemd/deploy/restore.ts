import { findOp, type Change } from '../../../diff/model.js';
import { describeExec } from '../../../hosts/types.js';
import type { AfterRestore, Restore, RestoreContext } from '../../types.js';
import { UNIT_DIR } from '../render.js';
import { showUnits } from '../systemctl.js';
import { awaitHealthy } from './health.js';
import { COLORS, instanceUnit, upstreamFile } from './layout.js';
import type { Color, DeploySpec } from './spec.js';
import type { DeployOp } from './index.js';

// The undo of a deploy: both instances' unit files and the upstream file come back from the run
// journal; what ran and where nginx pointed is a record. Once the files are back (the after-hook,
// once per restore): the instance nginx pointed at is started if it is not running and waited for
// on its own port, nginx is tested and reloaded, and only then are the instances that were not
// running stopped. So nginx never points at a stopped instance, and the two are never both stopped.

interface DeployRecord {
  project: string;
  upstream?: Color;
  running: Record<Color, boolean>;
  ports: Record<Color, number>;
  address: string;
  health: DeploySpec['health'];
  /** How long an instance nginx switched away from keeps running (absent in records of older runs). */
  drainMs?: number;
}

/** The systemd driver's own record (systemd/restore.ts): `active: false` keeps its after-hook from restarting an instance; this hook decides. */
interface UnitRecord {
  unit: string;
  active: boolean;
  enabled: boolean;
}

type DeployChange = Change<unknown, { upstream?: Color; running: Record<Color, boolean> }, DeploySpec, DeployOp>;

export interface DeployAfterRestore {
  projects: DeployRecord[];
}

async function restoreProject(ctx: RestoreContext, record: DeployRecord): Promise<void> {
  const host = ctx.host;
  const active = record.upstream;
  if (active) {
    const unit = instanceUnit(record.project, active);
    const state = (await showUnits(host, [unit])).get(unit);
    if (state?.ActiveState !== 'active') {
      const started = await host.exec('systemctl', ['restart', unit]);
      if (started.exitCode !== 0) throw new Error(describeExec('systemctl', ['restart', unit], started));
    }
    await host.exec('systemctl', ['enable', '--quiet', unit]);
    const problem = await awaitHealthy(host, record, record.ports[active]);
    if (problem) ctx.log.warn({ unit, problem }, 'restored instance not healthy yet');
  }
  // nginx reads the upstream file the restore put back: test, then a graceful reload.
  const test = await host.exec('nginx', ['-t']);
  if (test.exitCode !== 0) throw new Error(`nginx -t rejected the restored configuration; nginx was not reloaded:\n${test.stderr.trim()}`);
  const reload = await host.exec('systemctl', ['reload-or-restart', 'nginx.service']);
  if (reload.exitCode !== 0) throw new Error(describeExec('systemctl', ['reload-or-restart', 'nginx.service'], reload));
  const stop = COLORS.filter((c) => c !== active && !record.running[c]).map((c) => instanceUnit(record.project, c));
  const states = await showUnits(host, stop);
  // Requests nginx's old workers still have in flight on an instance that now stops get the drain period, as in an apply.
  if (stop.some((u) => states.get(u)?.ActiveState === 'active')) await new Promise((resolve) => setTimeout(resolve, record.drainMs ?? 0));
  for (const unit of stop) await host.exec('systemctl', ['disable', '--now', '--quiet', unit]);
}

const afterRestore: AfterRestore<DeployAfterRestore> = {
  async plan(_steps, changes) {
    const projects = changes.flatMap((c) => c.records.filter((r) => r.key === 'deploy').map((r) => r.data as DeployRecord));
    return projects.length > 0 ? { projects } : undefined;
  },
  describe: (p) =>
    p.projects.map(
      (r) => `  serve ${r.project} from ${r.upstream ? instanceUnit(r.project, r.upstream) : 'no instance'} again, nginx -t and reload, stop the others`,
    ),
  async apply(p, ctx) {
    const reload = await ctx.host.exec('systemctl', ['daemon-reload']);
    if (reload.exitCode !== 0) throw new Error(describeExec('systemctl', ['daemon-reload'], reload));
    for (const record of p.projects) await restoreProject(ctx, record);
  },
};

export const deployRestore: Restore<DeployChange, DeployRecord | UnitRecord> = {
  async backup(change, journal) {
    const spec = change.resource?.spec;
    if (!spec) return;
    for (const c of COLORS) await journal.backupFile(`${UNIT_DIR}/${instanceUnit(spec.project, c)}`);
    // The instance a deploy starts: the systemd after-hook must neither restart nor enable it (this one stops it).
    const started = findOp(change, 'start');
    if (started) await journal.backupState('unit', { unit: started.instance, active: false, enabled: false } satisfies UnitRecord);
    await journal.backupFile(upstreamFile(spec.project));
    const observed = change.observed;
    await journal.backupState('deploy', {
      project: spec.project,
      ...(observed?.upstream ? { upstream: observed.upstream } : {}),
      running: observed?.running ?? { blue: false, green: false },
      ports: spec.ports,
      address: spec.address,
      health: spec.health,
      drainMs: spec.drainMs,
    } satisfies DeployRecord);
  },
  after: afterRestore,
};
