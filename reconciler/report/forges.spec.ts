import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/log.js';
import { HostKitError } from '../core/errors.js';
import { planMarker } from './forge.js';
import { createGiteaForge, createGitLabForge } from './forges.js';

const TOKEN = 'glpat-fakeToken0123456789';
const SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';

type Handler = (
  d: ForgeDouble,
  method: string,
  path: string,
  headers: http.IncomingHttpHeaders,
  body: Record<string, unknown> | undefined,
) => [number, unknown];

interface Note {
  id: number;
  body: string;
}

// Local doubles of the endpoints HostKit calls, answering as the forges document:
// GitLab v4 (docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit, /api/notes/),
// Gitea v1 (swagger: repoCreateStatus, issueGetComments, issueCreateComment, issueEditComment).
class ForgeDouble {
  requests: { method: string; path: string; headers: http.IncomingHttpHeaders; body: Record<string, unknown> | undefined }[] = [];
  notes: Note[] = [];
  private server!: http.Server;
  private nextId = 1;
  origin = '';

  private readonly handle: Handler;

  constructor(handle: Handler) {
    this.handle = handle;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
        this.requests.push({ method: req.method!, path: req.url!, headers: req.headers, body });
        const [status, answer] = this.handle(this, req.method!, req.url!, req.headers, body);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  id(): number {
    return this.nextId++;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const GITLAB_STATES = ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'];

function gitlab(d: ForgeDouble, method: string, path: string, headers: http.IncomingHttpHeaders, body: Record<string, unknown> | undefined): [number, unknown] {
  if (headers['private-token'] !== TOKEN) return [401, { message: '401 Unauthorized' }];
  let m = /^\/api\/v4\/projects\/acme%2Fconfig\/statuses\/([0-9a-f]{40})$/.exec(path);
  if (m && method === 'POST') {
    if (!GITLAB_STATES.includes(String(body?.state))) return [400, { error: 'state does not have a valid value' }];
    return [201, { id: d.id(), sha: m[1], status: body!.state, name: body!.name, description: body!.description }];
  }
  m = /^\/api\/v4\/projects\/acme%2Fconfig\/merge_requests\/7\/notes(?:\/(\d+))?(?:\?.*)?$/.exec(path);
  if (m && method === 'GET') return [200, d.notes];
  if (m && method === 'POST') {
    const note = { id: d.id(), body: String(body!.body) };
    d.notes.push(note);
    return [201, note];
  }
  if (m?.[1] && method === 'PUT') {
    const note = d.notes.find((n) => n.id === Number(m![1]))!;
    note.body = String(body!.body);
    return [200, note];
  }
  return [404, { message: '404 Not Found' }];
}

const GITEA_STATES = ['pending', 'success', 'error', 'failure', 'warning'];

function gitea(d: ForgeDouble, method: string, path: string, headers: http.IncomingHttpHeaders, body: Record<string, unknown> | undefined): [number, unknown] {
  if (headers.authorization !== `token ${TOKEN}`) return [401, { message: 'token is required' }];
  let m = /^\/api\/v1\/repos\/acme\/config\/statuses\/([0-9a-f]{40})$/.exec(path);
  if (m && method === 'POST') {
    if (!GITEA_STATES.includes(String(body?.state))) return [422, { message: '[State]: invalid state' }];
    return [201, { id: d.id(), status: body!.state, context: body!.context, description: body!.description }];
  }
  m = /^\/api\/v1\/repos\/acme\/config\/issues\/7\/comments$/.exec(path);
  if (m && method === 'GET') return [200, d.notes];
  if (m && method === 'POST') {
    const note = { id: d.id(), body: String(body!.body) };
    d.notes.push(note);
    return [201, note];
  }
  m = /^\/api\/v1\/repos\/acme\/config\/issues\/comments\/(\d+)$/.exec(path);
  if (m && method === 'PATCH') {
    const note = d.notes.find((n) => n.id === Number(m![1]))!;
    note.body = String(body!.body);
    return [200, note];
  }
  return [404, { message: 'Not Found' }];
}

const doubles: ForgeDouble[] = [];
afterEach(async () => {
  for (const d of doubles.splice(0)) await d.stop();
});

async function start(handler: Handler): Promise<ForgeDouble> {
  const d = await new ForgeDouble(handler).start();
  doubles.push(d);
  return d;
}

describe('reconciler/report/forges', () => {
  it.each([
    ['pending', 'pending'],
    ['success', 'success'],
    ['failure', 'failed'],
    ['error', 'failed'],
  ] as const)('GitLab: a %s status is GitLab state %s, named hostkit/HOST, with the token in PRIVATE-TOKEN only', async (state, gitlabState) => {
    const d = await start(gitlab);
    const forge = createGitLabForge({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: `${d.origin}/api/v4`, log: silentLogger() });
    await forge.setCommitStatus(SHA, 'web-1', state, '2 change(s) applied');
    expect(d.requests).toHaveLength(1);
    expect(d.requests[0]!.body).toEqual({ state: gitlabState, name: 'hostkit/web-1', description: '2 change(s) applied' });
    expect(JSON.stringify(d.requests[0]!.body)).not.toContain(TOKEN);
  });

  it.each(['pending', 'success', 'failure', 'error'] as const)('Gitea: a %s status keeps its name, with context hostkit/HOST', async (state) => {
    const d = await start(gitea);
    const forge = createGiteaForge({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: `${d.origin}/api/v1`, log: silentLogger() });
    await forge.setCommitStatus(SHA, 'web-1', state, 'reconciling');
    expect(d.requests[0]).toMatchObject({ method: 'POST', path: `/api/v1/repos/acme/config/statuses/${SHA}`, body: { state, context: 'hostkit/web-1' } });
  });

  it.each([
    ['GitLab', gitlab, createGitLabForge, '/api/v4'],
    ['Gitea', gitea, createGiteaForge, '/api/v1'],
  ] as const)('%s: one plan comment per host, found by its marker and edited in place', async (_name, handler, create, prefix) => {
    const d = await start(handler);
    d.notes.push({ id: 99, body: 'a person wrote this' });
    const forge = create({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: `${d.origin}${prefix}`, log: silentLogger() });
    expect(await forge.upsertPlanComment(7, 'web-1', 'plan v1')).toMatchObject({ created: true });
    const again = await forge.upsertPlanComment(7, 'web-1', 'plan v2');
    expect(again.created).toBe(false);
    expect(d.notes.map((n) => n.body)).toEqual(['a person wrote this', `${planMarker('web-1')}\nplan v2`]);
  });

  it('names the call and the answer on a refusal, and never the token', async () => {
    const d = await start(gitlab);
    const forge = createGitLabForge({ token: 'wrong-token', owner: 'acme', repo: 'config', baseUrl: `${d.origin}/api/v4`, log: silentLogger() });
    const err = await forge.setCommitStatus(SHA, 'web-1', 'success', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKitError);
    expect((err as HostKitError).message).toBe(
      `GitLab API: set commit status failed: POST /projects/acme%2Fconfig/statuses/${SHA} answered 401: 401 Unauthorized (is the forge token valid?)`,
    );
    expect((err as HostKitError).message).not.toContain('wrong-token');
  });

  it('refuses Gitea without an API URL', () => {
    expect(() => createGiteaForge({ token: TOKEN, owner: 'a', repo: 'b', log: silentLogger() })).toThrow(/forge\.baseUrl/);
  });
});
