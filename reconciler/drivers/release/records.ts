// A project's releases as the host keeps them, in one place for the release
// driver and the commands that read them (`hostkit releases`, `rollback --to`,
// status reports):
//
//   /srv/NAME/releases/ID/                 one commit (or archive) and what its build made
//   /srv/NAME/releases/ID/.hostkit-release.json   the completion marker, written last
//   /srv/NAME/current -> releases/ID       a relative symlink, switched atomically
//   /srv/NAME/shared/PATH                  kept across releases, linked into each one
//   STATE/releases/NAME.json               the switch history: {switches: [{id, at, run}]}, newest last
//
// Reading is file reads only (readdir, readlink, the markers): no process, no network.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { writeRootFile } from '../../hosts/root-files.js';
import { currentLink, HISTORY_LIMIT, historyDir, historyPath, MARKER, PROJECTS_ROOT, projectRoot, RELEASE_ID, releaseDir, releasesDir } from './layout.js';
import type { Host } from '../../hosts/types.js';

export {
  currentLink,
  currentTarget,
  HISTORY_LIMIT,
  historyDir,
  historyPath,
  MARKER,
  PROJECTS_ROOT,
  projectRoot,
  RELEASE_ID,
  releaseDir,
  releasesDir,
  sharedDir,
} from './layout.js';

/** `.hostkit-release.json`, written last into a finished release. Never holds a credential. */
export interface ReleaseMarker {
  /** The source as the manifest wrote it, without `subdirectory`, `sshKey` or `token`. */
  source: { git: { url: string; ref: string } } | { archive: { url: string; sha256: string } };
  /** The commit the release holds (git sources). */
  commit?: string;
  /** The archive's sha256 (archive sources). */
  archiveSha256?: string;
  /** sha256 of the build steps (and what else a build depends on besides the source). */
  buildDigest: string;
  /** ISO time the build finished. */
  builtAt: string;
  buildSeconds: number;
  id: string;
}

/** One switch of `current`: to release `id`, at `at` (ISO), by run `run`. */
export interface Switch {
  id: string;
  at: string;
  run?: string;
}

export interface ReleaseRecord {
  id: string;
  /** Absent for an interrupted build (no marker, or one that names another release): it is never switched to. */
  marker?: ReleaseMarker;
  complete: boolean;
  current: boolean;
  /** The newest switch to this release in the history: when, and by which run, it was put in service last. */
  switched?: Switch;
}

export interface ProjectReleases {
  project: string;
  /** The release `current` points to; undefined when there is no link (or it points outside releases/). */
  current?: string;
  /** The link as written, when it is not `releases/ID` (a hand edit). */
  strayLink?: string;
  /** Every directory in /srv/NAME/releases, newest first (ids sort by creation time). */
  releases: ReleaseRecord[];
  /** The switch history (STATE/releases/NAME.json), oldest first. */
  history: Switch[];
}

async function readJson<T>(host: Host, file: string): Promise<T | undefined> {
  const bytes = await host.readFile(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    return undefined; // a marker cut short by a kill, or a hand edit: read as absent
  }
}

/** The release id a `current` link names, for `releases/ID` (or an absolute /srv/NAME/releases/ID). */
export function linkedRelease(project: string, link: string | undefined): string | undefined {
  if (link === undefined) return undefined;
  const absolute = link.startsWith('/') ? link : path.posix.join(projectRoot(project), link);
  const dir = path.posix.dirname(absolute);
  return dir === releasesDir(project) ? path.posix.basename(absolute) : undefined;
}

/** A marker is a release's only when it names that release: one copied from another release does not finish it. */
async function readMarker(host: Host, project: string, id: string): Promise<ReleaseMarker | undefined> {
  const marker = await readJson<ReleaseMarker>(host, path.posix.join(releaseDir(project, id), MARKER));
  return marker && typeof marker === 'object' && marker.id === id ? marker : undefined;
}

/**
 * The releases of `project` on the host: one readdir of /srv/NAME/releases, the
 * readlink of `current`, one marker read per release and the switch history.
 * Names starting with a dot (a build's temporary directory) are not releases.
 */
export async function readReleases(host: Host, stateDirectory: string, project: string): Promise<ProjectReleases> {
  const [link, names, history] = await Promise.all([
    host.readlink(currentLink(project)),
    host.readdir(releasesDir(project)),
    readHistory(host, stateDirectory, project),
  ]);
  const ids = (names ?? []).filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const markers = await Promise.all(ids.map((id) => readMarker(host, project, id)));
  const current = linkedRelease(project, link);
  return {
    project,
    ...(current !== undefined ? { current } : {}),
    ...(link !== undefined && current === undefined ? { strayLink: link } : {}),
    releases: ids.map((id, i) => {
      const switched = lastSwitchTo(history, id);
      return {
        id,
        ...(markers[i] ? { marker: markers[i] } : {}),
        complete: markers[i] !== undefined,
        current: id === current,
        ...(switched ? { switched } : {}),
      };
    }),
    history,
  };
}

/** The release serving now: readlink plus its one marker. Undefined when `current` does not name a release. */
export async function readCurrentRelease(host: Host, project: string): Promise<{ id: string; marker?: ReleaseMarker } | undefined> {
  const id = linkedRelease(project, await host.readlink(currentLink(project)));
  if (id === undefined) return undefined;
  const marker = await readMarker(host, project, id);
  return { id, ...(marker ? { marker } : {}) };
}

/** The switch history of `project`, oldest first; [] when there is none (or it is unreadable). */
export async function readHistory(host: Host, stateDirectory: string, project: string): Promise<Switch[]> {
  const file = await readJson<{ switches?: unknown }>(host, historyPath(stateDirectory, project));
  const switches = Array.isArray(file?.switches) ? (file.switches as unknown[]) : [];
  return switches.filter(
    (s): s is Switch => typeof s === 'object' && s !== null && typeof (s as Switch).id === 'string' && typeof (s as Switch).at === 'string',
  );
}

/**
 * Record that `current` now points to `entry.id`: appended to STATE/releases/NAME.json
 * (root's, 0600, written atomically), keeping the newest HISTORY_LIMIT. If this throws,
 * the file has its previous content. Returns the history as written.
 */
export async function appendSwitch(host: Host, stateDirectory: string, project: string, entry: Switch): Promise<Switch[]> {
  const history = [...(await readHistory(host, stateDirectory, project)), { id: entry.id, at: entry.at, ...(entry.run ? { run: entry.run } : {}) }];
  const kept = history.slice(-HISTORY_LIMIT);
  await writeRootFile(host, historyPath(stateDirectory, project), JSON.stringify({ switches: kept }, null, 1) + '\n');
  return kept;
}

/**
 * "The one before it": the release that served before `current` started to, by
 * the switch history. That is the newest switch to another release before the
 * newest switch to `current`; when the history never switched to `current` (it
 * was lost or edited), the newest switch to another release. Undefined when there
 * is no current release or nothing served before it.
 */
export function previousRelease(history: readonly Switch[], current: string | undefined): string | undefined {
  if (current === undefined) return undefined;
  let i = history.length - 1;
  while (i >= 0 && history[i]!.id !== current) i--;
  if (i < 0) i = history.length;
  for (let j = i - 1; j >= 0; j--) if (history[j]!.id !== current) return history[j]!.id;
  return undefined;
}

/** The newest switch to `id` (the run that put it in service last), if any. */
export function lastSwitchTo(history: readonly Switch[], id: string): Switch | undefined {
  for (let i = history.length - 1; i >= 0; i--) if (history[i]!.id === id) return history[i];
  return undefined;
}

/**
 * A new release's id: its creation time (UTC, to the second), 12 hex of the commit
 * (or of the archive's sha256) and 4 hex of the build digest. Ids of a project sort
 * by creation time as plain strings. Throws on a content or digest that is not hex.
 */
export function newReleaseId(date: Date, commitOrSha256: string, buildDigest: string): string {
  if (!/^[0-9a-f]{12,}$/.test(commitOrSha256)) throw new Error(`Expected a commit id or sha256 in lowercase hex, got ${JSON.stringify(commitOrSha256)}`);
  if (!/^[0-9a-f]{4,}$/.test(buildDigest)) throw new Error(`Expected a build digest in lowercase hex, got ${JSON.stringify(buildDigest)}`);
  const time = date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${time}-${commitOrSha256.slice(0, 12)}-${buildDigest.slice(0, 4)}`;
}

/** The parts of a release id, or undefined when `id` is not one. */
export function parseReleaseId(id: string): { createdAt: Date; content: string; build: string } | undefined {
  const m = RELEASE_ID.exec(id);
  if (!m) return undefined;
  const t = m[1]!;
  const createdAt = new Date(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}Z`);
  return Number.isNaN(createdAt.getTime()) ? undefined : { createdAt, content: m[2]!, build: m[3]! };
}

/** What a hold is bound to: the fields of the release resource's spec a commit changes. */
export interface HeldSpec {
  source: unknown;
  build: unknown;
  keep: unknown;
  shared: unknown;
}

// JSON with object keys sorted, so equal specs digest alike whatever order expansion built them in.
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value ?? null);
}

/**
 * The digest a hold (`hostkit rollback --to`) stores: of the release spec's source,
 * build, keep and shared fields. While a plan's release spec digests alike, the
 * project stays on the held release; a commit changing any of them ends the hold.
 */
export function holdDigest(spec: HeldSpec): string {
  const what = { source: spec.source, build: spec.build, keep: spec.keep, shared: spec.shared };
  return createHash('sha256').update(canonical(what)).digest('hex').slice(0, 16);
}

/** A source for people: the URL without credentials, and the ref or the sha256 (12 hex). */
export function sourceText(source: ReleaseMarker['source']): string {
  if ('git' in source) return `${withoutCredentials(source.git.url)} ${source.git.ref}`;
  return `${withoutCredentials(source.archive.url)} sha256:${source.archive.sha256.slice(0, 12)}`;
}

/** A URL with any user name and password removed (scp-like `git@host:path` stays as written: it holds none). */
export function withoutCredentials(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.username && !parsed.password) return url;
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

/**
 * The projects with releases on the host: those with a switch history in
 * STATE/releases and those with a /srv/NAME/releases directory. Sorted.
 */
export async function releaseProjects(host: Host, stateDirectory: string): Promise<string[]> {
  const histories = ((await host.readdir(historyDir(stateDirectory))) ?? []).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length));
  const candidates = ((await host.readdir(PROJECTS_ROOT)) ?? []).filter((n) => !n.startsWith('.'));
  const withDir = await Promise.all(candidates.map(async (n) => ((await host.stat(releasesDir(n)))?.type === 'directory' ? n : undefined)));
  return [...new Set([...histories, ...withDir.filter((n): n is string => n !== undefined)])].sort();
}
