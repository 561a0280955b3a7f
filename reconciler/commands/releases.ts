import { stringify } from 'yaml';
import { withRunLock } from '../apply/lock.js';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../apply/lock.js';
import { holdRelease, releaseHold, safetyStatus, type HoldEntry } from '../apply/quarantine.js';
import { createLogger } from '../core/log.js';
import { errorMessage, HostKitError } from '../core/errors.js';
import { Redactor } from '../core/secrets.js';
import { COLOR, PLAIN, useColor, type Style } from '../diff/render/style.js';
import { reconcileHost, type ReconcileInput, type ReconcileOutcome } from '../engine.js';
import type { Repository } from '../manifests/index.js';
import type { Host } from '../hosts/types.js';
import { DEFAULT_STATE_DIRECTORY } from '../manifests/expand.js';
import {
  previousRelease,
  readCurrentRelease,
  readReleases,
  releaseProjects,
  releasesDir,
  withoutCredentials,
  holdDigest,
  type HeldSpec,
  type ProjectReleases,
  type ReleaseMarker,
} from '../drivers/release/records.js';
import { parseLockTimeout } from './failure.js';
import { note } from './quiet.js';
import { reportInvalid } from './operate.js';
import { hostOf, localRunInput, type OnHost } from './run-input.js';

// `hostkit releases` (what each project has on the host, which one serves, which
// run switched to it) and `hostkit rollback --project P --to ID` (switch back to
// a kept release in a run of its own, and hold the project there).

export interface ReleasesOptions {
  project?: string;
  stateDir?: string;
  root?: string;
  output: string;
  /** A --target's host (commands/targets.ts); this machine when absent. */
  on?: OnHost;
}

export interface ReleaseRow {
  id: string;
  current: boolean;
  /** The release that served before the current one (by switch history): never pruned. */
  previous: boolean;
  /** False for an interrupted build: it has no marker, is never switched to and goes on the next run. */
  complete: boolean;
  commit?: string;
  archiveSha256?: string;
  /** The source as the marker has it, any credentials in the URL removed. */
  source?: ReleaseMarker['source'];
  builtAt?: string;
  buildSeconds?: number;
  /** The newest switch to it: when, and by which run. */
  switchedAt?: string;
  run?: string;
}

export interface ProjectReleaseList {
  project: string;
  current?: string;
  /** `current` points somewhere other than one of its releases (a hand edit). */
  strayLink?: string;
  held?: Omit<HoldEntry, 'project' | 'specDigest'>;
  releases: ReleaseRow[];
}

export interface ReleasesDocument {
  stateDirectory: string;
  projects: ProjectReleaseList[];
}

function cleanSource(source: ReleaseMarker['source']): ReleaseMarker['source'] {
  return 'git' in source
    ? { git: { url: withoutCredentials(source.git.url), ref: source.git.ref } }
    : { archive: { url: withoutCredentials(source.archive.url), sha256: source.archive.sha256 } };
}

function rowsOf(r: ProjectReleases): ReleaseRow[] {
  const previous = previousRelease(r.history, r.current);
  return r.releases.map((x) => ({
    id: x.id,
    current: x.current,
    previous: x.id === previous,
    complete: x.complete,
    ...(x.marker?.commit ? { commit: x.marker.commit } : {}),
    ...(x.marker?.archiveSha256 ? { archiveSha256: x.marker.archiveSha256 } : {}),
    ...(x.marker ? { source: cleanSource(x.marker.source), builtAt: x.marker.builtAt, buildSeconds: x.marker.buildSeconds } : {}),
    ...(x.switched ? { switchedAt: x.switched.at, ...(x.switched.run ? { run: x.switched.run } : {}) } : {}),
  }));
}

/** Every project with releases on the host (or only `project`), read from files alone. */
export async function collectReleases(host: Host, stateDirectory: string, project?: string): Promise<ReleasesDocument> {
  const names = project !== undefined ? [project] : await releaseProjects(host, stateDirectory);
  const [lists, safety] = await Promise.all([Promise.all(names.map((n) => readReleases(host, stateDirectory, n))), safetyStatus(host, stateDirectory)]);
  return {
    stateDirectory,
    projects: lists.map((r) => {
      const hold = safety.held.find((h) => h.project === r.project);
      return {
        project: r.project,
        ...(r.current !== undefined ? { current: r.current } : {}),
        ...(r.strayLink !== undefined ? { strayLink: r.strayLink } : {}),
        ...(hold ? { held: { release: hold.release, at: hold.at, ...(hold.run ? { run: hold.run } : {}) } } : {}),
        releases: rowsOf(r),
      };
    }),
  };
}

const when = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');

function sourceLine(r: ReleaseRow): string {
  if (!r.source) return '';
  return 'git' in r.source ? `${r.source.git.url} ${r.source.git.ref}` : `${r.source.archive.url}`;
}

/** Aligned text, newest release first, the current one marked with `*`. */
export function renderReleasesText(doc: ReleasesDocument, style: Style = PLAIN): string {
  if (doc.projects.length === 0) return `No releases on this host (no /srv/NAME/releases, no switch history in ${doc.stateDirectory}/releases).\n`;
  const lines: string[] = [];
  for (const p of doc.projects) {
    if (lines.length > 0) lines.push('');
    const head = p.current ? `current ${p.current}` : p.strayLink ? `current -> ${p.strayLink} (not one of its releases)` : 'no current release';
    lines.push(`${style.bold(p.project)}  ${head}`);
    if (p.held)
      lines.push(
        style.yellow(
          `  held on ${p.held.release} since ${when(p.held.at)} (rollback --to); a commit that changes its source or \`hostkit resume --project ${p.project}\` releases it`,
        ),
      );
    if (p.releases.length === 0) lines.push(`  no releases in ${releasesDir(p.project)}`);
    const cells = p.releases.map((r) => [
      `${r.current ? '*' : ' '} ${r.id}`,
      (r.commit ?? r.archiveSha256 ?? '-').slice(0, 12),
      r.complete ? `built ${when(r.builtAt!)} in ${r.buildSeconds}s` : 'unfinished',
      r.run ? `switched ${when(r.switchedAt!)} by run ${r.run}` : r.switchedAt ? `switched ${when(r.switchedAt)}` : '',
      [sourceLine(r), r.previous ? '(previous)' : '', r.complete ? '' : 'an interrupted build: never switched to, removed on the next run']
        .filter(Boolean)
        .join('  '),
    ]);
    const widths = [0, 1, 2, 3].map((i) => Math.max(0, ...cells.map((c) => c[i]!.length)));
    for (const [i, c] of cells.entries()) {
      const text = `  ${c.map((x, j) => (j < 4 ? x.padEnd(widths[j]!) : x)).join('  ')}`.trimEnd();
      const r = p.releases[i]!;
      lines.push(r.current ? style.green(text) : r.complete ? text : style.yellow(text));
    }
  }
  return lines.join('\n') + '\n';
}

export async function releases(opts: ReleasesOptions): Promise<number> {
  const host = hostOf(opts);
  const doc = await collectReleases(host, opts.stateDir ?? DEFAULT_STATE_DIRECTORY, opts.project);
  if (opts.project !== undefined && doc.projects[0]!.releases.length === 0 && !doc.projects[0]!.current) {
    process.stderr.write(`hostkit: error: project ${opts.project} has no releases on this host (${releasesDir(opts.project)} is empty or missing)\n`);
    return 1;
  }
  if (opts.output === 'json') process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  else if (opts.output === 'yaml') process.stdout.write(stringify(doc));
  else process.stdout.write(renderReleasesText(doc, useColor(process.stdout) ? COLOR : PLAIN));
  return 0;
}

/** What `hostkit rollback --project P --to ID` asks. */
export interface SwitchRequest {
  project: string;
  to: string;
  lockTimeoutMs?: number;
}

export type SwitchOutcome =
  /** Nothing was done: the manifests are invalid (their diagnostics say why). */
  | { status: 'invalid'; project: string; release: string; repo: Repository }
  | { status: 'switched'; project: string; release: string; run?: string; hold: HoldEntry; outcome: ReconcileOutcome }
  /** The run failed (verify or health) and was rolled back: the hold is removed again. */
  | { status: 'rolled-back'; project: string; release: string; run?: string; failed: { id: string; error: string }; outcome: ReconcileOutcome };

const releaseId = (project: string) => `release/${project}`;

/** Refuses (RELEASE_NOT_KEPT) unless `to` is a complete release of `project` on the host, naming the ones that are. */
export async function assertKeptRelease(host: Host, stateDirectory: string, project: string, to: string): Promise<void> {
  const r = await readReleases(host, stateDirectory, project);
  if (r.releases.some((x) => x.id === to && x.complete)) return;
  const kept = r.releases.filter((x) => x.complete).map((x) => `${x.id}${x.current ? ' (current)' : ''}`);
  const why = r.releases.some((x) => x.id === to) ? `${to} is an unfinished build (it has no completion marker)` : `it has no release ${to}`;
  throw new HostKitError(
    'RELEASE_NOT_KEPT',
    kept.length > 0
      ? `Project ${project}: ${why}; nothing was changed. Its complete releases: ${kept.join(', ')} (\`hostkit releases --project ${project}\`).`
      : `Project ${project}: ${why}; nothing was changed. It has no complete release on this host (${releasesDir(project)}).`,
    { data: { project, release: to, kept: r.releases.filter((x) => x.complete).map((x) => x.id) } },
  );
}

/**
 * Switch `project` to its kept release `to` and hold it there: a dry run finds the
 * project's release spec (its digest binds the hold) and units; the hold is written
 * under the run lock; then one journaled, health-checked apply of only the release
 * and the project's units, in which the release driver desires the held release. If
 * that run fails it is rolled back (current points where it did) and the hold is
 * removed; if anything throws after the hold was written, the hold is removed too.
 */
export async function switchToRelease(
  input: ReconcileInput,
  request: SwitchRequest,
  engine: (input: ReconcileInput) => Promise<ReconcileOutcome> = reconcileHost,
): Promise<SwitchOutcome> {
  const { host } = input;
  const { project, to } = request;
  const dry = await engine({ ...input, dryRun: true });
  if (dry.stage === 'invalid') return { status: 'invalid', project, release: to, repo: dry.repo };
  const planned = dry.planned;
  const stateDirectory = planned.context.stateDirectory;
  const projects = [...new Set(planned.resources.flatMap((r) => (r.project ? [r.project] : [])))].sort();
  if (!projects.includes(project))
    throw new HostKitError('UNKNOWN_PROJECT', `No project ${project} is placed on Host ${input.hostName}; its projects: ${projects.join(', ') || '(none)'}.`, {
      data: { project, known: projects },
    });
  const release = planned.resources.find((r) => r.id === releaseId(project));
  if (!release)
    throw new HostKitError(
      'RELEASE_NO_SOURCE',
      `Project ${project} has no spec.source on Host ${input.hostName}: it has no releases to switch between; nothing was changed.`,
      { data: { project } },
    );
  await assertKeptRelease(host, stateDirectory, project, to);
  const errors = planned.plan.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0)
    throw new HostKitError(
      'RELEASE_NOT_SWITCHED',
      `Project ${project} was not switched to ${to}: the plan for ${input.hostName} has errors (${errors.map((d) => `${d.summary}: ${d.detail}`).join('; ')}); nothing was changed.`,
      { data: { project, release: to } },
    );
  const only = new Set([release.id, ...planned.resources.filter((r) => r.project === project && r.kind === 'unit').map((r) => r.id)]);
  const command = `hostkit rollback --project ${project} --to ${to}`;
  const lock = { timeoutMs: request.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, command, log: input.log, onWait: note };
  const specDigest = holdDigest(release.spec as HeldSpec);
  const hold = await withRunLock(host, stateDirectory, lock, () => holdRelease(host, stateDirectory, { project, release: to, specDigest }));

  const unhold = () => withRunLock(host, stateDirectory, lock, () => releaseHold(host, stateDirectory, project));
  let outcome: ReconcileOutcome;
  try {
    outcome = await engine({ ...input, stateDirectory, dryRun: false, only, operatorRun: true, lockCommand: command });
  } catch (cause) {
    await unhold().catch((error: unknown) => input.log.error({ error: errorMessage(error), project }, 'hold not removed'));
    throw cause;
  }
  if (outcome.stage === 'applied' && outcome.result.status === 'rolled-back') {
    await unhold();
    const run = outcome.result.run;
    return {
      status: 'rolled-back',
      project,
      release: to,
      ...(run ? { run } : {}),
      failed: { id: outcome.result.failed.id, error: outcome.result.failed.error },
      outcome,
    };
  }
  const current = (await readCurrentRelease(host, project))?.id;
  if (outcome.stage !== 'applied' || current !== to) {
    await unhold();
    const why =
      outcome.stage === 'applied'
        ? `the run left current on ${current ?? '(nothing)'}: the release driver did not switch to the held release`
        : outcome.stage === 'planned'
          ? 'the plan has errors'
          : outcome.stage === 'held'
            ? outcome.hold.message
            : 'the manifests became invalid';
    throw new HostKitError('RELEASE_NOT_SWITCHED', `Project ${project} was not switched to ${to}: ${why}. The hold is removed.`, {
      data: { project, release: to, ...(current ? { current } : {}) },
    });
  }
  const run = outcome.result.run;
  const held = run ? await withRunLock(host, stateDirectory, lock, () => holdRelease(host, stateDirectory, { ...hold, at: new Date(hold.at), run })) : hold;
  return { status: 'switched', project, release: to, ...(run ? { run } : {}), hold: held, outcome };
}

export interface RollbackToOptions {
  project: string;
  to: string;
  repo: string;
  host?: string;
  stateDir?: string;
  root?: string;
  cache?: boolean;
  output: string;
  logLevel?: string;
  lockTimeout?: string;
  hostMismatchOk?: boolean;
  on?: OnHost;
}

const REFUSALS = new Set(['RELEASE_NOT_KEPT', 'RELEASE_NO_SOURCE', 'UNKNOWN_PROJECT']);

/** `hostkit rollback --project P --to ID`: exit 0 switched and held, 1 the run failed and was rolled back, 2 refused. */
export async function rollbackTo(opts: RollbackToOptions): Promise<number> {
  const redactor = new Redactor();
  const log = createLogger({ redactor, ...(opts.logLevel ? { level: opts.logLevel } : {}) });
  const lockTimeoutMs = parseLockTimeout(opts.lockTimeout);
  const input = await localRunInput(opts, { dryRun: false, log, redactor });
  let result: SwitchOutcome;
  try {
    result = await switchToRelease(
      { ...input, ...(lockTimeoutMs !== undefined ? { lockTimeoutMs } : {}), ...(opts.hostMismatchOk ? { hostMismatchOk: true } : {}), onLockWait: note },
      { project: opts.project, to: opts.to, ...(lockTimeoutMs !== undefined ? { lockTimeoutMs } : {}) },
    );
  } catch (cause) {
    // Refused before anything changed: exit 2, as a usage error of the release id would.
    if (cause instanceof HostKitError && REFUSALS.has(cause.code)) {
      process.stderr.write(`hostkit: error: ${cause.message} [${cause.code}]\n`);
      return 2;
    }
    throw cause;
  }
  if (result.status === 'invalid') return reportInvalid(result.repo, opts.repo);
  const write = (text: string) => process.stdout.write(redactor.scrub(text));
  const { outcome: _outcome, ...report } = result;
  if (opts.output === 'json') write(JSON.stringify(report, null, 2) + '\n');
  else if (opts.output === 'yaml') write(stringify(report));
  else write(renderSwitch(result, useColor(process.stdout) ? COLOR : PLAIN));
  return result.status === 'switched' ? 0 : 1;
}

export function renderSwitch(result: Exclude<SwitchOutcome, { status: 'invalid' }>, style: Style = PLAIN): string {
  const { project, release } = result;
  if (result.status === 'rolled-back')
    return (
      [
        style.red(`Switching project ${project} to ${release} failed and was rolled back: ${result.failed.id}: ${result.failed.error}`),
        `current points where it did before${result.run ? ` (run ${result.run})` : ''}. The hold on ${release} is removed: the next \`hostkit reconcile\` (or the agent) deploys the manifests again.`,
      ].join('\n') + '\n'
    );
  return (
    [
      style.green(`Project ${project} now serves release ${release}${result.run ? ` (run ${result.run})` : ''}.`),
      style.yellow(
        `Held: project ${project} stays on ${release} until a commit changes its source, build, releases or shared fields, or \`hostkit resume --project ${project}\`.`,
      ),
      style.dim(
        `\`hostkit releases --project ${project}\` lists its releases; \`hostkit resume --project ${project}\` ends the hold, and the next reconcile deploys the manifests' release again.`,
      ),
    ].join('\n') + '\n'
  );
}
