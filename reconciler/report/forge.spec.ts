import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HostKitError } from '../core/errors.js';
import { createForge, parseForgeRepository, planMarker, type Forge } from './forge.js';

const TOKEN = 'ghp_fakeToken0123456789abcdefABCDEF01';
const SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const PAGE = 2; // the fake pages comments two at a time, so pagination is exercised

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  body: unknown;
}

interface Comment {
  id: number;
  body: string;
  user: { login: string };
}

// The few GitHub REST endpoints the forge uses, under a configurable prefix
// (/api/v3 is GitHub Enterprise Server's), answering like GitHub does.
class FakeGitHub {
  requests: Recorded[] = [];
  comments = new Map<number, Comment[]>();
  statuses: unknown[] = [];
  failWith: { status: number; message: string } | undefined;
  private nextId = 1000;
  private server!: http.Server;
  origin = '';
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  get baseUrl(): string {
    return this.origin + this.prefix;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
    const url = new URL(req.url!, this.origin);
    const body = raw ? JSON.parse(raw) : undefined;
    this.requests.push({ method: req.method!, path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, body });
    const json = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(data));
    };
    if (this.failWith) return json(this.failWith.status, { message: this.failWith.message, documentation_url: 'https://docs.github.com/rest' });
    if (!url.pathname.startsWith(this.prefix + '/repos/acme/config/')) return json(404, { message: 'Not Found' });
    const route = url.pathname.slice((this.prefix + '/repos/acme/config').length);
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && (m = /^\/statuses\/([0-9a-f]{40})$/.exec(route))) {
      this.statuses.push({ sha: m[1], ...body });
      return json(201, { id: this.nextId++, state: body.state, context: body.context });
    }
    if ((m = /^\/issues\/(\d+)\/comments$/.exec(route))) {
      const list = this.comments.get(Number(m[1])) ?? [];
      this.comments.set(Number(m[1]), list);
      if (req.method === 'GET') {
        const page = Number(url.searchParams.get('page') ?? '1');
        const last = Math.max(1, Math.ceil(list.length / PAGE));
        const links: Record<string, string> =
          page < last
            ? {
                link: `<${this.baseUrl}/repos/acme/config${route}?per_page=${PAGE}&page=${page + 1}>; rel="next", <${this.baseUrl}/repos/acme/config${route}?per_page=${PAGE}&page=${last}>; rel="last"`,
              }
            : {};
        return json(200, list.slice((page - 1) * PAGE, page * PAGE), links);
      }
      if (req.method === 'POST') {
        const c = { id: this.nextId++, body: body.body as string, user: { login: 'hostkit-bot' } };
        list.push(c);
        return json(201, c);
      }
    }
    if (req.method === 'PATCH' && (m = /^\/issues\/comments\/(\d+)$/.exec(route))) {
      for (const list of this.comments.values()) {
        const c = list.find((x) => x.id === Number(m![1]));
        if (c) {
          c.body = body.body;
          return json(200, c);
        }
      }
      return json(404, { message: 'Not Found' });
    }
    json(404, { message: 'Not Found' });
  }
}

describe('reconciler/report/forge', () => {
  const github = new FakeGitHub('/api/v3');
  let logLines: string[];
  let forge: Forge;

  beforeAll(() => github.start());
  afterAll(() => github.stop());
  beforeEach(() => {
    github.requests = [];
    github.comments.clear();
    github.statuses = [];
    github.failWith = undefined;
    logLines = [];
    const log = pino({ level: 'trace' }, { write: (s: string) => void logLines.push(s) });
    // Octokit paces writes at about one a second; the first test keeps that default, the others turn it off.
    forge = createForge({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: github.baseUrl, log, throttle: false });
  });
  afterEach(() => expect(logLines.join('')).not.toContain(TOKEN));

  it('sets a commit status per host with context hostkit/<host>, through the enterprise base URL, with the token', async () => {
    const log = pino({ level: 'trace' }, { write: (s: string) => void logLines.push(s) });
    forge = createForge({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: github.baseUrl, log });
    await forge.setCommitStatus(SHA, 'web-1', 'pending', 'planning', 'https://ci.example/run/1');
    await forge.setCommitStatus(SHA, 'web-2', 'failure', 'x'.repeat(300));
    expect(github.statuses).toEqual([
      { sha: SHA, state: 'pending', context: 'hostkit/web-1', description: 'planning', target_url: 'https://ci.example/run/1' },
      { sha: SHA, state: 'failure', context: 'hostkit/web-2', description: 'x'.repeat(139) + '…' },
    ]);
    expect(github.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST /api/v3/repos/acme/config/statuses/${SHA}`,
      `POST /api/v3/repos/acme/config/statuses/${SHA}`,
    ]);
    for (const r of github.requests) expect(r.authorization).toMatch(new RegExp(`^(token|bearer) ${TOKEN}$`, 'i'));
  });

  it('creates one plan comment per host, then edits it in place; other hosts’ and humans’ comments are untouched', async () => {
    const human = { id: 1, body: 'LGTM, but see my note about web-2', user: { login: 'alice' } };
    const otherHost = { id: 2, body: `${planMarker('web-1')}\n### web-1\nno changes`, user: { login: 'hostkit-bot' } };
    const quoting = { id: 3, body: `> ${planMarker('web-2')}\n> old plan, quoted by a human`, user: { login: 'bob' } };
    const more = [4, 5].map((id) => ({ id, body: `comment ${id}`, user: { login: 'carol' } }));
    github.comments.set(7, [human, otherHost, quoting, ...more]);
    const before = structuredClone(github.comments.get(7)!);

    const first = await forge.upsertPlanComment(7, 'web-2', '### web-2\n+ site shop.example');
    expect(first.created).toBe(true);
    github.requests = [];
    const second = await forge.upsertPlanComment(7, 'web-2', '### web-2\n+ site shop.example\n+ site blog.example');
    expect(second).toEqual({ id: first.id, created: false });

    // The second call read every page and changed only its own comment: no second POST.
    const calls = github.requests.map((r) => `${r.method} ${r.path}${r.query.get('page') ? `?page=${r.query.get('page')}` : ''}`);
    expect(calls).toEqual([
      'GET /api/v3/repos/acme/config/issues/7/comments',
      'GET /api/v3/repos/acme/config/issues/7/comments?page=2',
      'GET /api/v3/repos/acme/config/issues/7/comments?page=3',
      `PATCH /api/v3/repos/acme/config/issues/comments/${first.id}`,
    ]);
    const after = github.comments.get(7)!;
    expect(after).toHaveLength(6);
    expect(after.slice(0, 5)).toEqual(before);
    expect(after[5]!.body).toBe(`${planMarker('web-2')}\n### web-2\n+ site shop.example\n+ site blog.example`);

    // The same plan again: found, not rewritten.
    github.requests = [];
    await forge.upsertPlanComment(7, 'web-2', '### web-2\n+ site shop.example\n+ site blog.example');
    expect(github.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('each host gets its own comment on the same pull request', async () => {
    const a = await forge.upsertPlanComment(9, 'web-1', 'plan a');
    const b = await forge.upsertPlanComment(9, 'web-2', 'plan b');
    const a2 = await forge.upsertPlanComment(9, 'web-1', 'plan a, again');
    expect([a.created, b.created, a2.created]).toEqual([true, true, false]);
    expect(a2.id).toBe(a.id);
    expect(github.comments.get(9)!.map((c) => c.body)).toEqual([`${planMarker('web-1')}\nplan a, again`, `${planMarker('web-2')}\nplan b`]);
  });

  it('a plan over GitHub’s comment size limit is truncated with a note', async () => {
    await forge.upsertPlanComment(3, 'web-1', 'y'.repeat(70_000));
    const body = github.comments.get(3)![0]!.body;
    expect(body.length).toBe(65_536);
    expect(body).toMatch(/plan truncated/);
  });

  it.each([
    [
      401,
      'Bad credentials',
      /set commit status failed: POST \/repos\/acme\/config\/statuses\/\w+ answered 401: Bad credentials \(is the forge token valid\?\)/,
      false,
    ],
    [404, 'Not Found', /answered 404: Not Found \(does the token have access/, false],
    [422, 'Validation Failed', /answered 422: Validation Failed/, false],
  ])('an API error %i surfaces as a clear HostKitError without the token', async (status, message, pattern, retryable) => {
    github.failWith = { status, message };
    const error = await forge.setCommitStatus(SHA, 'web-1', 'success', 'ok').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostKitError);
    const e = error as HostKitError;
    expect(e.code).toBe('FORGE_API');
    expect(e.message).toMatch(pattern);
    expect(e.retryable).toBe(retryable);
    expect(JSON.stringify({ message: e.message, data: e.data, stack: e.stack })).not.toContain(TOKEN);
  });

  it('an API that does not answer: FORGE_UNREACHABLE, retryable, without the token', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const f = createForge({
      token: TOKEN,
      owner: 'acme',
      repo: 'config',
      baseUrl: `http://127.0.0.1:${port}/api/v3`,
      log: pino({ level: 'silent' }),
      retries: 0,
    });
    const error = (await f.setCommitStatus(SHA, 'web-1', 'success', 'ok').catch((e: unknown) => e)) as HostKitError;
    expect(error.code).toBe('FORGE_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(
      /set commit status failed: POST \/repos\/acme\/config\/statuses\/\w+: no answer from the API \(.*(ECONNREFUSED|fetch failed)/,
    );
    expect(error.message).not.toContain(TOKEN);
  });

  it('an error while listing comments names the listing', async () => {
    github.failWith = { status: 404, message: 'Not Found' };
    await expect(forge.upsertPlanComment(7, 'web-1', 'plan')).rejects.toThrow(
      /list pull request comments failed: GET \/repos\/acme\/config\/issues\/7\/comments answered 404/,
    );
  });

  it('works against a base URL without a path prefix, and a trailing slash is tolerated', async () => {
    const root = new FakeGitHub('');
    await root.start();
    try {
      const f = createForge({ token: TOKEN, owner: 'acme', repo: 'config', baseUrl: root.origin + '/', log: pino({ level: 'silent' }) });
      await f.setCommitStatus(SHA, 'db-1', 'success', 'applied');
      expect(root.requests.map((r) => r.path)).toEqual([`/repos/acme/config/statuses/${SHA}`]);
    } finally {
      await root.stop();
    }
  });

  it('an empty token is refused up front', () => {
    expect(() => createForge({ token: '', owner: 'acme', repo: 'config', log: pino({ level: 'silent' }) })).toThrow(/forge token/);
  });

  it.each([
    ['https://github.com/acme/config.git', { owner: 'acme', repo: 'config' }],
    ['https://github.com/acme/config', { owner: 'acme', repo: 'config' }],
    ['https://x-access-token:abc@github.com/acme/config.git', { owner: 'acme', repo: 'config' }],
    ['git@github.com:acme/config.git', { owner: 'acme', repo: 'config' }],
    ['git@github.com:acme/config', { owner: 'acme', repo: 'config' }],
    ['ssh://git@github.example.com:2222/acme/config.git', { owner: 'acme', repo: 'config' }],
    ['https://ghe.example.com/acme/con.fig.git/', { owner: 'acme', repo: 'con.fig' }],
    ['/srv/git/config.git', undefined],
    ['file:///srv/git/acme/config.git', undefined],
    ['https://gitlab.example.com/group/sub/config.git', undefined],
    ['not a url', undefined],
  ])('parseForgeRepository(%s)', (url, expected) => {
    expect(parseForgeRepository(url)).toEqual(expected);
  });
});
