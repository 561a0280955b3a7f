import fs from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage, HostKitError } from '../core/errors.js';

/** The commit HEAD points at in the git repository containing `dir`, if any. */
export async function headCommit(dir: string): Promise<string | undefined> {
  // The common layouts are read directly (a few small files): loading isomorphic-git
  // costs ~100 ms of start-up, more than the rest of a no-op run on a small host.
  const direct = await readHead(path.resolve(dir)).catch(() => undefined);
  if (direct !== undefined) return direct === null ? undefined : direct;
  const git = await import('isomorphic-git');
  try {
    const root = await git.findRoot({ fs, filepath: dir });
    return await git.resolveRef({ fs, dir: root, ref: 'HEAD' });
  } catch {
    return undefined; // not a git repository, or no commit yet
  }
}

const HEAD_SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;

// The commit id; null when there is no repository or no commit yet; undefined when the
// layout is one this does not read (the caller then asks isomorphic-git).
async function readHead(start: string): Promise<string | null | undefined> {
  const gitDir = await findGitDir(start);
  if (!gitDir) return null;
  const head = (await readFile(path.join(gitDir, 'HEAD'), 'utf8')).trim();
  if (HEAD_SHA.test(head)) return head;
  const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
  if (!ref || ref.split('/').includes('..')) return undefined;
  const common = await readFile(path.join(gitDir, 'commondir'), 'utf8').then(
    (c) => path.resolve(gitDir, c.trim()),
    () => gitDir,
  );
  for (const base of [gitDir, common]) {
    const loose = await readFile(path.join(base, ref), 'utf8').catch(() => undefined);
    if (loose !== undefined) return HEAD_SHA.test(loose.trim()) ? loose.trim() : undefined;
  }
  const packed = await readFile(path.join(common, 'packed-refs'), 'utf8').catch(() => '');
  for (const line of packed.split('\n')) {
    const [sha, name] = line.split(' ');
    if (name === ref && sha && HEAD_SHA.test(sha)) return sha;
  }
  return null; // a branch without commits
}

async function findGitDir(start: string): Promise<string | undefined> {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, '.git');
    const st = await fs.promises.stat(candidate).catch(() => undefined);
    if (st?.isDirectory()) return candidate;
    if (st?.isFile()) {
      const target = /^gitdir: (.+)$/m.exec(await readFile(candidate, 'utf8'))?.[1];
      return target ? path.resolve(dir, target.trim()) : undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

export interface GitRemoteOptions {
  /** Anything system git can fetch from: https, ssh, a path. */
  url: string;
  branch: string;
  /** Private key for ssh remotes (the deploy key). */
  sshKeyFile?: string;
}

// What git needs from the agent's environment: where its configuration lives
// (HOME, XDG_CONFIG_HOME), how to reach the network (proxies, the ssh agent)
// and the locale. Nothing that makes git run another program.
const PASSED_ENV = /^(PATH|HOME|USER|LOGNAME|LANG|LC_[A-Z]+|TZ|TMPDIR|XDG_CONFIG_HOME|SSH_AUTH_SOCK|(?:https?|no|all)_proxy|(?:HTTPS?|NO|ALL)_PROXY)$/;

/** Environment for system git: the deploy key, no prompts, and the user's git configuration otherwise. */
export function gitEnv(options: { sshKeyFile?: string }, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && PASSED_ENV.test(k)) env[k] = v;
  env.GIT_TERMINAL_PROMPT = '0';
  if (options.sshKeyFile) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(options.sshKeyFile)) {
      throw new HostKitError('BAD_KEY_PATH', `Expected an ssh key path of letters, digits and ._/-, got ${JSON.stringify(options.sshKeyFile)}`);
    }
    env.GIT_SSH_COMMAND = `ssh -i ${options.sshKeyFile} -o IdentitiesOnly=yes -o BatchMode=yes`;
  }
  return env;
}

/** simple-git bound to a directory and environment; the only "unsafe" setting allowed is the ssh command HostKit set itself. */
export async function gitIn(dir: string, env: Record<string, string>) {
  const { simpleGit } = await import('simple-git');
  const ssh = env.GIT_SSH_COMMAND !== undefined;
  return simpleGit({
    baseDir: dir,
    allowEnvironment: ssh ? ['GIT_TERMINAL_PROMPT', 'GIT_SSH_COMMAND'] : ['GIT_TERMINAL_PROMPT'],
    unsafe: { allowUnsafeSshCommand: ssh },
  }).env(env);
}

const SHA = /^[0-9a-f]{40}$/;

/**
 * The config repository as the agent sees it: a bare mirror under the state
 * directory, fed by system git (so deploy keys and git configuration apply),
 * read at a commit with isomorphic-git. A working tree is never read: a commit's
 * manifests are materialized into a snapshot directory keyed by that commit,
 * which nothing writes to afterwards.
 */
export class GitSource {
  readonly gitdir: string;
  readonly snapshots: string;
  /** git processes started so far (the cost of polling). */
  processes = 0;
  private readonly options: GitRemoteOptions;
  private readonly log: Logger;
  private readonly env: Record<string, string>;
  private ready: Promise<void> | undefined;

  constructor(options: GitRemoteOptions & { stateDirectory: string; log: Logger }) {
    this.options = options;
    this.log = options.log;
    this.gitdir = path.join(options.stateDirectory, 'source.git');
    this.snapshots = path.join(options.stateDirectory, 'snapshots');
    this.env = gitEnv(options);
  }

  get url(): string {
    return this.options.url;
  }

  get branch(): string {
    return this.options.branch;
  }

  private async git(args: string[], cwd = this.gitdir): Promise<string> {
    this.processes++;
    return (await gitIn(cwd, this.env)).raw(args);
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      if (await exists(path.join(this.gitdir, 'HEAD'))) return;
      await mkdir(this.gitdir, { recursive: true });
      await this.git(['init', '--bare', '-q']);
    })();
    return this.ready;
  }

  /** The remote's commit for the branch, with one `git ls-remote` and no object transfer. */
  async remoteHead(): Promise<string | undefined> {
    const out = await this.git(['ls-remote', '--', this.options.url, `refs/heads/${this.options.branch}`], process.cwd());
    const sha = out.split('\t')[0]?.trim();
    return sha && SHA.test(sha) ? sha : undefined;
  }

  /** Whether the remote answers at all (the firewall driver's confirm check). */
  async reachable(): Promise<boolean> {
    try {
      await this.git(['ls-remote', '--heads', '--', this.options.url], process.cwd());
      return true;
    } catch {
      return false;
    }
  }

  /** Fetch the branch into the mirror; returns its commit. */
  /** Fetch the branch; a remote that does not answer (or refuses) is GIT_FETCH_FAILED, which is retryable. */
  async fetch(): Promise<string> {
    await this.init();
    const ref = `refs/remotes/origin/${this.options.branch}`;
    try {
      await this.git(['fetch', '-q', '--no-tags', '--', this.options.url, `+refs/heads/${this.options.branch}:${ref}`]);
    } catch (cause) {
      const why = redactUrl(errorMessage(cause).trim().split('\n').slice(-3).join(' '));
      throw new HostKitError('GIT_FETCH_FAILED', `Could not fetch ${this.options.branch} from ${redactUrl(this.options.url)}: ${why}`, { cause });
    }
    return (await this.git(['rev-parse', '--verify', `${ref}^{commit}`])).trim();
  }

  /** Fetch another branch of the remote (the report branch) into refs/remotes/origin/BRANCH; undefined when it does not exist yet. */
  async fetchBranch(branch: string): Promise<string | undefined> {
    await this.init();
    const ref = `refs/remotes/origin/${branch}`;
    try {
      await this.git(['fetch', '-q', '--no-tags', '--', this.options.url, `+refs/heads/${branch}:${ref}`]);
    } catch (cause) {
      if (/couldn't find remote ref/i.test(errorMessage(cause))) return undefined;
      throw new HostKitError('GIT_FETCH_FAILED', `Could not fetch ${branch} from ${redactUrl(this.options.url)}: ${redactUrl(errorMessage(cause).trim())}`, {
        cause,
      });
    }
    return (await this.git(['rev-parse', '--verify', `${ref}^{commit}`])).trim();
  }

  /** Fetch a pull request's head commit (GitHub's refs/pull/N/head, else the branch it names). */
  async fetchPullRequest(pr: { number: number; headSha: string; headRef: string }): Promise<string> {
    await this.init();
    const local = `refs/hostkit/pull/${pr.number}`;
    for (const remote of [`refs/pull/${pr.number}/head`, `refs/heads/${pr.headRef}`, pr.headSha]) {
      try {
        await this.git(['fetch', '-q', '--no-tags', '--', this.options.url, `+${remote}:${local}`]);
        const sha = (await this.git(['rev-parse', '--verify', `${local}^{commit}`])).trim();
        if (sha === pr.headSha || !SHA.test(pr.headSha)) return sha;
        this.log.warn({ pr: pr.number, remote, sha, expected: pr.headSha }, 'pull request head moved');
        return sha;
      } catch {
        // try the next form
      }
    }
    throw new HostKitError('PR_FETCH_FAILED', `Could not fetch the head of pull request #${pr.number} from ${this.options.url}`, { retryable: true });
  }

  /** Paths that differ between two commits of the mirror. */
  async changedFiles(from: string, to: string): Promise<string[]> {
    const out = await this.git(['diff', '--name-only', '--no-renames', from, to]);
    return out.split('\n').filter(Boolean);
  }

  /**
   * The commit's manifest files (*.yaml, *.yml) in a directory of their own,
   * written once and never changed: the engine reads this, not a working tree.
   */
  async snapshot(commit: string): Promise<string> {
    if (!SHA.test(commit)) throw new HostKitError('BAD_COMMIT', `Expected a 40-hex commit id, got ${JSON.stringify(commit)}`);
    await this.init();
    const dir = path.join(this.snapshots, commit);
    if (await exists(dir)) return dir;
    await mkdir(this.snapshots, { recursive: true });
    const temp = await mkdtemp(path.join(this.snapshots, '.tmp-'));
    try {
      await materialize(this.gitdir, commit, temp);
      await rename(temp, dir);
      await syncPath(this.snapshots);
    } catch (cause) {
      await rm(temp, { recursive: true, force: true });
      if (await exists(dir)) return dir; // another run made it first
      throw cause;
    }
    await this.prune(commit);
    return dir;
  }

  // Keep the newest few snapshots (the last applied one is always among them).
  private async prune(keep: string, max = 5): Promise<void> {
    const entries = (await readdir(this.snapshots)).filter((n) => SHA.test(n));
    if (entries.length <= max) return;
    const dated = await Promise.all(entries.map(async (n) => ({ n, t: (await stat(path.join(this.snapshots, n))).mtimeMs })));
    dated.sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(max)) if (n !== keep) await rm(path.join(this.snapshots, n), { recursive: true, force: true });
  }
}

/**
 * Write a commit's YAML files from a git directory into `target` (isomorphic-git:
 * trees and blobs at a commit). Files and directories are synced to disk: a
 * snapshot in place is trusted as complete, so after a power loss it must not
 * hold empty or cut files.
 */
export async function materialize(gitdir: string, commit: string, target: string): Promise<number> {
  const git = await import('isomorphic-git');
  const cache = {};
  const directories = new Set([target]);
  let count = 0;
  async function walk(oid: string, rel: string): Promise<void> {
    const { tree } = await git.readTree({ fs, gitdir, oid, cache });
    for (const entry of tree) {
      const child = rel ? `${rel}/${entry.path}` : entry.path;
      if (entry.type === 'tree') {
        if (entry.path.startsWith('.')) continue;
        await walk(entry.oid, child);
      } else if (entry.type === 'blob' && entry.mode !== '120000' && /\.ya?ml$/.test(entry.path)) {
        const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
        await mkdir(path.join(target, rel), { recursive: true });
        for (let d = path.join(target, rel); d !== target; d = path.dirname(d)) directories.add(d);
        const handle = await open(path.join(target, child), 'wx');
        try {
          await handle.writeFile(blob);
          await handle.sync();
        } finally {
          await handle.close();
        }
        count++;
      }
    }
  }
  const { commit: c } = await git.readCommit({ fs, gitdir, oid: commit, cache });
  await walk(c.tree, '');
  for (const d of directories) await syncPath(d);
  return count;
}

// fsync of a directory: its entries (new files, a rename into it) reach the disk.
async function syncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A commit's committer time (seconds), read from the mirror. */
export async function commitTime(gitdir: string, commit: string): Promise<number | undefined> {
  const git = await import('isomorphic-git');
  try {
    return (await git.readCommit({ fs, gitdir, oid: commit })).commit.committer.timestamp;
  } catch {
    return undefined;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** URLs in `text` without their credentials (https://TOKEN@host/...), for messages and reports. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1');
}
