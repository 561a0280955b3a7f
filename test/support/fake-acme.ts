import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { selfSignedArgs } from '../../reconciler/drivers/certificate/selfsigned.js';

// An ACME CA in miniature on loopback HTTPS: just the RFC 8555 that acme-client's
// auto() asks for, one order whose names each get one http-01 challenge. Like
// pebble it spends each nonce once and refuses to validate a challenge twice.
// It loses its answer to the first request that asks it to validate: it
// validates, then closes the connection without a word, as a broken link would.

/** What the CA reads at http://DOMAIN/.well-known/acme-challenge/TOKEN (undefined: no answer). */
export type FetchToken = (domain: string, token: string) => Promise<string | undefined>;

type Problem = { type: string; detail: string };
interface Challenge {
  domain: string;
  token: string;
  status: 'pending' | 'valid' | 'invalid';
  error?: Problem;
  deactivated?: boolean;
}

const problem = (type: string, detail: string): Problem => ({ type: `urn:ietf:params:acme:error:${type}`, detail });
const decode = (b64u: string): unknown => JSON.parse(Buffer.from(b64u, 'base64url').toString('utf8'));
const csrPem = (der: Buffer) =>
  ['-----BEGIN CERTIFICATE REQUEST-----', ...(der.toString('base64').match(/.{1,64}/g) ?? []), '-----END CERTIFICATE REQUEST-----', ''].join('\n');

export class FakeAcme {
  /** The CA's certificate: its HTTPS server's (localhost) and the issuer of what it signs. */
  readonly certificate: string;
  /** What each request to a challenge URL met: "validated: STATUS[, answer lost]", "badNonce", "refused: STATUS", "read: STATUS". */
  readonly challengeRequests: string[] = [];
  private readonly dir: string;
  private readonly fetchToken: FetchToken;
  private readonly server: https.Server;
  private readonly nonces = new Set<string>();
  private challenges: Challenge[] = [];
  private thumbprint = '';
  private chain: string | undefined;
  private answerLost = false;

  private constructor(dir: string, certificate: string, key: string, fetchToken: FetchToken) {
    this.dir = dir;
    this.certificate = certificate;
    this.fetchToken = fetchToken;
    this.server = https.createServer({ cert: certificate, key }, (req, res) => {
      this.handle(req, res).catch((error: Error) => this.send(res, 500, problem('serverInternal', error.message)));
    });
  }

  /** A CA with a throwaway key and certificate (openssl, in a temporary directory), listening on 127.0.0.1. */
  static async start(fetchToken: FetchToken): Promise<FakeAcme> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-fake-acme-'));
    const [key, cert] = [path.join(dir, 'ca.key'), path.join(dir, 'ca.pem')];
    // For localhost: HostAgent connects to 127.0.0.1 without a server name, and node then checks the name localhost.
    await execa('openssl', selfSignedArgs(key, cert, ['localhost'], 'self-signed'));
    const ca = new FakeAcme(dir, await readFile(cert, 'utf8'), await readFile(key, 'utf8'), fetchToken);
    ca.server.listen(0, '127.0.0.1');
    await once(ca.server, 'listening');
    return ca;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get directory(): string {
    return `${this.base}/dir`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private get base(): string {
    return `https://localhost:${this.port}`;
  }

  private send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const nonce = randomBytes(12).toString('base64url');
    this.nonces.add(nonce);
    const type = typeof body === 'string' ? 'application/pem-certificate-chain' : status >= 400 ? 'application/problem+json' : 'application/json';
    res.writeHead(status, { 'replay-nonce': nonce, 'cache-control': 'no-store', 'content-type': type, ...headers });
    res.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = req.url ?? '/';
    if (url === '/dir') return this.send(res, 200, { newNonce: `${this.base}/nonce`, newAccount: `${this.base}/account`, newOrder: `${this.base}/order` });
    if (url === '/nonce') return this.send(res, req.method === 'HEAD' ? 200 : 204, undefined);

    // Every other resource takes a JWS; its signature is not checked, its nonce is.
    const jws = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { protected: string; payload: string };
    const header = decode(jws.protected) as { nonce: string; jwk?: Record<string, string> };
    // An empty payload is a POST-as-GET: a read.
    const payload = jws.payload ? (decode(jws.payload) as Record<string, unknown>) : undefined;
    const challenge = /^\/challenge\/(\d+)$/.exec(url);
    if (!this.nonces.delete(header.nonce)) {
      if (challenge) this.challengeRequests.push('badNonce');
      return this.send(res, 400, problem('badNonce', 'JWS has an invalid anti-replay nonce'));
    }
    if (url === '/account') {
      // RFC 7638: the members a key type requires, in lexical order.
      const jwk = Object.fromEntries(
        Object.entries(header.jwk ?? {})
          .filter(([k]) => ['crv', 'e', 'kty', 'n', 'x', 'y'].includes(k))
          .sort(),
      );
      this.thumbprint = createHash('sha256').update(JSON.stringify(jwk)).digest('base64url');
      return this.send(res, 201, { status: 'valid' }, { location: `${this.base}/account/1` });
    }
    if (url === '/order') {
      const identifiers = payload?.identifiers as { value: string }[];
      this.challenges = identifiers.map((i) => ({ domain: i.value, token: randomBytes(16).toString('base64url'), status: 'pending' }));
      return this.send(res, 201, this.order(), { location: `${this.base}/order/1` });
    }
    if (url === '/order/1') return this.send(res, 200, this.order());
    if (url === '/order/1/finalize') {
      if (this.order().status !== 'ready') return this.send(res, 403, problem('orderNotReady', `order is ${this.order().status}`));
      const csr = csrPem(Buffer.from(payload?.csr as string, 'base64url'));
      const signed = await execa(
        'openssl',
        ['x509', '-req', '-CA', path.join(this.dir, 'ca.pem'), '-CAkey', path.join(this.dir, 'ca.key'), '-days', '1', '-copy_extensions', 'copy'],
        {
          input: csr,
        },
      );
      this.chain = `${signed.stdout}\n${this.certificate}`;
      return this.send(res, 200, this.order());
    }
    if (url === '/certificate/1' && this.chain) return this.send(res, 200, this.chain);
    const authz = /^\/authz\/(\d+)$/.exec(url);
    const c = this.challenges[Number((authz ?? challenge)?.[1] ?? -1)];
    if (authz && c) {
      if (payload?.status === 'deactivated') c.deactivated = true;
      return this.send(res, 200, this.authorization(c, Number(authz[1])));
    }
    if (challenge && c) return this.challenge(req, res, c, Number(challenge[1]), payload);
    return this.send(res, 404, problem('malformed', `no resource ${url}`));
  }

  private async challenge(req: http.IncomingMessage, res: http.ServerResponse, c: Challenge, n: number, payload: unknown): Promise<void> {
    if (!payload) {
      this.challengeRequests.push(`read: ${c.status}`);
      return this.send(res, 200, this.challengeJson(c, n));
    }
    if (c.status !== 'pending') {
      this.challengeRequests.push(`refused: ${c.status}`);
      return this.send(res, 400, problem('malformed', `Cannot update challenge with status ${c.status}, only status pending`));
    }
    const served = await this.fetchToken(c.domain, c.token);
    c.status = served?.trim() === `${c.token}.${this.thumbprint}` ? 'valid' : 'invalid';
    if (c.status === 'invalid')
      c.error = problem('unauthorized', `The key authorization file from the server did not match this challenge: ${JSON.stringify(served)}`);
    if (!this.answerLost) {
      this.answerLost = true;
      this.challengeRequests.push(`validated: ${c.status}, answer lost`);
      req.socket.destroy();
      return;
    }
    this.challengeRequests.push(`validated: ${c.status}`);
    return this.send(res, 200, this.challengeJson(c, n));
  }

  private challengeJson(c: Challenge, n: number) {
    return { type: 'http-01', url: `${this.base}/challenge/${n}`, token: c.token, status: c.status, ...(c.error ? { error: c.error } : {}) };
  }

  private authorization(c: Challenge, n: number) {
    const status = c.deactivated ? 'deactivated' : c.status;
    return { identifier: { type: 'dns', value: c.domain }, status, challenges: [this.challengeJson(c, n)] };
  }

  private order() {
    const statuses = this.challenges.map((c, n) => this.authorization(c, n).status);
    const status = this.chain ? 'valid' : statuses.every((s) => s === 'valid') ? 'ready' : statuses.some((s) => s !== 'pending') ? 'invalid' : 'pending';
    return {
      status,
      identifiers: this.challenges.map((c) => ({ type: 'dns', value: c.domain })),
      authorizations: this.challenges.map((_, n) => `${this.base}/authz/${n}`),
      finalize: `${this.base}/order/1/finalize`,
      ...(this.chain ? { certificate: `${this.base}/certificate/1` } : {}),
    };
  }
}
