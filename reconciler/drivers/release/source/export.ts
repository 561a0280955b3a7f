import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { HostKitError } from '../../../core/errors.js';
import { cacheDirectory } from './cache.js';
import { git, isCommitId } from './git.js';
import type { GitSourceSpec, SourceAccess } from './types.js';
import { displayUrl, redact } from './urls.js';
import { sourceUser, type SourceUser } from './user.js';

/**
 * `dest` as an empty directory owned by the project's user (made when missing,
 * its parent must exist); SOURCE_DESTINATION_NOT_EMPTY when something is in it.
 */
export async function prepareDestination(access: SourceAccess, user: SourceUser, dest: string): Promise<void> {
  const { host } = access;
  const st = await host.stat(dest);
  if (!st) await host.mkdir(dest, { uid: user.uid, gid: user.gid, mode: 0o755 }, { managed: true });
  else if (st.type !== 'directory' || ((await host.readdir(dest)) ?? []).length > 0) {
    throw new HostKitError('SOURCE_DESTINATION_NOT_EMPTY', `project ${access.project}: ${dest} is not an empty directory; nothing was written to it`, {
      data: { project: access.project, dest },
    });
  }
  await host.setOwnership(dest, { uid: user.uid, gid: user.gid, mode: st ? st.mode : 0o755 }, { managed: true });
}

/** A subdirectory as git names it inside a tree: relative, plain segments. */
export function subdirectoryProblem(subdirectory: string): string | undefined {
  const segments = subdirectory.replace(/\/+$/, '').split('/');
  if (subdirectory.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith(':'))) {
    return `subdirectory ${JSON.stringify(subdirectory)} is not a plain relative path`;
  }
  return undefined;
}

/**
 * Write the tree of `commit` (its `subdirectory`) into the empty directory
 * `dest`, as the project's user: `git read-tree` into a private index, then
 * `git checkout-index` (the exact tree: no export-ignore, submodules empty).
 * If this throws, `dest` may hold part of the tree; the caller removes it (an
 * unfinished release has no marker).
 */
export async function exportCommit(access: SourceAccess, source: GitSourceSpec, commit: string, dest: string): Promise<void> {
  const data = { project: access.project, url: displayUrl(source.url), commit, ...(source.subdirectory ? { subdirectory: source.subdirectory } : {}) };
  if (!isCommitId(commit)) throw new HostKitError('SOURCE_REF_UNKNOWN', `project ${access.project}: ${JSON.stringify(commit)} is not a commit id`, { data });
  const sub = source.subdirectory?.replace(/\/+$/, '');
  const problem = sub ? subdirectoryProblem(sub) : undefined;
  if (problem) throw new HostKitError('SOURCE_SUBDIRECTORY_UNKNOWN', `project ${access.project}: ${problem}`, { data });
  const user = await sourceUser(access);
  const cache = cacheDirectory(access);
  const p = { access, user, cache };
  const index = path.posix.join(cache, `hostkit-export-${randomBytes(4).toString('hex')}.index`);
  const notCached = () =>
    new HostKitError('SOURCE_REF_UNKNOWN', `project ${access.project}: commit ${commit} is not in the source cache (fetch it first)`, { data });
  if (!(await access.host.stat(path.posix.join(cache, 'HEAD')))) throw notCached();
  try {
    const read = await git(p, ['read-tree', sub ? `${commit}:${sub}` : `${commit}^{tree}`], { GIT_INDEX_FILE: index });
    if (read.exitCode !== 0) {
      const has = await git(p, ['cat-file', '-e', `${commit}^{commit}`]);
      if (has.exitCode !== 0) throw notCached();
      throw new HostKitError('SOURCE_SUBDIRECTORY_UNKNOWN', `project ${access.project}: commit ${commit.slice(0, 12)} has no directory ${sub}`, { data });
    }
    await prepareDestination(access, user, dest);
    const out = await git(p, [`--work-tree=${dest}`, 'checkout-index', '--all', '--force'], { GIT_INDEX_FILE: index });
    if (out.exitCode !== 0) {
      const tail = redact((out.stderr || out.stdout).trim().split('\n').slice(-6).join('\n'), access);
      throw new HostKitError('COMMAND_FAILED', `project ${access.project}: writing commit ${commit.slice(0, 12)} into ${dest} failed: ${tail}`, {
        data: { ...data, dest, output: tail },
      });
    }
    access.log.info({ project: access.project, commit, dest }, 'source exported');
  } finally {
    await access.host.remove(index, { managed: true });
  }
}
