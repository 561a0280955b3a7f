import path from 'node:path';

// Where a project's releases are on the host, and how a release is named: plain
// paths and patterns, no host access (the Project expansion and validation read
// them without loading the driver; records.ts reads and writes what is there).

/** Where every project with a source keeps its releases: /srv/NAME. */
export const PROJECTS_ROOT = '/srv';

/** The completion marker, written last into a release: a directory without it is an interrupted build. */
export const MARKER = '.hostkit-release.json';

/** Switches kept in a project's history file (the oldest go first). */
export const HISTORY_LIMIT = 100;

/** `YYYYMMDDTHHMMSSZ-<12 hex of the commit or archive sha256>-<4 hex of the build digest>`. */
export const RELEASE_ID = /^(\d{8}T\d{6}Z)-([0-9a-f]{12})-([0-9a-f]{4})$/;

export function projectRoot(project: string): string {
  return path.posix.join(PROJECTS_ROOT, project);
}

export function releasesDir(project: string): string {
  return path.posix.join(projectRoot(project), 'releases');
}

export function releaseDir(project: string, id: string): string {
  return path.posix.join(releasesDir(project), id);
}

/** /srv/NAME/current: a symlink to `releases/ID` (relative, so the tree can be moved or mounted elsewhere). */
export function currentLink(project: string): string {
  return path.posix.join(projectRoot(project), 'current');
}

/** What `current` points to for release `id`, as written into the link. */
export function currentTarget(id: string): string {
  return `releases/${id}`;
}

export function sharedDir(project: string): string {
  return path.posix.join(projectRoot(project), 'shared');
}

export function historyDir(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'releases');
}

/** STATE/releases/NAME.json: the project's switch history. */
export function historyPath(stateDirectory: string, project: string): string {
  return path.posix.join(historyDir(stateDirectory), `${project}.json`);
}
