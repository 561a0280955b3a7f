// STAND-IN, replaced by rel-source's branch (the lead merges its real module over
// this one). It implements the contract's signatures simply so the release driver
// compiles and runs against git sources on file:// URLs: git runs as root with no
// credential handling, and archives are not supported.
import path from 'node:path';
import type { Logger } from 'pino';
import { HostKitError } from '../../../core/errors.js';
import { ensureRootDirectory } from '../../../hosts/root-files.js';
import { describeExec, type Host } from '../../../hosts/types.js';

export interface GitSourceSpec {
  url: string;
  ref: string;
  subdirectory?: string;
  sshKey?: string;
  token?: string;
}
export interface ArchiveSourceSpec {
  url: string;
  sha256: string;
}
export interface SourceAccess {
  host: Host;
  project: string;
  user: string;
  stateDirectory: string;
  allowedRoots: readonly string[];
  credentials?: { sshKey?: string; token?: string };
  log: Logger;
}

const COMMIT = /^[0-9a-f]{40}$/;

function cacheOf(access: SourceAccess): string {
  return path.posix.join(access.stateDirectory, 'sources', access.project);
}

async function git(access: SourceAccess, args: string[]): Promise<string> {
  const result = await access.host.exec('git', ['-c', 'safe.directory=*', '--git-dir', cacheOf(access), ...args], { timeoutMs: 120_000 });
  if (result.exitCode !== 0) {
    throw new HostKitError('COMMAND_FAILED', `project ${access.project}: ${describeExec('git', args, result)}`, { data: { project: access.project } });
  }
  return result.stdout;
}

async function ensureCache(access: SourceAccess): Promise<void> {
  if (await access.host.stat(path.posix.join(cacheOf(access), 'HEAD'))) return;
  await ensureRootDirectory(access.host, path.posix.dirname(cacheOf(access)));
  const r = await access.host.exec('git', ['init', '--quiet', '--bare', cacheOf(access)]);
  if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', describeExec('git', ['init'], r));
}

const refFile = (access: SourceAccess, ref: string) => path.posix.join(cacheOf(access), 'refs', 'hostkit', ref);

/** Commit-pinned refs resolve without network; others: one `git ls-remote` per distinct URL. */
export async function resolveRefs(
  requests: readonly { access: SourceAccess; source: GitSourceSpec }[],
): Promise<Map<string, { commit: string } | { error: HostKitError }>> {
  const out = new Map<string, { commit: string } | { error: HostKitError }>();
  const listings = new Map<string, Promise<string>>();
  for (const { access, source } of requests) {
    if (COMMIT.test(source.ref)) {
      out.set(access.project, { commit: source.ref });
      continue;
    }
    let listing = listings.get(source.url);
    if (!listing) {
      listing = access.host.exec('git', ['ls-remote', '--', source.url], { timeoutMs: 60_000 }).then((r) => {
        if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', `project ${access.project}: ${describeExec('git', ['ls-remote', source.url], r)}`);
        return r.stdout;
      });
      listings.set(source.url, listing);
    }
    try {
      const refs = new Map((await listing).split('\n').map((l) => [l.split('\t')[1] ?? '', l.split('\t')[0] ?? '']));
      const commit = refs.get(`refs/tags/${source.ref}^{}`) ?? refs.get(`refs/tags/${source.ref}`) ?? refs.get(`refs/heads/${source.ref}`);
      if (!commit) throw new HostKitError('COMMAND_FAILED', `project ${access.project}: ${source.url} has no ref ${source.ref}`);
      out.set(access.project, { commit });
    } catch (error) {
      out.set(access.project, { error: error instanceof HostKitError ? error : new HostKitError('COMMAND_FAILED', String(error)) });
    }
  }
  return out;
}

/** The commit the cache last resolved `ref` to, with no network; undefined when unknown. */
export async function cachedCommit(access: SourceAccess, source: GitSourceSpec): Promise<string | undefined> {
  if (COMMIT.test(source.ref)) return source.ref;
  const bytes = await access.host.readFile(refFile(access, source.ref));
  const commit = bytes?.toString('utf8').trim();
  return commit && COMMIT.test(commit) ? commit : undefined;
}

/** Fetch `commit` into the project's cache; no-op when present. */
export async function fetchCommit(access: SourceAccess, source: GitSourceSpec, commit: string): Promise<void> {
  await ensureCache(access);
  const has = await access.host.exec('git', ['-c', 'safe.directory=*', '--git-dir', cacheOf(access), 'cat-file', '-e', `${commit}^{commit}`]);
  if (has.exitCode !== 0) await git(access, ['fetch', '--quiet', '--no-tags', '--', source.url, COMMIT.test(source.ref) ? commit : source.ref]);
  if (!COMMIT.test(source.ref)) await git(access, ['update-ref', `refs/hostkit/${source.ref}`, commit]);
}

/** Subjects of the commits after `from` up to `to`, newest first, from the cache only ([] when unknown). */
export async function commitSubjects(access: SourceAccess, from: string, to: string, limit = 20): Promise<string[]> {
  if (!(await access.host.stat(path.posix.join(cacheOf(access), 'HEAD')))) return [];
  const r = await access.host.exec('git', [
    '-c',
    'safe.directory=*',
    '--git-dir',
    cacheOf(access),
    'log',
    `--max-count=${limit}`,
    '--format=%s',
    `${from}..${to}`,
  ]);
  return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
}

/** Write the tree of `commit` (its `subdirectory`) into the empty directory `dest`, owned by the project's user. */
export async function exportCommit(access: SourceAccess, source: GitSourceSpec, commit: string, dest: string): Promise<void> {
  const tar = `${dest}.tar`;
  await git(access, ['archive', '--format=tar', `--output=${tar}`, source.subdirectory ? `${commit}:${source.subdirectory}` : commit]);
  try {
    for (const [file, args] of [
      ['tar', ['-x', '-f', tar, '-C', dest, '--no-same-owner']],
      ['chown', ['-R', '--', `${access.user}:${access.user}`, dest]],
    ] as const) {
      const r = await access.host.exec(file, args);
      if (r.exitCode !== 0) throw new HostKitError('COMMAND_FAILED', `project ${access.project}: ${describeExec(file, args, r)}`);
    }
  } finally {
    await access.host.remove(tar);
  }
}

/** Not in the stand-in: rel-source's module downloads, checks and unpacks archives. */
export async function unpackArchive(access: SourceAccess, source: ArchiveSourceSpec, dest: string): Promise<void> {
  void dest;
  throw new HostKitError('COMMAND_FAILED', `project ${access.project}: archive sources (${source.url}) are not supported by this build`);
}
