import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
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
  /** Push attempts before giving up (default 8). */
  maxAttempts?: number;
  /** First back-off between attempts (default 200 ms; doubles, with jitter). */
  baseDelayMs?: number;
}

export interface WriteResult {
  /** False when the files already had these contents (nothing committed). */
  changed: boolean;
  commit?: string;
  attempts: number;
}

const LOCAL_BRANCH = 'hostkit-report';

/**
 * Commits one host's report files to the report branch and pushes. Each
 * attempt starts from the remote branch as it is now and writes only this
 * host's files on top, so a push rejected because another host pushed first is
 * simply redone on the new tip (bounded, with back-off): no report is lost and
 * no other host's file is touched.
 */
export class ReportWriter {
  private readonly options: ReportWriterOptions;
  private readonly env: Record<string, string>;

  constructor(options: ReportWriterOptions) {
    this.options = options;
    this.env = gitEnv(options);
  }

  private async git(args: string[]): Promise<string> {
    return (await gitIn(this.options.dir, this.env)).raw(args);
  }

  private async init(): Promise<void> {
    try {
      await stat(path.join(this.options.dir, '.git'));
    } catch {
      await mkdir(this.options.dir, { recursive: true });
      await this.git(['init', '-q']);
    }
  }

  /** Write `files` (relative path -> content, undefined = remove) in one commit and push it. */
  async write(files: Record<string, string | undefined>, message: string): Promise<WriteResult> {
    const { branch, url, log } = this.options;
    const maxAttempts = this.options.maxAttempts ?? 8;
    const baseDelay = this.options.baseDelayMs ?? 200;
    for (const rel of Object.keys(files)) {
      if (path.posix.isAbsolute(rel) || rel.split('/').includes('..')) throw new HostKitError('BAD_REPORT_PATH', `Expected a relative report path, got ${rel}`);
    }
    await this.init();
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        const base = await this.checkoutTip();
        const changed = await this.stage(files);
        if (!changed) return { changed: false, ...(base ? { commit: (await this.git(['rev-parse', 'HEAD'])).trim() } : {}), attempts: attempt };
        const { name, email } = this.options.author;
        await this.git(['-c', `user.name=${name}`, '-c', `user.email=${email}`, 'commit', '-q', '--no-verify', '-m', message]);
        const commit = (await this.git(['rev-parse', 'HEAD'])).trim();
        await this.git(['push', '-q', '--', url, `HEAD:refs/heads/${branch}`]);
        log.info({ branch, commit, attempt }, 'report pushed');
        return { changed: true, commit, attempts: attempt };
      } catch (cause) {
        lastError = cause;
        log.info({ branch, attempt, err: errorMessage(cause).split('\n')[0] }, 'report push rejected; retrying on the new tip');
        if (attempt < maxAttempts) await sleep(baseDelay * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
    throw new HostKitError('REPORT_PUSH_FAILED', `Could not push the report to ${branch} after ${maxAttempts} attempts: ${errorMessage(lastError)}`, {
      cause: lastError,
      retryable: true,
    });
  }

  // The working tree becomes the remote branch's tip (or empty, for a branch that does not exist yet).
  private async checkoutTip(): Promise<string | undefined> {
    const { branch, url } = this.options;
    try {
      await this.git(['fetch', '-q', '--no-tags', '--', url, `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    } catch (cause) {
      if (!/couldn't find remote ref/i.test(errorMessage(cause))) throw cause;
      await this.git(['symbolic-ref', 'HEAD', `refs/heads/${LOCAL_BRANCH}-${Date.now()}`]);
      await this.git(['read-tree', '--empty']);
      await this.git(['clean', '-fdxq']);
      return undefined;
    }
    await this.git(['checkout', '-q', '-f', '-B', LOCAL_BRANCH, `refs/remotes/origin/${branch}`]);
    await this.git(['clean', '-fdxq']);
    return 'tip';
  }

  // Only this host's files differ from the tip now (checkout -f and clean put everything else back).
  private async stage(files: Record<string, string | undefined>): Promise<boolean> {
    for (const [rel, content] of Object.entries(files)) {
      const full = path.join(this.options.dir, rel);
      if (content === undefined) await rm(full, { force: true });
      else {
        await mkdir(path.dirname(full), { recursive: true });
        await writeFile(full, content);
      }
    }
    await this.git(['add', '-A']);
    return (await this.git(['status', '--porcelain'])).trim() !== '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
