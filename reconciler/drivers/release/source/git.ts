import { createHash } from 'node:crypto';
import path from 'node:path';
import { HostKitError, isHostKitError } from '../../../core/errors.js';
import type { ExecResult, Host } from '../../../hosts/types.js';
import { UserDb } from '../../shared/users.js';
import { cacheDirectory, ensureCache, gitEnv, readRefRecord, writeRefRecord } from './cache.js';
import { withCredentials } from './credentials.js';
import type { GitSourceSpec, ResolvedRef, SourceAccess } from './types.js';
import { displayUrl, redact, sourceLocation, type SourceLocation } from './urls.js';
import { execAs, sourceUser, type SourceUser } from './user.js';

// Git sources: every command runs in the project's cache as its user (see
// cache.ts, user.ts), credentials only through files (credentials.ts).

const GIT_SCHEMES = ['https', 'http', 'ssh', 'git'] as const;
const COMMIT = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
// A ref git can name on the command line: no option, no revision syntax.
const REF_NAME = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/+-]+(?<![./])$/;
const NETWORK_TIMEOUT_MS = 10 * 60 * 1000;
const LOCAL_TIMEOUT_MS = 5 * 60 * 1000;

export function isCommitId(ref: string): boolean {
  return COMMIT.test(ref);
}

function refError(access: SourceAccess, source: GitSourceSpec, why: string): HostKitError {
  return new HostKitError('SOURCE_REF_UNKNOWN', `project ${access.project}: ref ${source.ref} of ${displayUrl(source.url)} ${why}`, {
    data: { project: access.project, url: displayUrl(source.url), ref: source.ref },
  });
}

function checkRef(access: SourceAccess, source: GitSourceSpec): void {
  if (!isCommitId(source.ref) && !REF_NAME.test(source.ref)) throw refError(access, source, 'is not a commit id, tag or branch name');
}

/** The source's location, checked (SOURCE_PATH_NOT_ALLOWED, SOURCE_REF_UNKNOWN for a malformed ref). */
function locate(access: SourceAccess, source: GitSourceSpec): SourceLocation {
  checkRef(access, source);
  return sourceLocation(access, source.url, GIT_SCHEMES);
}

/**
 * What a failed network git command means, from what git printed: bad
 * credentials, an unknown ref, or a repository that could not be reached.
 * The message names the project and the cause; git's tail is redacted.
 */
export function gitFailure(access: SourceAccess, source: GitSourceSpec, action: string, result: ExecResult): HostKitError {
  const tail = redact((result.stderr || result.stdout).trim().split('\n').slice(-6).join('\n'), access);
  const data = { project: access.project, url: displayUrl(source.url), ref: source.ref, exitCode: result.exitCode, output: tail };
  const where = `${displayUrl(source.url)}`;
  if (
    /Authentication failed|could not read (Username|Password)|terminal prompts disabled|Permission denied \((publickey|password)|Host key verification failed|HTTP (401|403)|returned error: 40[13]|invalid credentials|access denied/i.test(
      tail,
    )
  ) {
    return new HostKitError('SOURCE_AUTH_FAILED', `project ${access.project}: ${action} ${where} was refused: bad or missing credentials: ${tail}`, { data });
  }
  if (/couldn't find remote ref|not our ref|no such ref|unadvertised object|no matching remote head|invalid refspec/i.test(tail)) {
    return new HostKitError('SOURCE_REF_UNKNOWN', `project ${access.project}: ${action} ${where}: ref ${source.ref} is not in the repository: ${tail}`, {
      data,
    });
  }
  return new HostKitError('SOURCE_UNREACHABLE', `project ${access.project}: ${action} ${where} failed: the repository could not be reached: ${tail}`, { data });
}

interface Prepared {
  access: SourceAccess;
  source: GitSourceSpec;
  user: SourceUser;
  location: SourceLocation;
  cache: string;
}

async function prepare(access: SourceAccess, source: GitSourceSpec, known?: SourceUser): Promise<Prepared> {
  const location = locate(access, source);
  const user = known ?? (await sourceUser(access));
  const cache = await ensureCache(access, user, location.kind === 'file' ? location.path : undefined);
  return { access, source, user, location, cache };
}

export function git(p: Pick<Prepared, 'access' | 'user' | 'cache'>, args: readonly string[], env: Record<string, string> = {}, timeoutMs = LOCAL_TIMEOUT_MS) {
  return execAs(p.access, p.user, ['git', ...args], { cwd: p.cache, env: { ...gitEnv(p.cache), ...env }, timeoutMs });
}

interface GitRequest {
  access: SourceAccess;
  source: GitSourceSpec;
}

// The requests one `git ls-remote` answers: the same URL with the same credentials.
function batchKey(request: GitRequest): string {
  const { token, sshKey } = request.access.credentials ?? {};
  return createHash('sha256')
    .update(JSON.stringify([request.source.url, token ?? '', sshKey ?? '']))
    .digest('hex');
}

/**
 * Resolve each project's ref to a commit. A commit id is its own answer (no
 * process at all); tags and branches take one `git ls-remote` per distinct URL
 * and credentials, run as the first such project whose user exists. A project
 * whose user does not exist yet (its account is made later in the run) gets
 * UNKNOWN_USER, and the others of its URL are still answered. A tag wins over
 * a branch of the same name (git's own order); an annotated tag gives its
 * commit. Nothing is written but the caches' directories.
 */
export async function resolveRefs(requests: readonly GitRequest[]): Promise<Map<string, ResolvedRef>> {
  const out = new Map<string, ResolvedRef>();
  const batches = new Map<string, GitRequest[]>();
  for (const request of requests) {
    const { access, source } = request;
    try {
      locate(access, source);
    } catch (error) {
      if (!isHostKitError(error)) throw error;
      out.set(access.project, { error });
      continue;
    }
    if (isCommitId(source.ref)) {
      out.set(access.project, { commit: source.ref });
      continue;
    }
    const key = batchKey(request);
    batches.set(key, [...(batches.get(key) ?? []), request]);
  }
  const userDbs = new Map<Host, Promise<UserDb>>();
  await Promise.all(
    [...batches.values()].map(async (batch) => {
      const runnable: (GitRequest & { user: SourceUser })[] = [];
      for (const request of batch) {
        const { host } = request.access;
        if (!userDbs.has(host)) userDbs.set(host, UserDb.read(host));
        try {
          runnable.push({ ...request, user: await sourceUser(request.access, await userDbs.get(host)!) });
        } catch (error) {
          if (!isHostKitError(error)) throw error;
          out.set(request.access.project, { error });
        }
      }
      const first = runnable[0];
      if (!first) return;
      let listed: Map<string, string>;
      try {
        listed = await lsRemote(await prepare(first.access, first.source, first.user), [...new Set(runnable.map((r) => r.source.ref))]);
      } catch (error) {
        if (!isHostKitError(error)) throw error;
        for (const { access, source } of runnable) out.set(access.project, { error: forProject(error, access, source) });
        return;
      }
      for (const { access, source } of runnable) {
        const commit = pickRef(listed, source.ref);
        out.set(access.project, commit ? { commit } : { error: refError(access, source, 'is neither a tag nor a branch there') });
      }
    }),
  );
  return out;
}

// The same failure told to each project of a batch, in its own name.
function forProject(error: HostKitError, access: SourceAccess, source: GitSourceSpec): HostKitError {
  const project = error.data.project;
  if (project === access.project || typeof project !== 'string') return error;
  return new HostKitError(error.code, error.message.replace(`project ${project}:`, `project ${access.project}:`), {
    data: { ...error.data, project: access.project, ref: source.ref },
    cause: error,
    retryable: error.retryable,
  });
}

async function lsRemote(p: Prepared, refs: readonly string[]): Promise<Map<string, string>> {
  const patterns = refs.flatMap((ref) => (ref.startsWith('refs/') ? [ref] : [`refs/tags/${ref}`, `refs/tags/${ref}^{}`, `refs/heads/${ref}`]));
  const result = await withCredentials(p.access, p.user, p.location, p.cache, (env) =>
    git(p, ['ls-remote', '--', p.source.url, ...patterns], env, NETWORK_TIMEOUT_MS),
  );
  p.access.log.debug({ project: p.access.project, url: displayUrl(p.source.url), refs: refs.length, exitCode: result.exitCode }, 'git ls-remote');
  if (result.exitCode !== 0) throw gitFailure(p.access, p.source, 'listing the refs of', result);
  const listed = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const [commit, name] = line.split('\t');
    if (commit && name && COMMIT.test(commit)) listed.set(name, commit);
  }
  return listed;
}

function pickRef(listed: Map<string, string>, ref: string): string | undefined {
  if (ref.startsWith('refs/')) return listed.get(`${ref}^{}`) ?? listed.get(ref);
  return listed.get(`refs/tags/${ref}^{}`) ?? listed.get(`refs/tags/${ref}`) ?? listed.get(`refs/heads/${ref}`);
}

/** The commit the cache last fetched for `source.ref` (a commit id is its own); no process, no network. */
export async function cachedCommit(access: SourceAccess, source: GitSourceSpec): Promise<string | undefined> {
  if (isCommitId(source.ref)) return source.ref;
  if (!REF_NAME.test(source.ref)) return undefined;
  return (await readRefRecord(access, source.url, source.ref))?.commit;
}

function keptRef(commit: string): string {
  return `refs/hostkit/commits/${commit}`;
}

async function hasCommit(p: Pick<Prepared, 'access' | 'user' | 'cache'>, commit: string): Promise<boolean> {
  // A loose ref written by fetchCommit answers without a process; after a `git pack-refs` git is asked.
  if (await p.access.host.stat(path.posix.join(p.cache, keptRef(commit)))) return true;
  return (await git(p, ['cat-file', '-e', `${commit}^{commit}`])).exitCode === 0;
}

/**
 * Fetch `commit` into the project's cache: nothing (and no network) when it is
 * there; otherwise the ref (so servers that refuse fetching by id work), then
 * the id itself if the ref has moved on since it was resolved. The commit is
 * kept by a ref of its own (refs/hostkit/commits/ID) and recorded as what
 * `source.ref` resolved to. If this throws, the cache holds at most some new
 * objects no ref names: harmless, and reused by the next fetch.
 */
export async function fetchCommit(access: SourceAccess, source: GitSourceSpec, commit: string): Promise<void> {
  if (!isCommitId(commit)) throw refError(access, source, `resolved to ${JSON.stringify(commit)}, not a commit id`);
  const p = await prepare(access, source);
  if (!(await hasCommit(p, commit))) {
    await withCredentials(access, p.user, p.location, p.cache, async (env) => {
      const started = Date.now();
      const fetch = (refspec: string) => git(p, ['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--', source.url, refspec], env, NETWORK_TIMEOUT_MS);
      let result = isCommitId(source.ref) ? await fetch(`+${commit}:${keptRef(commit)}`) : await fetch(`+${source.ref}:refs/hostkit/fetched`);
      if (result.exitCode === 0 && !isCommitId(source.ref) && !(await keep(p, commit))) result = await fetch(`+${commit}:${keptRef(commit)}`);
      if (result.exitCode !== 0) throw gitFailure(access, source, 'fetching from', result);
      if (!(await hasCommit(p, commit))) throw refError(access, source, `did not bring commit ${commit}`);
      access.log.info({ project: access.project, url: displayUrl(source.url), commit, ms: Date.now() - started }, 'source fetched');
    });
  }
  if (!isCommitId(source.ref)) await writeRefRecord(access, p.user, source.url, source.ref, commit);
}

async function keep(p: Prepared, commit: string): Promise<boolean> {
  return (await git(p, ['update-ref', keptRef(commit), commit])).exitCode === 0;
}

/** Subjects of the commits after `from` up to `to`, newest first, from the cache only ([] when either is not there). */
export async function commitSubjects(access: SourceAccess, from: string, to: string, limit = 50): Promise<string[]> {
  if (!isCommitId(from) || !isCommitId(to) || from === to) return [];
  const user = await sourceUser(access);
  const p = { access, user, cache: cacheDirectory(access) };
  if (!(await access.host.stat(path.posix.join(p.cache, 'HEAD')))) return [];
  const result = await git(p, ['log', '--format=%s', `--max-count=${Math.max(1, Math.floor(limit))}`, `${from}..${to}`, '--']);
  return result.exitCode === 0 ? result.stdout.split('\n').filter((l) => l.length > 0) : [];
}
