import fs from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errorMessage, HostKitError } from '../core/errors.js';
import { gitEnv, gitIn } from '../sources/git.js';

export interface ReportWriterOptions {
  url: string;
  branch: string;
  /** The clone the writer works in (under the agent's state directory). */
  dir: string;
  sshKeyFile?: string;
  author: { name: string; email: string };
  log: Logger;
  /** Push attempts before giving up (default 20). */
  maxAttempts?: number;
  /** Back-off before the second attempt (default 200 ms): it doubles per attempt up to maxDelayMs, and the wait is drawn at random below it. */
  baseDelayMs?: number;
  /** The longest back-off (default 60 s: a hundred hosts racing for one branch need that much room to take turns). */
  maxDelayMs?: number;
}

export interface WriteResult {
  /** False when the files already had these contents (nothing committed). */
  changed: boolean;
  commit?: string;
  attempts: number;
}

/**
 * Commits one host's report files to the report branch and pushes. The commit
 * is built in this process (isomorphic-git: blobs, trees, commit) on the tip
 * last seen, and pushed: one git process when no other host pushed in between.
 * A push rejected because another host pushed first is redone on the new tip
 * (one fetch, then the push; bounded, with back-off), writing only this host's
 * files on top of it: no report is lost and no other host's file is touched.
 * Nothing is ever checked out.
 */
export class ReportWriter {
  private readonly options: ReportWriterOptions;
  private readonly env: Record<string, string>;
  private readonly gitdir: string;
  /** The remote tip this writer last fetched or pushed (undefined: not known yet, or no branch). */
  private tip: string | undefined;
  private known = false;
  /** git processes started so far (the cost of reporting). */
  processes = 0;

  constructor(options: ReportWriterOptions) {
    this.options = options;
    this.env = gitEnv(options);
    this.gitdir = path.join(options.dir, '.git');
  }

  private async git(args: string[]): Promise<string> {
    this.processes++;
    return (await gitIn(this.options.dir, this.env)).raw(args);
  }

  private async init(): Promise<void> {
    try {
      await stat(this.gitdir);
    } catch {
      await mkdir(this.options.dir, { recursive: true });
      const git = await import('isomorphic-git');
      await git.init({ fs, dir: this.options.dir, defaultBranch: 'hostkit-report' });
    }
  }

  /** Write `files` (relative path -> content, undefined = remove) in one commit and push it. */
  async write(files: Record<string, string | undefined>, message: string): Promise<WriteResult> {
    const { branch, url, log } = this.options;
    const maxAttempts = this.options.maxAttempts ?? 20;
    const baseDelay = this.options.baseDelayMs ?? 200;
    const maxDelay = this.options.maxDelayMs ?? 60_000;
    for (const rel of Object.keys(files)) {
      if (path.posix.isAbsolute(rel) || rel.split('/').some((part) => part === '..' || part === '.' || part === '' || part === '.git')) {
        throw new HostKitError('BAD_REPORT_PATH', `Expected a relative report path, got ${rel}`);
      }
    }
    await this.init();
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        if (!this.known) await this.fetchTip();
        const base = this.tip;
        const commit = await this.commitOn(base, files, message);
        if (commit === undefined) return { changed: false, ...(base ? { commit: base } : {}), attempts: attempt };
        await this.git(['push', '-q', '--', url, `${commit}:refs/heads/${branch}`]);
        this.tip = commit;
        log.info({ branch, commit, attempt }, 'report pushed');
        return { changed: true, commit, attempts: attempt };
      } catch (cause) {
        lastError = cause;
        // Another host pushed first (or the tip was never known): the next attempt starts from the remote's tip.
        this.known = false;
        log.info({ branch, attempt, err: errorMessage(cause).split('\n')[0] }, 'report push rejected; retrying on the new tip');
        if (attempt < maxAttempts) await sleep(retryDelay(attempt, baseDelay, maxDelay));
      }
    }
    throw new HostKitError('REPORT_PUSH_FAILED', `Could not push the report to ${branch} after ${maxAttempts} attempts: ${errorMessage(lastError)}`, {
      cause: lastError,
      retryable: true,
    });
  }

  // The remote branch's tip into refs/remotes/origin/BRANCH (undefined: the branch does not exist yet).
  private async fetchTip(): Promise<void> {
    const { branch, url } = this.options;
    try {
      await this.git(['fetch', '-q', '--no-tags', '--', url, `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    } catch (cause) {
      if (!/couldn't find remote ref/i.test(errorMessage(cause))) throw cause;
      this.tip = undefined;
      this.known = true;
      return;
    }
    const git = await import('isomorphic-git');
    this.tip = await git.resolveRef({ fs, gitdir: this.gitdir, ref: `refs/remotes/origin/${branch}` });
    this.known = true;
  }

  // A commit of `base` with `files` written over it, or undefined when its tree would not change.
  private async commitOn(base: string | undefined, files: Record<string, string | undefined>, message: string): Promise<string | undefined> {
    const git = await import('isomorphic-git');
    const { gitdir } = this;
    const cache = {};
    const baseTree = base ? (await git.readCommit({ fs, gitdir, oid: base, cache })).commit.tree : undefined;
    const changes = new Map<string, Buffer | undefined>();
    for (const [rel, content] of Object.entries(files)) changes.set(rel, content === undefined ? undefined : Buffer.from(content, 'utf8'));
    const tree = await updateTree(gitdir, baseTree, changes, cache);
    if (tree === baseTree || (tree === undefined && baseTree === undefined)) return undefined;
    const { name, email } = this.options.author;
    const now = Math.floor(Date.now() / 1000);
    const who = { name, email, timestamp: now, timezoneOffset: 0 };
    return git.writeCommit({
      fs,
      gitdir,
      commit: {
        message: message.endsWith('\n') ? message : `${message}\n`,
        tree: tree ?? (await emptyTree(gitdir)),
        parent: base ? [base] : [],
        author: who,
        committer: who,
      },
    });
  }
}

type TreeEntry = { mode: string; path: string; oid: string; type: 'blob' | 'tree' | 'commit' };

/**
 * The tree `oid` with `changes` (paths relative to it; undefined removes) applied,
 * written to `gitdir`: returns `oid` itself when nothing differs, and undefined for
 * a tree left empty (a directory whose last file went is dropped, as git does).
 */
async function updateTree(gitdir: string, oid: string | undefined, changes: Map<string, Buffer | undefined>, cache: object): Promise<string | undefined> {
  const git = await import('isomorphic-git');
  const entries: TreeEntry[] = oid ? ((await git.readTree({ fs, gitdir, oid, cache })).tree as TreeEntry[]) : [];
  const byName = new Map(entries.map((e) => [e.path, e]));
  const nested = new Map<string, Map<string, Buffer | undefined>>();
  let changed = false;
  for (const [rel, content] of changes) {
    const slash = rel.indexOf('/');
    if (slash >= 0) {
      const dir = rel.slice(0, slash);
      if (!nested.has(dir)) nested.set(dir, new Map());
      nested.get(dir)!.set(rel.slice(slash + 1), content);
      continue;
    }
    const existing = byName.get(rel);
    if (content === undefined) {
      if (existing) {
        byName.delete(rel);
        changed = true;
      }
      continue;
    }
    const blob = await git.writeBlob({ fs, gitdir, blob: content });
    if (existing?.oid === blob && existing.mode === '100644') continue;
    byName.set(rel, { mode: '100644', path: rel, oid: blob, type: 'blob' });
    changed = true;
  }
  for (const [dir, inner] of nested) {
    const existing = byName.get(dir);
    const previous = existing?.type === 'tree' ? existing.oid : undefined;
    const sub = await updateTree(gitdir, previous, inner, cache);
    if (sub === previous) continue;
    if (sub === undefined) byName.delete(dir);
    else byName.set(dir, { mode: '040000', path: dir, oid: sub, type: 'tree' });
    changed = true;
  }
  if (!changed) return oid;
  if (byName.size === 0) return undefined;
  return git.writeTree({ fs, gitdir, tree: [...byName.values()] });
}

async function emptyTree(gitdir: string): Promise<string> {
  const git = await import('isomorphic-git');
  return git.writeTree({ fs, gitdir, tree: [] });
}

/**
 * "Full jitter": a wait drawn at random up to a ceiling that doubles per attempt and is capped. Hosts that lost the
 * same race spread out instead of retrying together, and none waits longer than the cap while the branch is free.
 */
export function retryDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
