import { error } from '../../core/diagnostics.js';
import { projectRoots, within } from '../../manifests/host-policy.js';
import { pgName, UNIT_PREFIX } from '../../manifests/primitive.js';
import { scheduleError, toOnCalendar } from '../../manifests/schedule.js';
import type { BackupKeep } from '../../manifests/types.js';
import { resourceId } from '../../core/resource.js';
import type { EnvFileSpec } from '../envfile/spec.js';
import type { FileSpec } from '../file/spec.js';
import type { ProjectExpansion, ProjectPart } from '../manifest-types.js';
import type { TimerSpec, UnitSpec } from '../systemd/spec.js';
import type { CheckpointSpec } from './spec.js';

// A project's scheduled backups: the job HostKit's timers run (`hostkit backups run`), the
// host's restic environment, and one timer per schedule. Nothing here runs at apply: a
// backup runs when its timer fires (or `hostkit backups run`), so a noop spawns nothing.

/** Where HostKit keeps the backup jobs and restic's environment: root's only. */
export const BACKUP_DIRECTORY = '/etc/hostkit/backup';
/** RESTIC_REPOSITORY, RESTIC_PASSWORD and the backend's credentials (root, 0600). */
export const RESTIC_ENV = `${BACKUP_DIRECTORY}/restic.env`;
/** The repository when the Host names none. */
export const DEFAULT_REPOSITORY = '/var/backups/hostkit';
export const DEFAULT_HOSTKIT = '/usr/bin/hostkit';

/** What `hostkit backups run NAME` reads: /etc/hostkit/backup/NAME.json (no secret in it). */
export interface BackupJob {
  project: string;
  /** Where the outcomes are recorded (STATE/backups/NAME.json): the Host's stateDirectory. */
  stateDirectory: string;
  database?: { name: string; keep?: BackupKeep };
  /** Restore drills of the database backup: `hostkit backups restore NAME --to-scratch --database --drill` on this schedule. */
  drill?: 'daily' | 'weekly' | 'monthly';
  files?: { paths: string[]; keep?: BackupKeep };
  /** The project's units, stopped while its database is restored in place (`restore --to-live`). */
  units?: string[];
}

export function jobPath(project: string): string {
  return `${BACKUP_DIRECTORY}/${project}.json`;
}

export const projectBackups: ProjectPart = {
  name: 'backups',
  expand(x) {
    addCheckpoint(x);
    const spec = x.project.spec;
    const database = spec.database?.backup;
    const files = spec.backup;
    if (!database && !files) return;
    const hostBackup = x.host.spec.backup;
    if (!hostBackup) {
      x.report(
        error(
          'no backup repository',
          `project ${x.name} declares backups, but host ${x.host.name} has no spec.backup (its restic repository and password)`,
          x.at(database ? '/spec/database/backup' : '/spec/backup'),
        ),
      );
      return;
    }
    const job: BackupJob = { project: x.name, stateDirectory: x.host.spec.stateDirectory ?? '/var/lib/hostkit' };
    if (x.ids.units.length > 0) job.units = x.ids.units.map((id) => id.slice('unit/'.length));
    if (database) job.database = { name: spec.database!.name ?? pgName(x.name), ...(database.keep ? { keep: database.keep } : {}) };
    if (database?.drill) job.drill = database.drill;
    if (files) {
      const paths = resolvePaths(x, files.paths);
      if (!paths) return;
      job.files = { paths, ...(files.keep ? { keep: files.keep } : {}) };
    }
    const env = x.add<EnvFileSpec>('envfile', RESTIC_ENV, resticEnv(hostBackup), x.at(database ? '/spec/database/backup' : '/spec/backup'), {
      shared: true,
    });
    const jobFile = x.add<FileSpec>(
      'file',
      jobPath(x.name),
      { path: jobPath(x.name), content: JSON.stringify(job, null, 2) + '\n', owner: 'root', group: 'root', mode: 0o600 },
      x.at(database ? '/spec/database/backup' : '/spec/backup'),
    );
    const hostkit = x.host.spec.hostkitPath ?? DEFAULT_HOSTKIT;
    const after = [env, jobFile, ...x.ids.databases];
    if (database) addTimer(x, 'database', database.schedule, [hostkit, 'backups', 'run', x.name, '--database', '--scheduled'], '/spec/database/backup', after);
    if (files) addTimer(x, 'files', files.schedule, [hostkit, 'backups', 'run', x.name, '--files', '--scheduled'], '/spec/backup', after);
    if (database?.drill) {
      const drill = [hostkit, 'backups', 'restore', x.name, '--to-scratch', '--database', '--drill', '--scheduled'];
      addTimer(x, 'drill', database.drill, drill, '/spec/database/backup', after, '/spec/database/backup/drill');
    }
  },
};

// The database's checkpoint, before the changes that may rewrite its data: a new release, a before-start command.
function addCheckpoint(x: ProjectExpansion): void {
  const db = x.project.spec.database;
  const hostBackup = x.host.spec.backup;
  const guards = [...(x.ids.release ? [x.ids.release] : []), ...x.ids.beforeStart];
  if (!db || !hostBackup || db.checkpoint === false || guards.length === 0) return;
  const at = x.at('/spec/database');
  const env = x.add<EnvFileSpec>('envfile', RESTIC_ENV, resticEnv(hostBackup), at, { shared: true });
  const database = db.name ?? pgName(x.name);
  const spec: CheckpointSpec = {
    database,
    project: x.name,
    databaseId: resourceId('pgdatabase', database),
    owner: db.role ?? pgName(x.name),
    guards,
    restoreDataOnRollback: db.restoreDataOnRollback === true,
    units: x.ids.units.map((id) => id.slice('unit/'.length)),
  };
  const checkpoint = x.add<CheckpointSpec>('checkpoint', database, spec, at, { dependsOn: [env, ...x.ids.databases] });
  for (const id of guards) x.dependOn(id, [checkpoint]);
}

export function resticEnv(backup: NonNullable<ProjectExpansion['host']['spec']['backup']>): EnvFileSpec {
  return {
    path: RESTIC_ENV,
    owner: 'root',
    group: 'root',
    mode: 0o600,
    environment: { RESTIC_REPOSITORY: backup.repository ?? DEFAULT_REPOSITORY },
    secrets: { RESTIC_PASSWORD: backup.password, ...(backup.environment ?? {}) },
  };
}

// Paths relative to /srv/NAME, or absolute inside the project's own roots: the job runs as
// root, so a path elsewhere would let a project read another's files (or /etc) through a restore.
function resolvePaths(x: ProjectExpansion, paths: readonly string[]): string[] | undefined {
  const roots = projectRoots(x.name, x.host.policy);
  const resolved: string[] = [];
  let ok = true;
  paths.forEach((p, i) => {
    const full = p.startsWith('/') ? p.replace(/\/+$/, '') : `/srv/${x.name}/${p.replace(/^\.\//, '').replace(/\/+$/, '')}`;
    if (!roots.some((root) => within(full, root))) {
      x.report(
        error(
          'backup path outside the project',
          `${full} is not inside project ${x.name}'s own directories (${roots.join(', ')})`,
          x.at(`/spec/backup/paths/${i}`),
        ),
      );
      ok = false;
    }
    resolved.push(full);
  });
  return ok ? resolved : undefined;
}

function addTimer(
  x: ProjectExpansion,
  what: 'database' | 'files' | 'drill',
  schedule: string,
  command: string[],
  pointer: string,
  after: string[],
  schedulePointer = `${pointer}/schedule`,
): void {
  const converted = toOnCalendar(schedule);
  if ('error' in converted) {
    x.report(scheduleError(schedulePointer.slice('/spec/'.length).replace(/\//g, '.'), schedule, converted.error, x.at(schedulePointer)));
    return;
  }
  const service = `${UNIT_PREFIX}${x.name}-backup-${what}.service`;
  const timer = `${UNIT_PREFIX}${x.name}-backup-${what}.timer`;
  const unit: UnitSpec = {
    unit: service,
    description: what === 'drill' ? `HostKit project ${x.name}, restore drill of its database backup` : `HostKit project ${x.name}, backup of its ${what}`,
    command,
    // root: it reads the project's files and restic's environment, and dumps the database as postgres.
    user: 'root',
    group: 'root',
    workingDirectory: '/',
    environment: {},
    restart: 'no',
    type: 'oneshot',
    limits: {},
    isolation: { profile: 'none', writablePaths: [], network: 'any' },
    reads: [],
  };
  const serviceId = x.add<UnitSpec>('unit', service, unit, x.at(pointer), { dependsOn: after });
  x.add<TimerSpec>('timer', timer, { unit: timer, service, onCalendar: converted.onCalendar, schedule, persistent: true }, x.at(schedulePointer), {
    dependsOn: [serviceId],
  });
}
