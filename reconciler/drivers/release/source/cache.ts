import path from 'node:path';
import { HostKitError } from '../../../core/errors.js';
import { ensureRootDirectory } from '../../../hosts/root-files.js';
import { describeExec } from '../../../hosts/types.js';
import type { SourceAccess } from './types.js';
import { displayUrl } from './urls.js';
import { execAs, type SourceUser } from './user.js';

// The project's source cache: STATE/sources/NAME/, a bare git repository owned
// by the project's user (0700), so a new commit fetches only the delta. Beside
// git's own files it holds HostKit's: the git configuration its commands read
// (hostkit.gitconfig), the ssh known hosts (hostkit-known_hosts), what each ref
// last resolved to (hostkit-refs.json) and, while an archive is unpacked, its
// download. STATE stays root's; it and STATE/sources get the search bit for
// others (0711: no listing, nothing readable) so the user can reach its own cache.

const PROJECT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function sourcesDirectory(stateDirectory: string): string {
  return path.posix.join(stateDirectory, 'sources');
}

export function cacheDirectory(access: Pick<SourceAccess, 'stateDirectory' | 'project'>): string {
  if (!PROJECT_NAME.test(access.project)) {
    throw new HostKitError('SOURCE_PATH_NOT_ALLOWED', `project name ${JSON.stringify(access.project)} cannot name a source cache`, {
      data: { project: access.project },
    });
  }
  return path.posix.join(sourcesDirectory(access.stateDirectory), access.project);
}

/** Git's environment for a command in the cache: HostKit's configuration only, no prompts, no programs from URLs. */
export function gitEnv(cache: string): Record<string, string> {
  return {
    HOME: cache,
    GIT_CONFIG_GLOBAL: path.posix.join(cache, 'hostkit.gitconfig'),
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    SSH_ASKPASS: '/bin/false',
    GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
    LC_ALL: 'C',
  };
}

/**
 * Make the cache (once) and its git configuration (when `safeDirectory`, a
 * file:// repository owned by someone else, is not in it yet). If this throws,
 * what exists is a directory or an empty bare repository: the next call
 * finishes it.
 */
export async function ensureCache(access: SourceAccess, user: SourceUser, safeDirectory?: string): Promise<string> {
  const { host } = access;
  const cache = cacheDirectory(access);
  const sources = sourcesDirectory(access.stateDirectory);
  if (!(await host.stat(path.posix.join(cache, 'HEAD')))) {
    await ensureRootDirectory(host, sources);
    for (const dir of [access.stateDirectory, sources]) {
      const st = await host.stat(dir);
      if (st && (st.mode & 0o011) !== 0o011) await host.setOwnership(dir, { uid: st.uid, gid: st.gid, mode: st.mode | 0o011 });
    }
    await host.mkdir(cache, { uid: user.uid, gid: user.gid, mode: 0o700 }, { managed: true });
    await host.setOwnership(cache, { uid: user.uid, gid: user.gid, mode: 0o700 }, { managed: true });
    await writeGitConfig(access, user, cache, []);
    const init = await execAs(access, user, ['git', 'init', '--quiet', '--bare', '.'], { cwd: cache, env: gitEnv(cache), timeoutMs: 60_000 });
    if (init.exitCode !== 0) throw cacheError(access, describeExec('git', ['init', '--bare', cache], init));
  }
  if (safeDirectory !== undefined) {
    const existing = await readGitConfigDirectories(access, cache);
    if (!existing.includes(safeDirectory)) await writeGitConfig(access, user, cache, [...existing, safeDirectory]);
  }
  return cache;
}

function cacheError(access: SourceAccess, why: string): HostKitError {
  return new HostKitError('COMMAND_FAILED', `project ${access.project}: the source cache could not be made: ${why}`, { data: { project: access.project } });
}

// A file:// repository owned by another user is refused by git ("dubious
// ownership") unless named in protected configuration; the global file is what
// reaches the upload-pack git starts for a local URL (GIT_CONFIG_COUNT does not).
async function writeGitConfig(access: SourceAccess, user: SourceUser, cache: string, safeDirectories: readonly string[]): Promise<void> {
  const lines = ['# Written by HostKit: the git configuration of source commands for this project.', '[gc]', '\tauto = 0', '[safe]'];
  for (const dir of safeDirectories) lines.push(`\tdirectory = ${dir}`, `\tdirectory = ${path.posix.join(dir, '.git')}`);
  await access.host.writeFile(
    path.posix.join(cache, 'hostkit.gitconfig'),
    lines.join('\n') + '\n',
    { uid: user.uid, gid: user.gid, mode: 0o644 },
    { managed: true },
  );
}

async function readGitConfigDirectories(access: SourceAccess, cache: string): Promise<string[]> {
  const text = (await access.host.readFile(path.posix.join(cache, 'hostkit.gitconfig'), { managed: true }))?.toString('utf8') ?? '';
  return [...text.matchAll(/^\tdirectory = (.*)$/gm)].map((m) => m[1]!).filter((d) => !d.endsWith('/.git'));
}

export interface RefRecord {
  commit: string;
  at: string;
}

const REFS_FILE = 'hostkit-refs.json';

function refKey(url: string, ref: string): string {
  return `${displayUrl(url)} ${ref}`;
}

/** What `ref` of `url` last resolved to when it was fetched, read without any process. */
export async function readRefRecord(access: SourceAccess, url: string, ref: string): Promise<RefRecord | undefined> {
  const bytes = await access.host.readFile(path.posix.join(cacheDirectory(access), REFS_FILE), { managed: true }).catch(() => undefined);
  if (!bytes) return undefined;
  try {
    const record = (JSON.parse(bytes.toString('utf8')) as { refs?: Record<string, RefRecord> }).refs?.[refKey(url, ref)];
    return record && /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/.test(record.commit) ? record : undefined;
  } catch {
    return undefined;
  }
}

export async function writeRefRecord(access: SourceAccess, user: SourceUser, url: string, ref: string, commit: string): Promise<void> {
  const file = path.posix.join(cacheDirectory(access), REFS_FILE);
  let refs: Record<string, RefRecord>;
  try {
    refs = (JSON.parse((await access.host.readFile(file, { managed: true }))?.toString('utf8') ?? '{}') as { refs?: Record<string, RefRecord> }).refs ?? {};
  } catch {
    refs = {};
  }
  if (refs[refKey(url, ref)]?.commit === commit) return;
  refs[refKey(url, ref)] = { commit, at: new Date().toISOString() };
  await access.host.writeFile(file, JSON.stringify({ refs }, null, 1) + '\n', { uid: user.uid, gid: user.gid, mode: 0o644 }, { managed: true });
}
