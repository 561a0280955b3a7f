// Building one release: ROOT/releases/ID made as the project's user, its source
// written into it (a commit from the project's cache, or an unpacked archive),
// the shared paths linked in, the build steps run, and the completion marker
// written last. Without the marker a directory is an interrupted build: it is
// never switched to and the next apply removes it.
import { createHash } from 'node:crypto';
import { errorMessage, HostKitError, isHostKitError } from '../../core/errors.js';
import { DEFAULT_ALLOWED_ROOTS } from '../../manifests/primitive.js';
import type { Host } from '../../hosts/types.js';
import { runCommand } from '../shared/transient.js';
import { PROFILES } from '../shared/unit-files.js';
import { UserDb } from '../shared/users.js';
import type { DriverContext } from '../types.js';
import { MARKER, newReleaseId, releaseDir, sharedDir, type ReleaseMarker } from './records.js';
import { exportCommit, fetchCommit, unpackArchive, type GitSourceSpec, type SourceAccess } from './source/index.js';
import type { ReleaseSpec } from './spec.js';

/** What a release is built from: the commit (git) or the archive's sha256, and the build digest. */
export interface ReleaseContent {
  commit?: string;
  archiveSha256?: string;
  buildDigest: string;
}

/** The commit or archive sha256 a release holds. */
export function contentOf(c: { commit?: string; archiveSha256?: string }): string | undefined {
  return c.commit ?? c.archiveSha256;
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

/** The git source as the source module takes it (secret references stay out: their values come in SourceAccess). */
export function gitSource(spec: ReleaseSpec): GitSourceSpec | undefined {
  if (!('git' in spec.source)) return undefined;
  const { url, ref, subdirectory } = spec.source.git;
  return { url, ref, ...(subdirectory ? { subdirectory } : {}) };
}

/** How the source module reaches the project's source: as its user, with its credentials resolved when `withCredentials`. */
export async function sourceAccess(spec: ReleaseSpec, ctx: DriverContext, withCredentials: boolean): Promise<SourceAccess> {
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

/** Where a project's build cache is (systemd's CacheDirectory=, kept across builds and owned by the project's user). */
export function buildCache(project: string): string {
  return `/var/cache/hostkit-build/${project}`;
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

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** `rm -rf` of a release (or a path in one): one process, never crossing into another file system. */
export async function removeTree(host: Host, dir: string): Promise<void> {
  const r = await host.exec('rm', ['-rf', '--one-file-system', '--', dir]);
  if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', `rm -rf ${dir} exited ${r.exitCode}: ${r.stderr.trim()}`);
}

/** The project's user and group ids (a release is theirs). */
export async function ownerOf(host: Host, spec: ReleaseSpec): Promise<{ uid: number; gid: number }> {
  const users = await UserDb.read(host);
  const uid = users.users.get(spec.user)?.uid;
  const gid = users.groups.get(spec.group)?.gid;
  if (uid === undefined || gid === undefined) throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: user ${spec.user} does not exist`);
  return { uid, gid };
}

/**
 * Build a new release of `content` in ROOT/releases/ID and return its ID: the
 * source, the shared links, the build steps, the marker last. If it throws, the
 * directory is removed (or, if the process dies, left without a marker: the next
 * apply removes it); `current` is untouched.
 */
export async function buildRelease(spec: ReleaseSpec, content: ReleaseContent, ctx: DriverContext): Promise<string> {
  const started = performance.now();
  const id = newReleaseId(new Date(), contentOf(content)!, content.buildDigest);
  const dir = releaseDir(spec.project, id);
  const { uid, gid } = await ownerOf(ctx.host, spec);
  const mode = spec.webReadable ? 0o755 : 0o750;
  await ctx.host.mkdir(dir, { uid, gid, mode });
  try {
    const access = await sourceAccess(spec, ctx, true);
    const git = gitSource(spec);
    if (git) {
      await fetchCommit(access, git, content.commit!);
      await exportCommit(access, git, content.commit!, dir);
    } else if ('archive' in spec.source) {
      await unpackArchive(access, spec.source.archive, dir);
    }
    await ctx.host.setOwnership(dir, { uid, gid, mode });
    for (const shared of spec.shared) await linkShared(ctx.host, spec, dir, shared, { uid, gid });
    for (const [i, step] of spec.build.entries()) await runStep(spec, ctx, dir, id, i, step);
    const marker: ReleaseMarker = {
      source: 'git' in spec.source ? { git: { url: spec.source.git.url, ref: spec.source.git.ref } } : { archive: spec.source.archive },
      ...(content.commit ? { commit: content.commit } : {}),
      ...(content.archiveSha256 ? { archiveSha256: content.archiveSha256 } : {}),
      buildDigest: content.buildDigest,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round(performance.now() - started) / 1000,
      id,
    };
    await ctx.host.writeFile(`${dir}/${MARKER}`, JSON.stringify(marker, null, 1) + '\n', { uid: 0, gid: 0, mode: 0o644 });
    ctx.log.info({ project: spec.project, release: id, seconds: marker.buildSeconds }, 'release built');
    return id;
  } catch (cause) {
    await removeTree(ctx.host, dir).catch(() => undefined); // no marker: the next apply removes it anyway
    if (isHostKitError(cause) && cause.code === 'RELEASE_BUILD_FAILED') throw cause;
    // A source's own error (SOURCE_*, ARCHIVE_*) keeps its code: it names the project and the cause.
    if (isHostKitError(cause) && /^(SOURCE|ARCHIVE)_/.test(cause.code)) throw cause;
    throw new HostKitError('RELEASE_BUILD_FAILED', `project ${spec.project}: release ${id} was not built: ${ctx.secrets.scrub(errorMessage(cause))}`, {
      data: { project: spec.project, release: id },
      cause,
    });
  }
}

// ROOT/shared/PATH (made as the project's user if missing) in place of PATH in the release.
async function linkShared(host: Host, spec: ReleaseSpec, dir: string, shared: string, owner: { uid: number; gid: number }): Promise<void> {
  const root = sharedDir(spec.project);
  const target = `${root}/${shared}`;
  let at = root;
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
