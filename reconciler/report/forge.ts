// Reports on the forge through the GitHub REST API (Octokit): a commit status
// per host on the reconciled commit, and for a pull request one plan comment
// per host, found again by a hidden marker and edited in place so new pushes
// do not pile up comments. GitHub Enterprise Server: set baseUrl to
// https://HOST/api/v3. The token goes only into the Authorization header; it
// is never logged and never part of an error message.
import { Octokit, RequestError } from 'octokit';
import type { Logger } from 'pino';
import { HostKitError } from '../core/errors.js';

export interface ForgeOptions {
  token: string;
  owner: string;
  repo: string;
  baseUrl?: string;
  log: Logger;
  userAgent?: string;
  /** Octokit's pacing of writes (about one per second, as GitHub asks) and rate-limit retries; default on. */
  throttle?: boolean;
  /** Retries of a request that failed with a 5xx or on the network (Octokit's default: 3, after 1, 4 and 9 s). */
  retries?: number;
}

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export interface Forge {
  /** A commit status with context `hostkit/<host>`. */
  setCommitStatus(sha: string, host: string, state: CommitState, description: string, targetUrl?: string): Promise<void>;
  /** One comment per host per pull request, found by a hidden marker and updated in place. */
  upsertPlanComment(pullNumber: number, host: string, markdown: string): Promise<{ id: number; created: boolean }>;
}

// GitHub's limits: a status description is at most 140 characters, a comment body 65536.
const MAX_DESCRIPTION = 140;
const MAX_COMMENT = 65_536;

export function statusContext(host: string): string {
  return `hostkit/${host}`;
}

/** The hidden first line that marks a comment as this host's plan comment. */
export function planMarker(host: string): string {
  return `<!-- hostkit:plan host=${JSON.stringify(host)} -->`;
}

function truncate(text: string, max: number, tail: string): string {
  return text.length <= max ? text : text.slice(0, max - tail.length) + tail;
}

// A RequestError as a HostKitError: what was asked, what GitHub answered, and
// whether trying again can help. Octokit redacts the token in error.request;
// only the method, route, status and GitHub's message are kept.
function forgeError(what: string, route: string, error: unknown): HostKitError {
  // No answer at all (refused, DNS, TLS): Octokit reports it as a 500 without a response.
  if (error instanceof RequestError && !error.response) {
    const cause = error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
    return new HostKitError('FORGE_UNREACHABLE', `GitHub API: ${what} failed: ${route}: no answer from the API (${cause})`, {
      data: { route },
      retryable: true,
    });
  }
  if (error instanceof RequestError) {
    const detail = (error.response?.data as { message?: string } | undefined)?.message ?? error.message;
    const hint =
      error.status === 401
        ? ' (is the forge token valid?)'
        : error.status === 403 || error.status === 404
          ? ' (does the token have access to the repository?)'
          : '';
    return new HostKitError('FORGE_API', `GitHub API: ${what} failed: ${route} answered ${error.status}: ${detail}${hint}`, {
      data: { status: error.status, route },
      retryable: error.status >= 500 || error.status === 429,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new HostKitError('FORGE_API', `GitHub API: ${what} failed: ${route}: ${message}`, { data: { route }, retryable: true });
}

export function createForge(options: ForgeOptions): Forge {
  const { owner, repo, log } = options;
  if (!options.token) throw new HostKitError('FORGE_CONFIG', 'Expected a forge token, got an empty one');
  const octokit = new Octokit({
    auth: options.token,
    userAgent: options.userAgent ?? 'hostkit',
    ...(options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/+$/, '') } : {}),
    ...(options.throttle === false ? { throttle: { enabled: false } } : {}),
    ...(options.retries !== undefined ? { retry: { retries: options.retries } } : {}),
    // Octokit's own messages name the method and URL only, never headers.
    log: {
      debug: () => undefined,
      info: (message: string) => log.debug({ forge: 'github' }, message),
      warn: (message: string) => log.warn({ forge: 'github' }, message),
      error: (message: string) => log.error({ forge: 'github' }, message),
    },
  });

  const call = async <T>(what: string, route: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      const result = await fn();
      log.debug({ forge: 'github', route, ms: Date.now() - started }, what);
      return result;
    } catch (error) {
      const wrapped = forgeError(what, route, error);
      log.warn({ forge: 'github', route, status: wrapped.data.status }, `${what} failed`);
      throw wrapped;
    }
  };

  return {
    async setCommitStatus(sha, host, state, description, targetUrl) {
      await call('set commit status', `POST /repos/${owner}/${repo}/statuses/${sha}`, () =>
        octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha,
          state,
          context: statusContext(host),
          description: truncate(description, MAX_DESCRIPTION, '…'),
          ...(targetUrl ? { target_url: targetUrl } : {}),
        }),
      );
    },

    async upsertPlanComment(pullNumber, host, markdown) {
      const marker = planMarker(host);
      const body = truncate(`${marker}\n${markdown}`, MAX_COMMENT, '\n\n… (plan truncated: over GitHub’s comment size limit)\n');
      const comments = await call('list pull request comments', `GET /repos/${owner}/${repo}/issues/${pullNumber}/comments`, () =>
        octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: pullNumber, per_page: 100 }),
      );
      const mine = comments.find((c) => c.body?.startsWith(marker));
      if (mine) {
        if (mine.body !== body) {
          await call('update plan comment', `PATCH /repos/${owner}/${repo}/issues/comments/${mine.id}`, () =>
            octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body }),
          );
        }
        return { id: mine.id, created: false };
      }
      const { data } = await call('create plan comment', `POST /repos/${owner}/${repo}/issues/${pullNumber}/comments`, () =>
        octokit.rest.issues.createComment({ owner, repo, issue_number: pullNumber, body }),
      );
      return { id: data.id, created: true };
    },
  };
}

/** owner/repo from an https or ssh GitHub-style remote URL, or undefined. */
export function parseForgeRepository(url: string): { owner: string; repo: string } | undefined {
  const trimmed = url.trim();
  // scp-like: git@github.com:owner/repo.git
  const scp = /^(?:[^@/\s]+@)?[^:/\s]+:(?!\/)([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/.exec(trimmed);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return { owner: scp[1]!, repo: scp[2]! };
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return undefined;
  }
  if (!['https:', 'http:', 'ssh:', 'git:', 'git+ssh:'].includes(parsed.protocol)) return undefined;
  const parts = parsed.pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  if (parts.length !== 2) return undefined;
  const repo = parts[1]!.replace(/\.git$/, '');
  return repo ? { owner: decodeURIComponent(parts[0]!), repo: decodeURIComponent(repo) } : undefined;
}
