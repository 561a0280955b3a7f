// Commit statuses and plan comments on GitLab (REST API v4) and Gitea/Forgejo
// (API v1), beside GitHub's (forge.ts): the same Forge interface, plain fetch.
// The token goes only into the auth header (GitLab's PRIVATE-TOKEN, Gitea's
// `Authorization: token`); errors name the call and the forge's answer.
//   GitLab: POST /projects/:id/statuses/:sha {state, name, description, target_url}
//           (state pending|running|success|failed|canceled); notes on merge requests.
//   Gitea:  POST /repos/:owner/:repo/statuses/:sha {state, context, description, target_url}
//           (state pending|success|error|failure|warning); comments on issues/pulls.
import type { Logger } from 'pino';
import { HostKitError } from '../core/errors.js';
import { planMarker, statusContext, type CommitState, type Forge } from './forge.js';

export type ForgeKind = 'github' | 'gitlab' | 'gitea';

export interface HttpForgeOptions {
  token: string;
  owner: string;
  repo: string;
  /** GitLab: https://gitlab.example.com/api/v4 (default gitlab.com's); Gitea: https://gitea.example.com/api/v1 (required). */
  baseUrl?: string;
  log: Logger;
}

// GitLab keeps 255 characters of a status description; Gitea as many. Comments: a megabyte on both, kept well below.
const MAX_DESCRIPTION = 255;
const MAX_COMMENT = 65_536;

const GITLAB_STATE: Record<CommitState, string> = { pending: 'pending', success: 'success', failure: 'failed', error: 'failed' };

function client(forge: string, baseUrl: string, auth: Record<string, string>, log: Logger) {
  const base = baseUrl.replace(/\/+$/, '');
  return async <T>(what: string, method: string, route: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(base + route, {
        method,
        headers: { accept: 'application/json', 'user-agent': 'hostkit', ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (cause) {
      throw new HostKitError('FORGE_UNREACHABLE', `${forge} API: ${what} failed: ${method} ${route}: no answer from the API (${(cause as Error).message})`, {
        data: { route },
        retryable: true,
      });
    }
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 200);
      try {
        const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
        detail = String(parsed.message ?? parsed.error ?? detail);
      } catch {
        // not JSON: the start of the body
      }
      log.warn({ forge, route, status: res.status }, `${what} failed`);
      const hint =
        res.status === 401
          ? ' (is the forge token valid?)'
          : res.status === 403 || res.status === 404
            ? ' (does the token have access to the repository?)'
            : '';
      throw new HostKitError('FORGE_API', `${forge} API: ${what} failed: ${method} ${route} answered ${res.status}: ${detail}${hint}`, {
        data: { status: res.status, route },
        retryable: res.status >= 500 || res.status === 429,
      });
    }
    log.debug({ forge, route }, what);
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

// This host's comment is the one starting with its marker: edited when its text changed, else created.
async function upsertMarked(
  marker: string,
  body: string,
  existing: readonly { id: number; body: string }[],
  calls: { update: (id: number) => Promise<unknown>; create: () => Promise<{ id: number }> },
): Promise<{ id: number; created: boolean }> {
  const mine = existing.find((c) => c.body?.startsWith(marker));
  if (!mine) return { id: (await calls.create()).id, created: true };
  if (mine.body !== body) await calls.update(mine.id);
  return { id: mine.id, created: false };
}

function truncate(text: string, max: number, tail: string): string {
  return text.length <= max ? text : text.slice(0, max - tail.length) + tail;
}

/** GitLab: commit statuses named `hostkit/HOST`, and one note per host on a merge request, edited in place. */
export function createGitLabForge(options: HttpForgeOptions): Forge {
  if (!options.token) throw new HostKitError('FORGE_CONFIG', 'Expected a forge token, got an empty one');
  const call = client('GitLab', options.baseUrl ?? 'https://gitlab.com/api/v4', { 'private-token': options.token }, options.log);
  const project = encodeURIComponent(`${options.owner}/${options.repo}`);
  return {
    async setCommitStatus(sha, host, state, description, targetUrl) {
      await call('set commit status', 'POST', `/projects/${project}/statuses/${sha}`, {
        state: GITLAB_STATE[state],
        name: statusContext(host),
        description: truncate(description, MAX_DESCRIPTION, '…'),
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
    },
    async upsertPlanComment(iid, host, markdown) {
      const marker = planMarker(host);
      const body = truncate(`${marker}\n${markdown}`, MAX_COMMENT, '\n\n… (plan truncated)\n');
      const notes: { id: number; body: string }[] = [];
      for (let page = 1; page <= 50; page++) {
        const batch = await call<{ id: number; body: string }[]>(
          'list merge request notes',
          'GET',
          `/projects/${project}/merge_requests/${iid}/notes?per_page=100&page=${page}`,
        );
        notes.push(...batch);
        if (batch.length < 100) break;
      }
      return upsertMarked(marker, body, notes, {
        update: (id) => call('update plan note', 'PUT', `/projects/${project}/merge_requests/${iid}/notes/${id}`, { body }),
        create: () => call<{ id: number }>('create plan note', 'POST', `/projects/${project}/merge_requests/${iid}/notes`, { body }),
      });
    },
  };
}

/** Gitea and Forgejo: commit statuses with context `hostkit/HOST`, and one comment per host on a pull request. */
export function createGiteaForge(options: HttpForgeOptions): Forge {
  if (!options.token) throw new HostKitError('FORGE_CONFIG', 'Expected a forge token, got an empty one');
  if (!options.baseUrl) throw new HostKitError('FORGE_CONFIG', 'Expected forge.baseUrl for Gitea (https://HOST/api/v1), got none');
  const call = client('Gitea', options.baseUrl, { authorization: `token ${options.token}` }, options.log);
  const repo = `/repos/${encodeURIComponent(options.owner)}/${encodeURIComponent(options.repo)}`;
  return {
    async setCommitStatus(sha, host, state, description, targetUrl) {
      await call('set commit status', 'POST', `${repo}/statuses/${sha}`, {
        state,
        context: statusContext(host),
        description: truncate(description, MAX_DESCRIPTION, '…'),
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
    },
    async upsertPlanComment(index, host, markdown) {
      const marker = planMarker(host);
      const body = truncate(`${marker}\n${markdown}`, MAX_COMMENT, '\n\n… (plan truncated)\n');
      // Gitea's issue comments endpoint answers every comment at once (no pages).
      const comments = await call<{ id: number; body: string }[]>('list pull request comments', 'GET', `${repo}/issues/${index}/comments`);
      return upsertMarked(marker, body, comments, {
        update: (id) => call('update plan comment', 'PATCH', `${repo}/issues/comments/${id}`, { body }),
        create: () => call<{ id: number }>('create plan comment', 'POST', `${repo}/issues/${index}/comments`, { body }),
      });
    },
  };
}
