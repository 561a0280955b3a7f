// The application's own code: one `release/NAME` per project with `spec.source`.
// Each release is a directory ROOT/releases/ID holding one commit (or archive) and
// what its build steps made, marked complete last (.hostkit-release.json); ROOT/current
// is a relative symlink to the release in service, switched atomically. A release is
// built once per (commit, build digest): a later run switching back to it reuses it.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { error, type Diagnostic } from '../../core/diagnostics.js';
import { errorMessage, HostKitError, isHostKitError } from '../../core/errors.js';
import { changeBase, type Change, type FieldChange } from '../../diff/model.js';
import { writeRootFile } from '../../hosts/root-files.js';
import type { Host } from '../../hosts/types.js';
import { DEFAULT_ALLOWED_ROOTS } from '../../manifests/primitive.js';
import { runCommand } from '../command/index.js';
import { fileDigest } from '../shared/inputs.js';
import { UserDb } from '../shared/users.js';
import { PROFILES } from '../systemd/render.js';
import type { Driver, DriverContext, WithBackupPaths } from '../types.js';
import { currentPath, releasesDirectory, sharedDirectory } from './project.js';
import { cachedCommit, commitSubjects, exportCommit, fetchCommit, resolveRefs, unpackArchive, type GitSourceSpec, type SourceAccess } from './source/index.js';
import type { ReleaseSpec } from './spec.js';

/** The completion marker, written last into a release: a directory without it is an interrupted build. */
export const MARKER = '.hostkit-release.json';

export interface ReleaseMarker {
  source: { git: { url: string; ref: string } } | { archive: { url: string; sha256: string } };
  commit?: string;
  archiveSha256?: string;
  buildDigest: string;
  builtAt: string;
  buildSeconds: number;
  id: string;
}

export interface Switch {
  id: string;
  at: string;
  run?: string;
}

export interface DesiredRelease {
  /** The commit to serve (git); undefined in a plan that may not contact the source and has no cached answer. */
  commit?: string;
  archiveSha256?: string;
  /** The ref as written (a plan shows it when it cannot resolve it). */
  ref?: string;
  /** sha256 of the build steps and shared paths: a new one builds a new release. */
  buildDigest: string;
  /** Subjects of the commits between the current release and the target, newest first (from the cache only). */
  subjects: string[];
}

export interface ObservedRelease {
  /** The release ROOT/current points to (its ID), if any. */
  current?: string;
  /** Every directory in ROOT/releases, sorted by ID (oldest first); `marker` absent for an interrupted build. */
  releases: { id: string; marker?: ReleaseMarker }[];
  /** Switches to releases, newest last (STATE/releases/NAME.json). */
  history: Switch[];
}

export interface ReleaseUndo {
  /** Where `current` pointed before (undefined: there was no link). */
  previous?: string;
  switched: boolean;
  /** The switch history before this change, to put back. */
  history?: Buffer;
}

/** What one run saw and did, for desire (the current release) and verify (the release switched to). */
export interface ReleaseRun {
  observing?: Promise<Map<string, ObservedRelease>>;
  switched: Map<string, string>;
}

const COMMIT = /^[0-9a-f]{40}$/;
const short = (commit: string | undefined) => (commit ? commit.slice(0, 7) : '(none)');

export function historyPath(stateDirectory: string, project: string): string {
  return path.posix.join(stateDirectory, 'releases', `${project}.json`);
}

/** The digest of what a release's build depends on besides its source: a changed step builds a new release. */
export function buildDigest(spec: ReleaseSpec): string {
  const what = {
    build: spec.build.map((b) => ({ command: b.command, environment: b.environment })),
    shared: spec.shared,
    subdirectory: 'git' in spec.source ? (spec.source.git.subdirectory ?? '') : '',
  };
  return createHash('sha256').update(JSON.stringify(what)).digest('hex');
}

/** A release ID: creation time (sorts), 12 hex of the commit or archive sha256, 4 hex of the build digest. */
export function releaseId(now: Date, content: string, digest: string): string {
  const time = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${time}-${content.slice(0, 12)}-${digest.slice(0, 4)}`;
}

const ID = /^\d{8}T\d{6}Z-[0-9a-f]{12}-[0-9a-f]{4}$/;

function sourceContent(d: { commit?: string; archiveSha256?: string }): string | undefined {
  return d.commit ?? d.archiveSha256;
}

/** The complete release built from `desired`'s content with its build digest (the newest, if several). */
export function matchingRelease(desired: DesiredRelease, observed: ObservedRelease | undefined): string | undefined {
  const content = sourceContent(desired);
  if (!content || !observed) return undefined;
  const same = observed.releases.filter((r) => r.marker && sourceContent(r.marker) === content && r.marker.buildDigest === desired.buildDigest);
  // The current one first: re-applying never switches between two equal builds.
  return (same.find((r) => r.id === observed.current) ?? same.at(-1))?.id;
}

/** The release that served before `current`, by switch history. */
export function previousRelease(history: readonly Switch[], current: string | undefined): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i]!.id !== current) return history[i]!.id;
  return undefined;
}

/**
 * What to remove: interrupted builds (no marker, not current), then the oldest
 * complete releases past `keep`, never the current one nor the one before it.
 */
export function releasesToRemove(observed: ObservedRelease, keep: number): string[] {
  const unfinished = observed.releases.filter((r) => !r.marker && r.id !== observed.current).map((r) => r.id);
  const complete = observed.releases.filter((r) => r.marker || r.id === observed.current).map((r) => r.id);
  const protectedIds = new Set([observed.current, previousRelease(observed.history, observed.current)]);
  const removable = complete.filter((id) => !protectedIds.has(id));
  const excess = Math.max(0, complete.length - keep);
  return [...unfinished, ...removable.slice(0, excess)];
}

function gitSource(spec: ReleaseSpec): GitSourceSpec | undefined {
  if (!('git' in spec.source)) return undefined;
  const { url, ref, subdirectory } = spec.source.git;
  return { url, ref, ...(subdirectory ? { subdirectory } : {}) };
}

async function sourceAccess(spec: ReleaseSpec, ctx: DriverContext, withCredentials: boolean): Promise<SourceAccess> {
  const access: SourceAccess = {
    host: ctx.host,
    project: spec.project,
    user: spec.user,
    stateDirectory: ctx.stateDirectory,
    allowedRoots: ctx.hostManifest.spec?.allowedRoots ?? DEFAULT_ALLOWED_ROOTS,
    log: ctx.log,
  };
  if (!withCredentials || !('git' in spec.source)) return access;
  const credentials: { sshKey?: string; token?: string } = {};
  for (const field of ['sshKey', 'token'] as const) {
    const ref = spec.source.git[field];
    if (!ref) continue;
    const value = await ctx.secrets.resolve(ref);
    if (!value.ok)
      throw new HostKitError('RELEASE_CREDENTIALS_UNAVAILABLE', `project ${spec.project}: source.git.${field}: ${value.reason}`, {
        data: { project: spec.project },
      });
    credentials[field] = value.value;
  }
  return Object.keys(credentials).length > 0 ? { ...access, credentials } : access;
}

async function readJson<T>(host: Host, file: string): Promise<T | undefined> {
  const bytes = await host.readFile(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

// Everything about one project's releases from file reads alone (no process): the link, the directory, the markers, the history.
async function observeOne(host: Host, spec: ReleaseSpec, stateDirectory: string): Promise<ObservedRelease | undefined> {
  const [link, names, history] = await Promise.all([
    host.readlink(currentPath(spec.root)),
    host.readdir(releasesDirectory(spec.root)),
    readJson<{ switches?: Switch[] }>(host, historyPath(stateDirectory, spec.project)),
  ]);
  const ids = (names ?? []).filter((n) => !n.startsWith('.')).sort();
  const markers = await Promise.all(ids.map((id) => readJson<ReleaseMarker>(host, `${releasesDirectory(spec.root)}/${id}/${MARKER}`)));
  const current = link?.startsWith('releases/') ? link.slice('releases/'.length) : link;
  if (current === undefined && ids.length === 0) return undefined;
  return {
    ...(current !== undefined ? { current } : {}),
    releases: ids.map((id, i) => ({ id, ...(markers[i]?.id === id ? { marker: markers[i]! } : {}) })),
    history: history?.switches ?? [],
  };
}

// A build step runs as the service would (its user, its sandbox), but with the network and a persistent cache.
function buildProperties(spec: ReleaseSpec, dir: string): string[] {
  const profile = PROFILES[spec.isolation.profile];
  return [
    `Group=${spec.group}`,
    'UMask=0022',
    `CacheDirectory=hostkit-build/${spec.project}`,
    ...profile,
    ...(profile.includes('ProtectSystem=strict') ? [`ReadWritePaths=${dir}`] : []),
  ];
}

/** Where a project's build cache is (systemd's CacheDirectory=, kept across builds and owned by the project's user). */
export function buildCache(project: string): string {
  return `/var/cache/hostkit-build/${project}`;
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function removeTree(host: Host, dir: string): Promise<void> {
  const r = await host.exec('rm', ['-rf', '--one-file-system', '--', dir]);
  if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', `rm -rf ${dir} exited ${r.exitCode}: ${r.stderr.trim()}`);
}

function specOf(change: Change): ReleaseSpec {
  return change.resource!.spec as ReleaseSpec;
}

/**
 * Build a new release of `desired` in ROOT/releases/ID: the source, the shared
 * links, the build steps, the marker last. If it throws, the directory is removed
 * (or, if the process dies, left without a marker: the next run removes it); the
 * current release is untouched.
 */
async function build(spec: ReleaseSpec, desired: DesiredRelease, ctx: DriverContext): Promise<string> {
  const started = performance.now();
  const id = releaseId(new Date(), sourceContent(desired)!, desired.buildDigest);
  const dir = `${releasesDirectory(spec.root)}/${id}`;
  const { uid, gid } = await ownerOf(ctx.host, spec);
  const mode = spec.webReadable ? 0o755 : 0o750;
  await ctx.host.mkdir(dir, { uid, gid, mode });
  try {
    const access = await sourceAccess(spec, ctx, true);
    const git = gitSource(spec);
    if (git) {
      await fetchCommit(access, git, desired.commit!);
      await exportCommit(access, git, desired.commit!, dir);
    } else if ('archive' in spec.source) {
      await unpackArchive(access, spec.source.archive, dir);
    }
    await ctx.host.setOwnership(dir, { uid, gid, mode });
    for (const shared of spec.shared) await linkShared(ctx.host, spec, dir, shared, { uid, gid });
    for (const [i, step] of spec.build.entries()) await runStep(spec, ctx, dir, id, i, step);
    const marker: ReleaseMarker = {
      source: 'git' in spec.source ? { git: { url: spec.source.git.url, ref: spec.source.git.ref } } : { archive: spec.source.archive },
      ...(desired.commit ? { commit: desired.commit } : {}),
      ...(desired.archiveSha256 ? { archiveSha256: desired.archiveSha256 } : {}),
      buildDigest: desired.buildDigest,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round(performance.now() - started) / 1000,
      id,
    };
    await ctx.host.writeFile(`${dir}/${MARKER}`, JSON.stringify(marker, null, 1) + '\n', { uid: 0, gid: 0, mode: 0o644 });
    ctx.log.info({ project: spec.project, release: id, seconds: marker.buildSeconds }, 'release built');
    return id;
  } catch (cause) {
    await removeTree(ctx.host, dir).catch(() => undefined); // no marker: the next run removes it anyway
    if (isHostKitError(cause) && cause.code === 'RELEASE_BUILD_FAILED') throw cause;
    throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: release ${id} was not built: ${ctx.secrets.scrub(errorMessage(cause))}`, {
      data: { project: spec.project, release: id },
      cause,
    });
  }
}

// ROOT/shared/PATH (made as the project's user if missing) in place of PATH in the release.
async function linkShared(host: Host, spec: ReleaseSpec, dir: string, shared: string, owner: { uid: number; gid: number }): Promise<void> {
  const target = `${sharedDirectory(spec.root)}/${shared}`;
  let at = sharedDirectory(spec.root);
  for (const part of shared.split('/')) {
    at = `${at}/${part}`;
    if (!(await host.stat(at))) await host.mkdir(at, { ...owner, mode: 0o750 });
  }
  const inRelease = `${dir}/${shared}`;
  if (await host.stat(inRelease)) await removeTree(host, inRelease);
  let parent = dir;
  for (const part of shared.split('/').slice(0, -1)) {
    parent = `${parent}/${part}`;
    if (!(await host.stat(parent))) await host.mkdir(parent, { ...owner, mode: 0o755 });
  }
  await host.symlink(target, inRelease);
}

async function runStep(spec: ReleaseSpec, ctx: DriverContext, dir: string, id: string, i: number, step: ReleaseSpec['build'][number]): Promise<void> {
  const cache = buildCache(spec.project);
  const what = `build step ${i + 1} (${step.command.join(' ')}) of release ${id}`;
  let result;
  try {
    result = await runCommand(ctx.host, {
      argv: step.command,
      user: spec.user,
      workingDirectory: dir,
      timeoutMs: step.timeoutMs,
      project: spec.project,
      properties: buildProperties(spec, dir),
      environment: { HOME: cache, XDG_CACHE_HOME: cache, npm_config_cache: `${cache}/npm`, PIP_CACHE_DIR: `${cache}/pip`, ...step.environment },
    });
  } catch (cause) {
    throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: ${what}: ${ctx.secrets.scrub(errorMessage(cause))}`, {
      data: { project: spec.project, release: id, step: i + 1 },
      cause,
    });
  }
  const output = ctx.secrets.scrub([result.stdout, result.stderr].filter((s) => s.trim() !== '').join('\n'));
  ctx.log.info({ project: spec.project, release: id, step: i + 1, exitCode: result.exitCode, output: tail(output, 200) }, 'build step');
  if (result.exitCode !== 0) {
    throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: ${what} exited ${result.exitCode}:\n${tail(output)}`, {
      data: { project: spec.project, release: id, step: i + 1, exitCode: result.exitCode },
    });
  }
}

async function appendSwitch(ctx: DriverContext, project: string, id: string): Promise<void> {
  const file = historyPath(ctx.stateDirectory, project);
  const history = (await readJson<{ switches?: Switch[] }>(ctx.host, file))?.switches ?? [];
  // The run that switched: the one the journal marks current (apply/journal.ts).
  const run = (await readJson<{ run?: string }>(ctx.host, path.posix.join(ctx.stateDirectory, 'current-run.json')))?.run;
  history.push({ id, at: new Date().toISOString(), ...(run ? { run } : {}) });
  await writeRootFile(ctx.host, file, JSON.stringify({ switches: history.slice(-100) }, null, 1) + '\n');
}

/**
 * Releases (kind `release`): see README.md in this folder. Rank 4.5: after the
 * account, directory and env file, before lifecycle commands and units, whose
 * desire reads the release's input digest.
 */
export const releaseDriver: Driver<ReleaseSpec, DesiredRelease, ObservedRelease, ReleaseUndo, 'release', ReleaseRun> & WithBackupPaths = {
  kind: 'release',
  rank: 4.5,
  // Releases are the project's code: removing the project's manifest leaves them (as directories are left).
  orphans: 'report',

  createRun: () => ({ switched: new Map() }),

  // `current` and the switch history: crash recovery and `hostkit rollback` put them back from the run's journal.
  backupPaths(change) {
    const spec = change.resource?.spec as ReleaseSpec | undefined;
    return spec ? [currentPath(spec.root)] : [];
  },

  // The target commit: pinned refs as written; others resolved with one `git ls-remote` per URL
  // in an apply, and only from the cache in a plan (a pull request's plan never contacts a source).
  async desire(resources, ctx, state) {
    const out = new Map<string, { desired: DesiredRelease; diagnostics: Diagnostic[] }>();
    const observed = await state.observing?.catch(() => undefined);
    const remote = ctx.mode === 'apply' ? resources.filter((r) => 'git' in r.spec.source && !COMMIT.test(r.spec.source.git.ref)) : [];
    const resolved =
      remote.length > 0
        ? await resolveRefs(await Promise.all(remote.map(async (r) => ({ access: await sourceAccess(r.spec, ctx, true), source: gitSource(r.spec)! }))))
        : new Map<string, { commit: string } | { error: HostKitError }>();
    for (const r of resources) {
      const spec = r.spec;
      const diagnostics: Diagnostic[] = [];
      const desired: DesiredRelease = { buildDigest: buildDigest(spec), subjects: [] };
      const git = gitSource(spec);
      const access = await sourceAccess(spec, ctx, false);
      if (!git && 'archive' in spec.source) desired.archiveSha256 = spec.source.archive.sha256;
      if (git) {
        desired.ref = git.ref;
        if (COMMIT.test(git.ref)) desired.commit = git.ref;
        else if (ctx.mode === 'plan') {
          const cached = await cachedCommit(access, git);
          if (cached) desired.commit = cached;
        } else {
          const got = resolved.get(spec.project);
          if (got && 'commit' in got) desired.commit = got.commit;
          else
            diagnostics.push(
              error(
                'source not resolved',
                ctx.secrets.scrub(got ? errorMessage(got.error) : `project ${spec.project}: ref ${git.ref} was not resolved`),
                r.origin,
              ),
            );
        }
      }
      const seen = observed?.get(r.id);
      const current = seen?.releases.find((x) => x.id === seen.current)?.marker;
      if (git && desired.commit && current?.commit && current.commit !== desired.commit)
        desired.subjects = await commitSubjects(access, current.commit, desired.commit, 20);
      // The units' input: the content they will run. Unresolved (a plan), it is the current one's, so nothing restarts in the plan.
      const content = sourceContent(desired)
        ? `${sourceContent(desired)}:${desired.buildDigest}`
        : current
          ? `${sourceContent(current)}:${current.buildDigest}`
          : 'unresolved';
      ctx.fileDigests.set(currentPath(spec.root), fileDigest(ctx, `release:${content}`));
      out.set(r.id, { desired, diagnostics });
    }
    return out;
  },

  // File reads only (readlink, readdir, the markers, the history): no process, no network.
  observe(resources, ctx, state) {
    const observing = (async () => {
      const found = await Promise.all(resources.map((r) => observeOne(ctx.host, r.spec, ctx.stateDirectory)));
      const out = new Map<string, ObservedRelease>();
      resources.forEach((r, i) => {
        if (found[i]) out.set(r.id, found[i]!);
      });
      return out;
    })();
    state.observing = observing;
    return observing;
  },

  plan({ resource, desired, observed, orphan }) {
    const base = changeBase(resource);
    if (orphan || !desired)
      return { ...base, action: 'noop', fields: [], disruptive: false, reason: 'no manifest declares it any more: its releases are kept' };
    const spec = resource.spec;
    const current = observed?.releases.find((r) => r.id === observed.current);
    const target = matchingRelease(desired, observed);
    const fields: FieldChange[] = [];
    const content = sourceContent(desired);
    let reason: string | undefined;
    if (!content) {
      // A plan that may not ask the source: the ref as written; the apply resolves it.
      if (!current?.marker) {
        fields.push({ field: '/ref', after: `${desired.ref} (resolved when applied)` });
        reason = `(none) -> ${desired.ref}`;
      }
    } else if (!current || current.id !== target || !current.marker) {
      const before = current?.marker ? sourceContent(current.marker) : undefined;
      fields.push({ field: desired.commit ? '/commit' : '/archiveSha256', ...(before ? { before } : {}), after: content });
      if (desired.subjects.length > 0) fields.push({ field: '/commits', after: desired.subjects });
      fields.push({ field: '/release', ...(current ? { before: current.id } : {}), after: target ?? 'a new release' });
      if (!target && spec.build.length > 0) fields.push({ field: '/build', after: spec.build.map((b) => b.command.join(' ')) });
      if (current && spec.restarts.length > 0) fields.push({ field: '/restarts', after: spec.restarts });
      reason = `${short(before)} -> ${short(content)}`;
    }
    const switching = fields.length > 0;
    const removed = observed ? releasesToRemove(switchedView(observed, switching ? (target ?? '(new)') : observed.current), spec.keep) : [];
    if (removed.length > 0) fields.push({ field: '/removed', after: removed });
    const action = fields.length === 0 ? 'noop' : !observed ? 'create' : 'update';
    return {
      ...base,
      action,
      fields,
      disruptive: switching && current !== undefined,
      ...(reason ? { reason } : {}),
      desired,
      ...(observed ? { observed } : {}),
    } as Change<DesiredRelease, ObservedRelease, ReleaseSpec>;
  },

  // If this throws before the switch, `current` is as it was (a half-built release is removed,
  // or left without its marker for the next run to remove). The switch is one rename.
  async apply(change, ctx, state) {
    const spec = specOf(change);
    const desired = change.desired!;
    const link = currentPath(spec.root);
    const previous = await ctx.host.readlink(link);
    const undo: ReleaseUndo = { switched: false, ...(previous !== undefined ? { previous } : {}) };
    const observed = (await observeOne(ctx.host, spec, ctx.stateDirectory)) ?? { releases: [], history: [] };
    const owner = await ownerOf(ctx.host, spec);
    for (const dir of [releasesDirectory(spec.root), sharedDirectory(spec.root)]) {
      if (!(await ctx.host.stat(dir))) await ctx.host.mkdir(dir, { ...owner, mode: spec.webReadable ? 0o755 : 0o750 });
    }
    for (const id of observed.releases.filter((r) => !r.marker && r.id !== observed.current).map((r) => r.id)) {
      await removeTree(ctx.host, `${releasesDirectory(spec.root)}/${id}`);
    }
    let id = sourceContent(desired) ? matchingRelease(desired, observed) : observed.current;
    if (!id) id = await build(spec, desired, ctx);
    if (id !== observed.current) {
      const historyBytes = await ctx.host.readFile(historyPath(ctx.stateDirectory, spec.project));
      if (historyBytes) undo.history = historyBytes;
      await ctx.host.symlink(`releases/${id}`, link);
      undo.switched = true;
      await appendSwitch(ctx, spec.project, id);
    }
    state.switched.set(change.id, id);
    const after = (await observeOne(ctx.host, spec, ctx.stateDirectory))!;
    for (const old of releasesToRemove(after, spec.keep)) await removeTree(ctx.host, `${releasesDirectory(spec.root)}/${old}`);
    return undo;
  },

  async verify(change, ctx, state) {
    const id = state.switched.get(change.id);
    if (!id) return [];
    const spec = specOf(change);
    const [link, marker] = await Promise.all([ctx.host.readlink(currentPath(spec.root)), ctx.host.readFile(`${releasesDirectory(spec.root)}/${id}/${MARKER}`)]);
    if (link === `releases/${id}` && marker) return [];
    return [error('release not current', `${currentPath(spec.root)} points to ${link ?? '(nothing)'}, not the complete release ${id}`, change.origin)];
  },

  // `current` back where it pointed (the units' settle then restarts them onto it), and the history as it was.
  async rollback(change, undo, ctx) {
    if (!undo.switched) return;
    const spec = specOf(change);
    const link = currentPath(spec.root);
    if (undo.previous !== undefined) await ctx.host.symlink(undo.previous, link);
    else await ctx.host.remove(link);
    const file = historyPath(ctx.stateDirectory, spec.project);
    if (undo.history) await writeRootFile(ctx.host, file, undo.history);
    else await ctx.host.remove(file);
  },
};

// The releases as they will be once `current` points to `id` (prune protects the new current and the one before it).
function switchedView(observed: ObservedRelease, id: string | undefined): ObservedRelease {
  if (id === undefined || id === observed.current) return observed;
  const history = observed.current ? [...observed.history, { id: observed.current, at: '' }] : observed.history;
  const releases = observed.releases.some((r) => r.id === id) ? observed.releases : [...observed.releases, { id, marker: {} as ReleaseMarker }];
  return { current: id, releases, history };
}

async function ownerOf(host: Host, spec: ReleaseSpec): Promise<{ uid: number; gid: number }> {
  const users = await UserDb.read(host);
  const uid = users.users.get(spec.user)?.uid;
  const gid = users.groups.get(spec.group)?.gid;
  if (uid === undefined || gid === undefined) throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: user ${spec.user} does not exist`);
  return { uid, gid };
}

export { ID as RELEASE_ID_PATTERN };
