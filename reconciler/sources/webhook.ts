// The webhook receiver `hostkit agent` serves. A webhook only wakes the loop:
// the event says which branch or pull request moved, and the loop reads the
// commit from git itself, so a forged or stale payload can at worst cause an
// extra (harmless) run. Requests are authenticated over the raw bytes before
// any JSON is parsed, bodies are counted while they stream, and each delivery
// id is handled once.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export type WebhookProvider = 'github' | 'gitlab' | 'gitea' | 'generic';

export interface WebhookEvent {
  provider: WebhookProvider;
  deliveryId: string;
  kind: 'push' | 'pull_request' | 'ping' | 'other';
  /** The provider's own event name (X-GitHub-Event, X-Gitlab-Event, ...). */
  event?: string;
  ref?: string; // push: e.g. refs/heads/main
  after?: string; // push: head commit (informational; the loop always reads git itself)
  /** push: the message of the head commit when the payload carries it (GitHub and Gitea head_commit, GitLab's last commit). */
  headMessage?: string;
  pullRequest?: { number: number; action: string; headSha: string; headRef: string; baseRef: string };
}

/** What happened to one request, for metrics (never carries secrets or signatures). */
export interface WebhookOutcome {
  status: number;
  reason: 'accepted' | 'duplicate' | 'unauthorized' | 'too_large' | 'malformed' | 'method' | 'not_found' | 'aborted';
  provider?: WebhookProvider;
}

export interface WebhookServerOptions {
  host: string;
  port: number; // 0 = ephemeral
  secret: Buffer; // shared secret, read from the configured secret file
  maxBodyBytes?: number; // default 1 MiB; larger bodies get 413 without being buffered
  deliveryCacheSize?: number; // delivery ids remembered for replay detection (default 1000)
  onEvent(event: WebhookEvent): void; // only wakes the loop; must not throw
  metrics?: () => Promise<{ contentType: string; body: string }>; // served at GET /metrics
  health?: () => { ok: boolean; detail?: Record<string, unknown> }; // GET /healthz: 200 or 503, JSON
  /** Called once per /webhook request with its answer (for counters). */
  onOutcome?: (outcome: WebhookOutcome) => void;
  /** Whole-request limit: a client that has not sent its headers and body by then gets 408 (default 15 s). */
  requestTimeoutMs?: number;
  log: Logger;
}

export interface WebhookServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export const WEBHOOK_PATH = '/webhook';
const DEFAULT_MAX_BODY = 1024 * 1024;
const DEFAULT_CACHE = 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
// After a 413, how long the rest of an oversized body is read and discarded so
// the client sees the answer instead of a reset; then the socket is closed.
const DISCARD_GRACE_MS = 1000;

/** Replay detection: the most recent delivery ids, oldest evicted first. */
export class DeliveryCache {
  private readonly seen = new Set<string>();
  private readonly capacity: number;
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Remember `key`; false when it was already there. */
  add(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value!);
    return true;
  }
}

interface Verifier {
  provider: WebhookProvider;
  event: string;
  deliveryId?: string;
  /** Constant-time check of the raw body against the shared secret. */
  verify(body: Buffer, secret: Buffer): boolean;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function hmacHex(secret: Buffer, body: Buffer): string {
  return crypto.createHmac('sha256', secret).update(body).digest('hex');
}

// Equal-length digests, so timingSafeEqual never throws and the time taken
// does not depend on where (or whether) the inputs differ.
function safeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db);
}

function hmacVerifier(signature: string | undefined, prefix: string): Verifier['verify'] {
  return (body, secret) => signature !== undefined && safeEqual(signature.trim().toLowerCase(), prefix + hmacHex(secret, body));
}

// The provider is told by its headers. Gitea and Forgejo also send GitHub's
// headers for compatibility, so they are recognized first; GitLab next; then
// GitHub; then the generic HostKit header. No signature header: undefined (401).
export function detectProvider(req: http.IncomingMessage): Verifier | undefined {
  const gitea = header(req, 'x-forgejo-signature') ?? header(req, 'x-gitea-signature');
  const giteaEvent = header(req, 'x-forgejo-event') ?? header(req, 'x-gitea-event');
  if (gitea !== undefined || giteaEvent !== undefined) {
    return {
      provider: 'gitea',
      event: header(req, 'x-forgejo-event-type') ?? header(req, 'x-gitea-event-type') ?? giteaEvent ?? '',
      deliveryId: header(req, 'x-forgejo-delivery') ?? header(req, 'x-gitea-delivery'),
      verify: hmacVerifier(gitea, ''),
    };
  }
  const gitlabToken = header(req, 'x-gitlab-token');
  const gitlabEvent = header(req, 'x-gitlab-event');
  if (gitlabToken !== undefined || gitlabEvent !== undefined) {
    return {
      provider: 'gitlab',
      event: gitlabEvent ?? '',
      deliveryId: header(req, 'x-gitlab-event-uuid'),
      verify: (_body, secret) => gitlabToken !== undefined && safeEqual(gitlabToken, secret),
    };
  }
  const hub = header(req, 'x-hub-signature-256');
  const githubEvent = header(req, 'x-github-event');
  if (hub !== undefined || githubEvent !== undefined) {
    return { provider: 'github', event: githubEvent ?? '', deliveryId: header(req, 'x-github-delivery'), verify: hmacVerifier(hub, 'sha256=') };
  }
  const generic = header(req, 'x-hostkit-signature');
  if (generic !== undefined) {
    return {
      provider: 'generic',
      event: header(req, 'x-hostkit-event') ?? 'push',
      deliveryId: header(req, 'x-hostkit-delivery'),
      verify: hmacVerifier(generic, 'sha256='),
    };
  }
  return undefined;
}

export class PayloadError extends Error {}

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function str(o: Json, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new PayloadError(`expected a string at ${where}${key}, got ${v === undefined ? 'nothing' : typeof v}`);
  return v;
}

function num(o: Json, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new PayloadError(`expected an integer at ${where}${key}, got ${v === undefined ? 'nothing' : typeof v}`);
  return v;
}

function kindOf(provider: WebhookProvider, event: string): WebhookEvent['kind'] {
  if (provider === 'gitlab') {
    if (event === 'Push Hook' || event === 'Tag Push Hook') return 'push';
    if (event === 'Merge Request Hook') return 'pull_request';
    return 'other';
  }
  if (event === 'push' || event === 'ping') return event;
  if (event === 'pull_request' || (provider === 'gitea' && event.startsWith('pull_request'))) return 'pull_request';
  return 'other';
}

// GitHub, Gitea/Forgejo and the generic format share GitHub's pull request shape.
function githubPullRequest(body: Json): WebhookEvent['pullRequest'] {
  const pr = obj(body.pull_request);
  const head = obj(pr.head);
  return {
    number: typeof body.number === 'number' ? num(body, 'number', '') : num(pr, 'number', 'pull_request.'),
    action: typeof body.action === 'string' ? body.action : '',
    headSha: str(head, 'sha', 'pull_request.head.'),
    headRef: str(head, 'ref', 'pull_request.head.'),
    baseRef: str(obj(pr.base), 'ref', 'pull_request.base.'),
  };
}

function gitlabMergeRequest(body: Json): WebhookEvent['pullRequest'] {
  const mr = obj(body.object_attributes);
  return {
    number: num(mr, 'iid', 'object_attributes.'),
    action: typeof mr.action === 'string' ? mr.action : '',
    headSha: str(obj(mr.last_commit), 'id', 'object_attributes.last_commit.'),
    headRef: str(mr, 'source_branch', 'object_attributes.'),
    baseRef: str(mr, 'target_branch', 'object_attributes.'),
  };
}

/** The fields the loop needs from a verified payload; throws PayloadError on a missing field. */
export function parseEvent(provider: WebhookProvider, event: string, deliveryId: string, payload: unknown): WebhookEvent {
  const body = obj(payload);
  const kind = kindOf(provider, event);
  const out: WebhookEvent = { provider, deliveryId, kind, event };
  if (kind === 'push') {
    out.ref = str(body, 'ref', '');
    const after = body.after ?? body.checkout_sha;
    if (typeof after === 'string') out.after = after;
    const commits = Array.isArray(body.commits) ? body.commits : [];
    const head = obj(body.head_commit ?? commits[commits.length - 1]);
    if (typeof head.message === 'string') out.headMessage = head.message;
  } else if (kind === 'pull_request') {
    out.pullRequest = provider === 'gitlab' ? gitlabMergeRequest(body) : githubPullRequest(body);
  }
  return out;
}

// GitHub can be configured to send application/x-www-form-urlencoded with the
// JSON in `payload`. Other senders' bodies are JSON whatever they declare (curl -d says form).
function decodeBody(req: http.IncomingMessage, provider: WebhookProvider, raw: Buffer): unknown {
  const text = raw.toString('utf8');
  if (provider === 'github' && (header(req, 'content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new PayloadError('form body without a payload field');
    return JSON.parse(payload);
  }
  return JSON.parse(text);
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

// Answer now and stop reading: what is still arriving is discarded (never
// buffered) for a short grace so the client can read the answer, then the
// connection is closed.
function rejectAndClose(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
  req.removeAllListeners('data');
  send(res, status, body, { connection: 'close' });
  req.on('data', () => undefined);
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_GRACE_MS);
  timer.unref();
  req.socket.once('close', () => clearTimeout(timer));
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const { log, secret } = options;
  if (secret.length === 0) throw new Error('Expected a non-empty webhook secret, got an empty one');
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const deliveries = new DeliveryCache(options.deliveryCacheSize ?? DEFAULT_CACHE);
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;

  const outcome = (o: WebhookOutcome, fields: Record<string, unknown> = {}) => {
    const level = o.reason === 'accepted' || o.reason === 'duplicate' ? 'info' : 'warn';
    log[level]({ status: o.status, reason: o.reason, ...(o.provider ? { provider: o.provider } : {}), ...fields }, 'webhook');
    try {
      options.onOutcome?.(o);
    } catch (error) {
      log.error({ err: error }, 'webhook outcome callback failed');
    }
  };

  const handleWebhook = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const verifier = detectProvider(req);
    if (!verifier) {
      rejectAndClose(req, res, 401, { error: 'unsigned request or unknown provider' });
      return outcome({ status: 401, reason: 'unauthorized' }, { why: 'no provider signature header' });
    }
    const { provider } = verifier;
    const declared = Number(header(req, 'content-length') ?? NaN);
    if (declared > maxBody) {
      rejectAndClose(req, res, 413, { error: `body over ${maxBody} bytes` });
      return outcome({ status: 413, reason: 'too_large', provider }, { bytes: declared });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        done = true;
        chunks.length = 0;
        rejectAndClose(req, res, 413, { error: `body over ${maxBody} bytes` });
        return outcome({ status: 413, reason: 'too_large', provider }, { bytes: size });
      }
      chunks.push(chunk);
    });
    const aborted = () => {
      if (!done) outcome({ status: 0, reason: 'aborted', provider });
      done = true;
    };
    req.on('aborted', aborted);
    req.on('error', aborted);
    req.on('end', () => {
      if (done) return;
      done = true;
      const raw = Buffer.concat(chunks, size);
      if (!verifier.verify(raw, secret)) {
        send(res, 401, { error: 'signature does not match' });
        return outcome({ status: 401, reason: 'unauthorized', provider }, { why: 'signature mismatch' });
      }
      const deliveryId = verifier.deliveryId ?? `sha256:${crypto.createHash('sha256').update(raw).digest('hex')}`;
      let event: WebhookEvent;
      try {
        event = parseEvent(provider, verifier.event, deliveryId, decodeBody(req, provider, raw));
      } catch (error) {
        // JSON.parse's message quotes the body; only say that it is not JSON.
        const message = error instanceof PayloadError ? error.message : 'not valid JSON';
        send(res, 400, { error: `malformed payload: ${message}` });
        return outcome({ status: 400, reason: 'malformed', provider }, { deliveryId, why: message });
      }
      if (!deliveries.add(`${provider}:${deliveryId}`)) {
        send(res, 200, { duplicate: true });
        return outcome({ status: 200, reason: 'duplicate', provider }, { deliveryId });
      }
      try {
        options.onEvent(event);
      } catch (error) {
        log.error({ err: error, deliveryId }, 'webhook onEvent threw');
      }
      send(res, 202, { accepted: true, deliveryId, kind: event.kind });
      outcome({ status: 202, reason: 'accepted', provider }, { deliveryId, kind: event.kind, event: event.event, ref: event.ref });
    });
  };

  const handleHealth = (res: http.ServerResponse) => {
    let h: { ok: boolean; detail?: Record<string, unknown> };
    try {
      h = options.health?.() ?? { ok: true };
    } catch (error) {
      log.error({ err: error }, 'health callback failed');
      h = { ok: false };
    }
    send(res, h.ok ? 200 : 503, { ok: h.ok, ...(h.detail ?? {}) });
  };

  const handleMetrics = async (res: http.ServerResponse) => {
    try {
      const m = await options.metrics!();
      res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
      res.end(m.body);
    } catch (error) {
      log.error({ err: error }, 'metrics callback failed');
      send(res, 500, { error: 'metrics unavailable' });
    }
  };

  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 10_000),
      keepAliveTimeout: 5_000,
      // How often requestTimeout/headersTimeout are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.min(1000, requestTimeout),
    },
    (req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      const method = req.method ?? 'GET';
      const readOnly = method === 'GET' || method === 'HEAD';
      if (pathname === WEBHOOK_PATH) {
        if (method === 'POST') return handleWebhook(req, res);
        rejectAndClose(req, res, 405, { error: 'use POST' });
        return outcome({ status: 405, reason: 'method' }, { method });
      }
      if (pathname === '/healthz' || (pathname === '/metrics' && options.metrics)) {
        if (!readOnly) return rejectAndClose(req, res, 405, { error: 'use GET' });
        return pathname === '/healthz' ? handleHealth(res) : void handleMetrics(res);
      }
      rejectAndClose(req, res, 404, { error: 'not found' });
    },
  );
  // An idle socket (no bytes either way) is closed even between requests.
  server.setTimeout(requestTimeout + 5_000, (socket) => socket.destroy());
  // Malformed HTTP, oversized headers and clients too slow for requestTimeout end here.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const status =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    log.warn({ status: Number.parseInt(status), code: error.code }, 'webhook client error');
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostPart = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostPart}:${address.port}`;
  log.info({ url, path: WEBHOOK_PATH, maxBody }, 'webhook server listening');

  return {
    url,
    port: address.port,
    // Idempotent: in-flight requests get a second to finish, then their sockets are closed.
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      }),
  };
}
