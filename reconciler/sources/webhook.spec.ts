import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryCache, startWebhookServer, type WebhookEvent, type WebhookOutcome, type WebhookServer, type WebhookServerOptions } from './webhook.js';

const SECRET = 'whsec-5f2b9c1e-do-not-log';
const HEAD = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const BASE = '9049f1265b7d61be4a8904a9a27120d2064dab3b';

// Trimmed from the providers' documented example payloads.
const GITHUB_PUSH = {
  ref: 'refs/heads/main',
  before: BASE,
  after: HEAD,
  repository: { id: 186853002, full_name: 'acme/config', default_branch: 'main' },
  pusher: { name: 'octocat', email: 'octocat@github.com' },
  head_commit: { id: HEAD, message: 'web-1: bump nginx worker count', timestamp: '2026-11-22T05:00:00Z' },
};
const GITHUB_PR = {
  action: 'synchronize',
  number: 7,
  pull_request: {
    url: 'https://api.github.com/repos/acme/config/pulls/7',
    id: 279147437,
    number: 7,
    state: 'open',
    title: 'Add a site',
    head: { label: 'acme:add-site', ref: 'add-site', sha: HEAD },
    base: { label: 'acme:main', ref: 'main', sha: BASE },
  },
  repository: { full_name: 'acme/config' },
  sender: { login: 'octocat' },
};
const GITLAB_PUSH = {
  object_kind: 'push',
  event_name: 'push',
  before: BASE,
  after: HEAD,
  ref: 'refs/heads/main',
  ref_protected: true,
  checkout_sha: HEAD,
  user_username: 'jsmith',
  project_id: 15,
  project: { id: 15, path_with_namespace: 'acme/config', default_branch: 'main' },
  commits: [{ id: HEAD, message: 'web-1: bump nginx worker count\n', added: [], modified: ['hosts/web-1.yaml'], removed: [] }],
  total_commits_count: 1,
};
const GITLAB_MR = {
  object_kind: 'merge_request',
  event_type: 'merge_request',
  user: { id: 1, username: 'root' },
  project: { id: 1, path_with_namespace: 'acme/config' },
  object_attributes: {
    id: 99,
    iid: 3,
    target_branch: 'main',
    source_branch: 'add-site',
    source_project_id: 1,
    state: 'opened',
    title: 'Add a site',
    last_commit: { id: HEAD, message: 'Add a site', author: { name: 'Root' } },
    action: 'update',
  },
};
const GITEA_PUSH = {
  ref: 'refs/heads/main',
  before: BASE,
  after: HEAD,
  compare_url: 'https://gitea.example.com/acme/config/compare/9049f12...6113728',
  commits: [{ id: HEAD, message: 'web-1: bump nginx worker count\n', url: 'https://gitea.example.com/acme/config/commit/6113728' }],
  repository: { id: 1, full_name: 'acme/config', default_branch: 'main' },
  pusher: { login: 'gitea' },
};
const GITEA_PR = {
  action: 'synchronized',
  number: 4,
  pull_request: { id: 12, number: 4, state: 'open', head: { label: 'add-site', ref: 'add-site', sha: HEAD }, base: { label: 'main', ref: 'main', sha: BASE } },
  repository: { full_name: 'acme/config' },
};

const hmac = (body: string, secret = SECRET) => crypto.createHmac('sha256', secret).update(body).digest('hex');

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

// A raw request with real sockets; resolves on the answer even when the
// server answers before the whole body has been sent (413).
function request(
  url: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[]; holdOpen?: boolean } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${options.path ?? '/webhook'}`, { method: options.method ?? 'POST', headers: options.headers ?? {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    if (options.chunks) {
      for (const c of options.chunks) req.write(c);
      if (!options.holdOpen) req.end();
    } else req.end(options.body);
  });
}

function post(url: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return request(url, { headers: { 'content-type': 'application/json', ...headers }, body });
}

const signedBy: Record<string, (body: string, event: string, delivery?: string) => Record<string, string>> = {
  github: (body, event, delivery) => ({
    'x-github-event': event,
    'x-hub-signature-256': `sha256=${hmac(body)}`,
    ...(delivery ? { 'x-github-delivery': delivery } : {}),
  }),
  gitlab: (_body, event, delivery) => ({ 'x-gitlab-event': event, 'x-gitlab-token': SECRET, ...(delivery ? { 'x-gitlab-event-uuid': delivery } : {}) }),
  gitea: (body, event, delivery) => ({
    // Gitea also sends GitHub's headers; the Gitea ones must win.
    'x-gitea-event': event,
    'x-github-event': event,
    'x-gitea-signature': hmac(body),
    ...(delivery ? { 'x-gitea-delivery': delivery } : {}),
  }),
  forgejo: (body, event, delivery) => ({
    'x-forgejo-event': event,
    'x-forgejo-signature': hmac(body),
    ...(delivery ? { 'x-forgejo-delivery': delivery } : {}),
  }),
  generic: (body, event, delivery) => ({
    'x-hostkit-event': event,
    'x-hostkit-signature': `sha256=${hmac(body)}`,
    ...(delivery ? { 'x-hostkit-delivery': delivery } : {}),
  }),
};

describe('reconciler/sources/webhook', () => {
  let server: WebhookServer;
  let events: WebhookEvent[];
  let outcomes: WebhookOutcome[];
  let logLines: string[];

  async function start(extra: Partial<WebhookServerOptions> = {}): Promise<WebhookServer> {
    await server?.close();
    const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      secret: Buffer.from(SECRET),
      onEvent: (e) => void events.push(e),
      onOutcome: (o) => void outcomes.push(o),
      log,
      ...extra,
    });
    return server;
  }

  beforeEach(async () => {
    events = [];
    outcomes = [];
    logLines = [];
    await start();
  });
  afterEach(async () => {
    await server.close();
    // Nothing secret reaches the log: not the secret, not a signature.
    const log = logLines.join('');
    expect(log).not.toContain(SECRET);
    expect(log).not.toMatch(/[0-9a-f]{64}/);
  });

  const pushCases = [
    { provider: 'github', as: 'github', event: 'push', payload: GITHUB_PUSH, delivery: '72d3162e-cc78-11e3-81ab-4c9367dc0958' },
    { provider: 'gitlab', as: 'gitlab', event: 'Push Hook', payload: GITLAB_PUSH, delivery: 'e7a5d3c2-0b1f-4f5e-9a1b-2c3d4e5f6a7b' },
    { provider: 'gitea', as: 'gitea', event: 'push', payload: GITEA_PUSH, delivery: 'f6266f16-1bf3-46a5-9ea4-602e06ead473' },
    { provider: 'gitea', as: 'forgejo', event: 'push', payload: GITEA_PUSH, delivery: '0b9f7c3e-forgejo' },
    { provider: 'generic', as: 'generic', event: 'push', payload: { ref: 'refs/heads/main', after: HEAD }, delivery: 'ci-run-1' },
  ] as const;

  it.each(pushCases)('$as: a signed push gets 202 and wakes the loop with ref and after', async ({ provider, as, event, payload, delivery }) => {
    const body = JSON.stringify(payload);
    const r = await post(server.url, signedBy[as]!(body, event, delivery), body);
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body)).toMatchObject({ accepted: true, deliveryId: delivery, kind: 'push' });
    const headMessage =
      (payload as { head_commit?: { message: string }; commits?: { message: string }[] }).head_commit?.message ??
      (payload as { commits?: { message: string }[] }).commits?.at(-1)?.message;
    expect(events).toEqual([
      { provider, deliveryId: delivery, kind: 'push', event, ref: 'refs/heads/main', after: HEAD, ...(headMessage ? { headMessage } : {}) },
    ]);
    if (as !== 'generic') expect(headMessage).toMatch(/^web-1: bump nginx worker count/);
  });

  const prCases = [
    { provider: 'github', as: 'github', event: 'pull_request', payload: GITHUB_PR, pr: { number: 7, action: 'synchronize' } },
    { provider: 'gitlab', as: 'gitlab', event: 'Merge Request Hook', payload: GITLAB_MR, pr: { number: 3, action: 'update' } },
    { provider: 'gitea', as: 'gitea', event: 'pull_request', payload: GITEA_PR, pr: { number: 4, action: 'synchronized' } },
    { provider: 'generic', as: 'generic', event: 'pull_request', payload: GITHUB_PR, pr: { number: 7, action: 'synchronize' } },
  ] as const;

  it.each(prCases)('$as: a signed pull request event carries number, action, head sha and refs', async ({ provider, as, event, payload, pr }) => {
    const body = JSON.stringify(payload);
    const r = await post(server.url, signedBy[as]!(body, event, 'd-1'), body);
    expect(r.status).toBe(202);
    expect(events).toEqual([
      { provider, deliveryId: 'd-1', kind: 'pull_request', event, pullRequest: { ...pr, headSha: HEAD, headRef: 'add-site', baseRef: 'main' } },
    ]);
  });

  it('github: ping is accepted as kind ping; other events as other', async () => {
    const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
    expect((await post(server.url, signedBy.github!(ping, 'ping', 'p-1'), ping)).status).toBe(202);
    const star = JSON.stringify({ action: 'created' });
    expect((await post(server.url, signedBy.github!(star, 'star', 's-1'), star)).status).toBe(202);
    expect(events.map((e) => e.kind)).toEqual(['ping', 'other']);
  });

  it('github: a form-encoded payload is verified over the raw body and decoded', async () => {
    const body = new URLSearchParams({ payload: JSON.stringify(GITHUB_PUSH) }).toString();
    const r = await request(server.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...signedBy.github!(body, 'push', 'form-1') },
      body,
    });
    expect(r.status).toBe(202);
    expect(events[0]).toMatchObject({ kind: 'push', ref: 'refs/heads/main', after: HEAD });
  });

  it('generic: a JSON body sent as a form (curl -d) is still read as JSON', async () => {
    const b = JSON.stringify({ ref: 'refs/heads/main' });
    const r = await request(server.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...signedBy.generic!(b, 'push', 'curl-1') },
      body: b,
    });
    expect(r.status).toBe(202);
    expect(events[0]).toMatchObject({ provider: 'generic', ref: 'refs/heads/main' });
  });

  const body = JSON.stringify(GITHUB_PUSH);
  const bad: [string, Record<string, string>][] = [
    ['github: signature made with another secret', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body, 'wrong')}` }],
    ['github: signature of another body', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body + ' ')}` }],
    ['github: signature without the sha256= prefix', { 'x-github-event': 'push', 'x-hub-signature-256': hmac(body) }],
    ['github: event header but no signature', { 'x-github-event': 'push', 'x-github-delivery': 'u-1' }],
    ['github: truncated signature', { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body).slice(0, 10)}` }],
    ['gitlab: wrong token', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET + 'x' }],
    ['gitlab: no token', { 'x-gitlab-event': 'Push Hook' }],
    ['gitea: wrong signature', { 'x-gitea-event': 'push', 'x-gitea-signature': hmac(body, 'wrong') }],
    ['gitea: GitHub-style signature only (Gitea headers present)', { 'x-gitea-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body)}` }],
    ['forgejo: no signature', { 'x-forgejo-event': 'push' }],
    ['generic: wrong signature', { 'x-hostkit-signature': `sha256=${hmac(body, 'wrong')}` }],
    ['no provider headers at all', {}],
    ['an unknown provider (Bitbucket)', { 'x-event-key': 'repo:push', 'x-hub-signature': `sha256=${hmac(body)}` }],
  ];

  it.each(bad)('%s: 401 and the loop is not woken', async (_name, headers) => {
    const r = await post(server.url, headers, body);
    expect(r.status).toBe(401);
    expect(events).toEqual([]);
    expect(outcomes.at(-1)).toMatchObject({ status: 401, reason: 'unauthorized' });
  });

  it('a request signed with the right secret is not parsed before it is verified (401, not 400, for a bad body)', async () => {
    const r = await post(server.url, { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac('{}')}` }, '{not json');
    expect(r.status).toBe(401);
  });

  it('malformed JSON with a valid signature: 400, and a later good delivery with that id still counts', async () => {
    const broken = '{"ref": "refs/heads/main", ';
    const r = await post(server.url, signedBy.github!(broken, 'push', 'same-id'), broken);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('malformed payload: not valid JSON');
    expect(events).toEqual([]);
    expect((await post(server.url, signedBy.github!(body, 'push', 'same-id'), body)).status).toBe(202);
    expect(events).toHaveLength(1);
  });

  it('valid JSON without the fields the event needs: 400 naming the field', async () => {
    const noHead = JSON.stringify({ action: 'opened', number: 1, pull_request: { base: { ref: 'main' } } });
    const r = await post(server.url, signedBy.github!(noHead, 'pull_request', 'x-1'), noHead);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toContain('pull_request.head.sha');
    expect(events).toEqual([]);
  });

  it.each(['github', 'gitlab', 'gitea', 'generic'] as const)('%s: a replayed delivery id is handled once (200 duplicate)', async (as) => {
    const event = as === 'gitlab' ? 'Push Hook' : 'push';
    const payload = as === 'gitlab' ? GITLAB_PUSH : GITHUB_PUSH;
    const b = JSON.stringify(payload);
    const first = await post(server.url, signedBy[as]!(b, event, 'replay-1'), b);
    const again = await post(server.url, signedBy[as]!(b, event, 'replay-1'), b);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toEqual({ duplicate: true });
    expect(events).toHaveLength(1);
  });

  it('100 signed deliveries at once: each handled once, even when every one is sent twice concurrently', async () => {
    const sends = Array.from({ length: 100 }, (_, i) => {
      const b = JSON.stringify({ ...GITHUB_PUSH, after: HEAD.slice(0, 38) + String(i).padStart(2, '0') });
      const headers = signedBy.github!(b, 'push', `burst-${i}`);
      return [post(server.url, headers, b), post(server.url, headers, b)];
    });
    const statuses = (await Promise.all(sends.flat())).map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(100);
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(new Set(events.map((e) => e.deliveryId)).size).toBe(100);
    expect(events).toHaveLength(100);
  });

  it('without a delivery id header, the same body is recognized as a replay by its hash', async () => {
    const headers = signedBy.gitlab!(body, 'Push Hook');
    expect((await post(server.url, headers, body)).status).toBe(202);
    expect((await post(server.url, headers, body)).status).toBe(200);
    expect(events).toHaveLength(1);
    expect(events[0]!.deliveryId).toMatch(/^sha256:[0-9a-f]{64}$/);
    logLines = []; // the hash of the body is not a secret; keep the afterEach check about signatures
  });

  it('the delivery cache is bounded: the oldest id is forgotten first', () => {
    const cache = new DeliveryCache(2);
    expect([cache.add('a'), cache.add('b'), cache.add('a'), cache.add('c'), cache.add('a'), cache.add('c')]).toEqual([true, true, false, true, true, false]);
  });

  it('an oversized body (declared length) gets 413 without being read', async () => {
    await start({ maxBodyBytes: 1024 });
    const big = JSON.stringify({ ref: 'refs/heads/main', pad: 'x'.repeat(4096) });
    const r = await post(server.url, signedBy.github!(big, 'push', 'big-1'), big);
    expect(r.status).toBe(413);
    expect(events).toEqual([]);
    expect(outcomes).toEqual([{ status: 413, reason: 'too_large', provider: 'github' }]);
  });

  it('an oversized chunked body gets 413 as soon as the limit is passed, before the client has finished sending', async () => {
    await start({ maxBodyBytes: 64 * 1024 });
    const headers = { 'transfer-encoding': 'chunked', ...signedBy.github!('irrelevant', 'push', 'big-2') };
    // 96 KiB sent and the request kept open: the answer must not wait for the end.
    const r = await request(server.url, { headers, chunks: [Buffer.alloc(48 * 1024, 0x20), Buffer.alloc(48 * 1024, 0x20)], holdOpen: true });
    expect(r.status).toBe(413);
    expect(r.headers.connection).toBe('close');
    expect(events).toEqual([]);
  });

  it('a body exactly at the limit is accepted', async () => {
    const payload = JSON.stringify({ ref: 'refs/heads/main', after: HEAD });
    await start({ maxBodyBytes: Buffer.byteLength(payload) });
    expect((await post(server.url, signedBy.github!(payload, 'push', 'edge'), payload)).status).toBe(202);
  });

  it.each([
    ['GET', '/webhook', 405],
    ['PUT', '/webhook', 405],
    ['POST', '/', 404],
    ['POST', '/webhooks', 404],
    ['GET', '/metrics', 404], // no metrics callback configured
    ['POST', '/healthz', 405],
  ])('%s %s: %i', async (method, path, status) => {
    const r = await request(server.url, { method, path, headers: signedBy.github!(body, 'push', 'm-1'), body: method === 'GET' ? undefined : body });
    expect(r.status).toBe(status);
    expect(events).toEqual([]);
  });

  it('a query string does not change the route', async () => {
    const r = await request(server.url, { path: '/webhook?source=github', headers: signedBy.github!(body, 'push', 'q-1'), body });
    expect(r.status).toBe(202);
  });

  it('/healthz: 200 with detail when healthy, 503 when not, 200 by default', async () => {
    expect(JSON.parse((await request(server.url, { method: 'GET', path: '/healthz' })).body)).toEqual({ ok: true });
    let ok = true;
    await start({ health: () => ({ ok, detail: { lastRun: 'applied' } }) });
    const good = await request(server.url, { method: 'GET', path: '/healthz' });
    expect([good.status, JSON.parse(good.body)]).toEqual([200, { ok: true, lastRun: 'applied' }]);
    ok = false;
    const bad = await request(server.url, { method: 'GET', path: '/healthz' });
    expect([bad.status, JSON.parse(bad.body)]).toEqual([503, { ok: false, lastRun: 'applied' }]);
    expect((await request(server.url, { method: 'HEAD', path: '/healthz' })).status).toBe(503);
  });

  it('/metrics serves what the callback returns, with its content type; a failing callback gives 500', async () => {
    let fail = false;
    await start({
      metrics: async () => {
        if (fail) throw new Error('registry broken');
        return { contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'hostkit_runs_total 3\n' };
      },
    });
    const r = await request(server.url, { method: 'GET', path: '/metrics' });
    expect([r.status, r.headers['content-type'], r.body]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8', 'hostkit_runs_total 3\n']);
    fail = true;
    expect((await request(server.url, { method: 'GET', path: '/metrics' })).status).toBe(500);
  });

  it('a throwing onEvent is logged, the sender still gets 202 and the server keeps serving', async () => {
    await start({
      onEvent: () => {
        throw new Error('boom');
      },
    });
    expect((await post(server.url, signedBy.github!(body, 'push', 't-1'), body)).status).toBe(202);
    expect((await request(server.url, { method: 'GET', path: '/healthz' })).status).toBe(200);
    expect(logLines.join('')).toContain('webhook onEvent threw');
  });

  it('a client that disconnects in the middle of its body is forgotten; the server keeps serving', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\nx-github-event: push\r\nx-hub-signature-256: sha256=${hmac('x')}\r\n\r\n{"ref"`);
    await new Promise((r) => setTimeout(r, 100));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(outcomes).toEqual([{ status: 0, reason: 'aborted', provider: 'github' }]);
    expect((await post(server.url, signedBy.github!(body, 'push', 'after-abort'), body)).status).toBe(202);
    expect(events).toHaveLength(1);
  });

  it('a client that sends headers and then stalls is cut off by the request timeout', async () => {
    await start({ requestTimeoutMs: 500 });
    const socket = net.connect(server.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const started = Date.now();
    socket.write('POST /webhook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nx-github-event: push\r\nx-hub-signature-256: sha256=00\r\n\r\n{"ref"');
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    expect(events).toEqual([]);
  });

  it('an empty secret is refused at start', async () => {
    await expect(start({ secret: Buffer.alloc(0) })).rejects.toThrow(/non-empty webhook secret/);
  });

  it('listens on an ephemeral port and reports its URL', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });
});
