import { stringify } from 'yaml';
import { createLogger } from '../core/log.js';
import { Redactor } from '../core/secrets.js';
import type { Resource } from '../core/resource.js';
import type { FirewallSpec, PgDatabaseSpec, SiteSpec } from '../core/specs.js';
import { hasErrors } from '../core/diagnostics.js';
import { errorMessage } from '../core/errors.js';
import { pendingChanges, type Change, type Plan } from '../diff/model.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { inspectCertificate } from '../drivers/certificate/x509.js';
import { siteTlsFiles } from '../drivers/nginx/render.js';
import { jobPath } from '../drivers/backup/project.js';
import { readHistory, type BackupRecord, type RecordPart } from '../drivers/backup/job.js';
import { servingRelease, type ServingRelease } from '../drivers/release/records.js';
import { showProperties } from '../drivers/systemd/systemctl.js';
import { listRuns } from '../apply/journal.js';
import { safetyStatus } from '../apply/quarantine.js';
import { summarize, type RunSummary } from '../apply/rollback.js';
import type { Inventory } from '../apply/inventory.js';
import { reconcileHost } from '../engine.js';
import type { Host } from '../hosts/types.js';
import type { Manifest, ProjectManifest } from '../manifests/types.js';
import { checkAll, declaredChecks } from './health.js';
import { projectsOn, reportInvalid, requireProject, unitChoices, type HostTargetOptions, type UnitRole } from './operate.js';
import { renderStatusMarkdown, renderStatusText } from './status-render.js';
import { localRunInput } from './run-input.js';

// `hostkit status`: what an operator asks first in an incident, read live from
// the host: the commit applied last, the last run, the holds (quarantine,
// pause), and per project its current release, units, sites and certificates,
// database, firewall openings, health (one attempt of its declared check) and the drift
// a dry run finds. Read-only: a dry run takes no run lock and writes nothing.
// The JSON form is described by schema/status.schema.json.

export interface StatusOptions extends HostTargetOptions {
  project?: string;
  output: string;
}

export interface DriftChange {
  id: string;
  action: Change['action'];
  reason?: string;
  owedBy?: 'time';
}

export interface UnitStatus {
  unit: string;
  role: Exclude<UnitRole, 'lifecycle'>;
  /** What `hostkit logs --unit` calls it. */
  choice: string;
  load: string;
  active: string;
  sub: string;
  /** When it last became active (ActiveEnterTimestamp). */
  since?: string;
  restarts?: number;
  memoryBytes?: number;
}

export interface CertificateStatus {
  file: string;
  state: 'valid' | 'expired' | 'missing' | 'unreadable';
  notAfter?: string;
  daysLeft?: number;
  issuer?: string;
  selfSigned?: boolean;
  placeholder?: boolean;
  problem?: string;
}

export interface SiteStatus {
  domain: string;
  aliases: string[];
  tls: 'acme' | 'self-signed' | 'none' | 'files';
  certificate?: CertificateStatus;
}

/** A project with a source: the release `current` serves (absent `id`: none yet), and a hold by `hostkit rollback --to`. */
export interface ReleaseStatus extends Partial<ServingRelease> {
  held?: { at: string; run?: string };
}

/** A project's last backup of each part it declares, and the last good one when the last failed (STATE/backups/NAME.json). */
export type BackupStatus = Partial<Record<RecordPart, { last?: BackupRecord; lastGood?: BackupRecord }>>;

export interface ProjectStatus {
  name: string;
  paused?: { at: string; failures: number; reason: string };
  release?: ReleaseStatus;
  units: UnitStatus[];
  sites: SiteStatus[];
  database?: { name: string; owner: string; extensions: string[]; state: 'present' | 'missing' | 'differs' | 'unknown' };
  /** Projects with backups (database.backup, backup): one entry per part, none yet until the first ran. */
  backups?: BackupStatus;
  firewall: { port: number; protocol: string; from: string[]; state: 'applied' | 'pending' | 'unmanaged' | 'unknown' }[];
  health: { state: 'passing' | 'failing' | 'none'; checked?: string; detail?: string };
  drift: { pending: number; changes: DriftChange[] };
}

export interface StatusDocument {
  host: string;
  checkedAt: string;
  repository: string;
  /** The repository's commit the host was compared with. */
  commit?: string;
  /** What the host's inventory says was applied last. */
  applied?: { commit?: string; at?: string };
  lastRun?: Pick<RunSummary, 'id' | 'type' | 'status' | 'commit' | 'startedAt' | 'endedAt' | 'changes' | 'failed'>;
  quarantined: { commit: string; at: string; reason: string; projects: string[]; run?: string }[];
  paused: { project: string; at: string; failures: number; reason: string }[];
  drift: { state: 'in-sync' | 'pending' | 'unknown'; pending: number; errors?: string[]; host: DriftChange[] };
  projects: ProjectStatus[];
}

export interface StatusInput {
  host: Host;
  hostName: string;
  repository: string;
  commit?: string;
  stateDirectory: string;
  manifests: readonly Manifest[];
  /** The dry run: its plan, the resources the manifests expand into here, the inventory it read. */
  planned: { plan: Plan; resources: readonly Resource[]; inventory: Inventory };
  /** Only this project. */
  project?: string;
  now?: Date;
}

const UNIT_PROPERTIES = ['Id', 'LoadState', 'ActiveState', 'SubState', 'ActiveEnterTimestamp', 'NRestarts', 'MemoryCurrent'] as const;
// systemd's "[not set]" for a counter it does not track (2^64 - 1).
const UNSET = '18446744073709551615';
const DAY_MS = 24 * 60 * 60 * 1000;

function count(text: string): number | undefined {
  return /^\d+$/.test(text) && text !== UNSET ? Number(text) : undefined;
}

// With --timestamp=unix systemd prints "@SECONDS"; empty when the unit never was active.
function timestamp(text: string): string | undefined {
  const m = /^@(\d+)$/.exec(text.trim());
  return m && m[1] !== '0' ? new Date(Number(m[1]) * 1000).toISOString() : undefined;
}

function driftOf(c: Change): DriftChange {
  return { id: c.id, action: c.action, ...(c.reason ? { reason: c.reason } : {}), ...(c.owedBy ? { owedBy: c.owedBy } : {}) };
}

// The certificate the site is served with, as HostKit placed it (only the certificate: no key is read).
async function certificateOf(host: Host, spec: SiteSpec, now: number): Promise<CertificateStatus | undefined> {
  const files = siteTlsFiles(spec);
  if (!files) return undefined;
  let bytes: Buffer | undefined;
  try {
    bytes = await host.readFile(files.certificate);
  } catch (cause) {
    return { file: files.certificate, state: 'unreadable', problem: errorMessage(cause) };
  }
  if (!bytes) return { file: files.certificate, state: 'missing' };
  const info = inspectCertificate(bytes, undefined);
  if (typeof info === 'string') return { file: files.certificate, state: 'unreadable', problem: info };
  return {
    file: files.certificate,
    state: info.notAfter <= now ? 'expired' : 'valid',
    notAfter: new Date(info.notAfter).toISOString(),
    daysLeft: Math.floor((info.notAfter - now) / DAY_MS),
    issuer: info.issuer,
    selfSigned: info.selfSigned,
    placeholder: info.placeholder,
  };
}

/** The firewall openings a project asked for: its own `firewall:`, and FirewallRules that name it as their project. */
function openingsOf(manifests: readonly Manifest[], resources: readonly Resource[], plan: Plan, project: string): ProjectStatus['firewall'] {
  const owners = new Set([
    `Project/${project}`,
    ...manifests
      .filter((m) => m.kind === 'FirewallRules' && (m.value.metadata as { project?: string }).project === project)
      .map((m) => `FirewallRules/${m.name}`),
  ]);
  const table = resources.find((r) => r.kind === 'firewall') as Resource<FirewallSpec> | undefined;
  if (!table) {
    const spec = manifests.find((m): m is Manifest<ProjectManifest> => m.kind === 'Project' && m.name === project)?.value.spec;
    return (spec?.firewall ?? []).map((o) => ({ port: o.port, protocol: o.protocol ?? 'tcp', from: o.from ?? [], state: 'unmanaged' as const }));
  }
  const action = plan.changes.find((c) => c.id === table.id)?.action;
  const state = action === 'noop' ? 'applied' : action === undefined || action === 'unsupported' ? 'unknown' : 'pending';
  return table.spec.openings.filter((o) => owners.has(o.for)).map((o) => ({ port: o.port, protocol: o.protocol, from: o.from, state }));
}

/** Everything `hostkit status` reports, gathered from the host with reads only (and one attempt of each health check). */
export async function collectStatus(input: StatusInput): Promise<StatusDocument> {
  const { host, planned, manifests } = input;
  const now = input.now ?? new Date();
  const plan = planned.plan;
  const all = projectsOn(planned.resources);
  if (input.project !== undefined) requireProject(input.project, all, input.hostName);
  const names = input.project !== undefined ? [input.project] : all;
  const choices = new Map(names.map((p) => [p, unitChoices(manifests, planned.resources, p).filter((c) => c.role !== 'lifecycle')]));
  const units = [...choices.values()].flatMap((list) => list.flatMap((c) => c.units));

  const withSource = names.filter((n) => planned.resources.some((r) => r.kind === 'release' && r.project === n));
  const withBackups = names.filter((n) => planned.resources.some((r) => r.kind === 'file' && r.id === `file${jobPath(n)}`));

  // The slow parts at once: one `systemctl show` for every unit, the health checks, the run journal; the releases are file reads.
  const [shown, health, runs, safety, serving, backupHistories] = await Promise.all([
    showProperties(host, units, UNIT_PROPERTIES, ['--timestamp=unix']),
    checkAll(host, declaredChecks(manifests, names), { retries: 0 }),
    listRuns(host, input.stateDirectory),
    safetyStatus(host, input.stateDirectory),
    Promise.all(withSource.map(async (n) => [n, await servingRelease(host, input.stateDirectory, n)] as const)),
    Promise.all(withBackups.map(async (n) => [n, backupStatus(planned.resources, n, (await readHistory(host, input.stateDirectory, n)).records)] as const)),
  ]);
  const backups = new Map(backupHistories);
  const releases = new Map(serving);
  const last = runs.at(-1);
  const errors = plan.diagnostics.filter((d) => d.severity === 'error');
  const pending = hasErrors(plan.diagnostics) ? [] : pendingChanges(plan);

  const projects: ProjectStatus[] = [];
  for (const name of names) {
    const mine = planned.resources.filter((r) => r.project === name);
    const pause = safety.paused.find((p) => p.project === name);
    const hold = safety.held.find((h) => h.project === name);
    const sites: SiteStatus[] = [];
    for (const r of mine.filter((x) => x.kind === 'site') as Resource<SiteSpec>[]) {
      const certificate = await certificateOf(host, r.spec, now.getTime());
      sites.push({
        domain: r.spec.domains[0] ?? r.spec.site,
        aliases: r.spec.domains.slice(1),
        tls: typeof r.spec.tls === 'object' ? 'files' : r.spec.tls,
        ...(certificate ? { certificate } : {}),
      });
    }
    const db = mine.find((x) => x.kind === 'pgdatabase') as Resource<PgDatabaseSpec> | undefined;
    const dbAction = db ? plan.changes.find((c) => c.id === db.id)?.action : undefined;
    const checked = health.find((h) => h.project === name);
    const drift = pending.filter((c) => c.project === name);
    projects.push({
      name,
      ...(pause ? { paused: { at: pause.at, failures: pause.failures, reason: pause.reason } } : {}),
      ...(releases.has(name) ? { release: { ...releases.get(name), ...(hold ? { held: { at: hold.at, ...(hold.run ? { run: hold.run } : {}) } } : {}) } } : {}),
      units: choices.get(name)!.flatMap((c) =>
        c.units.map((unit) => {
          const s = shown.get(unit);
          const since = s ? timestamp(s.ActiveEnterTimestamp) : undefined;
          const restarts = s ? count(s.NRestarts) : undefined;
          const memoryBytes = s ? count(s.MemoryCurrent) : undefined;
          return {
            unit,
            role: c.role as UnitStatus['role'],
            choice: c.choice,
            load: s?.LoadState || 'unknown',
            active: s?.ActiveState || 'unknown',
            sub: s?.SubState || 'unknown',
            ...(since ? { since } : {}),
            ...(restarts !== undefined ? { restarts } : {}),
            ...(memoryBytes !== undefined ? { memoryBytes } : {}),
          };
        }),
      ),
      sites,
      ...(db
        ? {
            database: {
              name: db.spec.database,
              owner: db.spec.owner,
              extensions: db.spec.extensions,
              state:
                dbAction === 'noop'
                  ? 'present'
                  : dbAction === 'create'
                    ? 'missing'
                    : dbAction === undefined || dbAction === 'unsupported'
                      ? 'unknown'
                      : 'differs',
            },
          }
        : {}),
      ...(backups.has(name) ? { backups: backups.get(name)! } : {}),
      firewall: openingsOf(manifests, planned.resources, plan, name),
      health: checked
        ? { state: checked.ok ? 'passing' : 'failing', checked: checked.checked, ...(checked.detail ? { detail: checked.detail } : {}) }
        : { state: 'none' },
      drift: { pending: drift.length, changes: drift.map(driftOf) },
    });
  }

  const hostDrift = pending.filter((c) => c.project === undefined);
  const counted = input.project !== undefined ? pendingIn(projects) + hostDrift.length : pending.length;
  return {
    host: input.hostName,
    checkedAt: now.toISOString(),
    repository: input.repository,
    ...(input.commit ? { commit: input.commit } : {}),
    ...(planned.inventory.commit || planned.inventory.appliedAt
      ? {
          applied: {
            ...(planned.inventory.commit ? { commit: planned.inventory.commit } : {}),
            ...(planned.inventory.appliedAt ? { at: planned.inventory.appliedAt } : {}),
          },
        }
      : {}),
    ...(last ? { lastRun: lastRunOf(summarize(last, runs)) } : {}),
    quarantined: safety.quarantined.map((q) => ({ commit: q.commit, at: q.at, reason: q.reason, projects: q.projects, ...(q.run ? { run: q.run } : {}) })),
    paused: safety.paused.map((p) => ({ project: p.project, at: p.at, failures: p.failures, reason: p.reason })),
    drift: {
      state: errors.length > 0 ? 'unknown' : counted > 0 ? 'pending' : 'in-sync',
      pending: counted,
      ...(errors.length > 0 ? { errors: errors.map((d) => `${d.summary}: ${d.detail}`) } : {}),
      host: hostDrift.map(driftOf),
    },
    projects,
  };
}

function pendingIn(projects: readonly ProjectStatus[]): number {
  return projects.reduce((n, p) => n + p.drift.pending, 0);
}

function lastRunOf(r: RunSummary): NonNullable<StatusDocument['lastRun']> {
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    ...(r.commit ? { commit: r.commit } : {}),
    startedAt: r.startedAt,
    ...(r.endedAt ? { endedAt: r.endedAt } : {}),
    changes: r.changes,
    ...(r.failed ? { failed: r.failed } : {}),
  };
}

export async function status(opts: StatusOptions): Promise<number> {
  const redactor = new Redactor();
  const log = createLogger({ redactor, ...(opts.logLevel ? { level: opts.logLevel } : {}) });
  // A dry run: no run lock, nothing written; its plan is the drift.
  const input = await localRunInput(opts, { dryRun: true, log, redactor });
  const { hostName, host, commit } = input;
  const outcome = await reconcileHost(input);
  if (outcome.stage === 'invalid') return reportInvalid(outcome.repo, opts.repo);
  if (outcome.stage !== 'planned') return 1;
  const doc = await collectStatus({
    host,
    hostName,
    repository: opts.repo,
    ...(commit ? { commit } : {}),
    stateDirectory: outcome.planned.context.stateDirectory,
    manifests: outcome.repo.manifests,
    planned: outcome.planned,
    ...(opts.project !== undefined ? { project: opts.project } : {}),
  });
  // Every line passes the redactor that knows each secret the dry run resolved.
  const write = (text: string) => process.stdout.write(redactor.scrub(text));
  if (opts.output === 'json') write(JSON.stringify(doc, null, 2) + '\n');
  else if (opts.output === 'yaml') write(stringify(doc));
  else if (opts.output === 'markdown') write(renderStatusMarkdown(doc));
  else write(renderStatusText(doc, useColor(process.stdout) ? COLOR : PLAIN));
  return 0;
}

// Each part the project's backup timers cover: its newest outcome, and the newest good one when that failed.
function backupStatus(resources: readonly Resource[], project: string, records: readonly BackupRecord[]): BackupStatus {
  const status: BackupStatus = {};
  for (const part of ['database', 'files', 'drill'] as const) {
    if (!resources.some((r) => r.kind === 'timer' && r.project === project && r.name === `hk-${project}-backup-${part}.timer`)) continue;
    const mine = records.filter((r) => r.part === part);
    const last = mine.at(-1);
    const lastGood = last && !last.ok ? mine.filter((r) => r.ok).at(-1) : undefined;
    status[part] = { ...(last ? { last } : {}), ...(lastGood ? { lastGood } : {}) };
  }
  return status;
}
