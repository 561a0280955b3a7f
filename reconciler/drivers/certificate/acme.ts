// ACME issuance (HTTP-01 through nginx's challenge webroot) with acme-client.
// The client runs in the agent; its HTTPS connections to the CA go through
// Host.connect, so they leave from the managed host's network (a plain socket
// for the local host, the test host's namespace for pebble in tests).
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type * as AcmeClient from 'acme-client';

// acme-client (and its HTTP stack) is loaded only when a certificate is actually
// issued: a run with nothing to issue does not pay its start-up.
let loaded: Promise<typeof AcmeClient> | undefined;
const acmeClient = () => (loaded ??= import('acme-client'));
import { HostKitError } from '../../core/errors.js';
import { hostHttpRequest } from '../../hosts/http.js';
import type { Host } from '../../hosts/types.js';
import { CHALLENGE_DIR } from '../shared/web.js';

export const LETSENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

// An https.Agent whose connections are opened by Host.connect. Node's agent
// accepts createConnection's callback form, which an asynchronous connect needs.
class HostAgent extends https.Agent {
  private readonly host: Host;
  private readonly ca: string | undefined;

  constructor(host: Host, ca: string | undefined) {
    super({ keepAlive: false });
    this.host = host;
    this.ca = ca;
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const hostname = (options as tls.ConnectionOptions).servername || options.hostname || options.host || 'localhost';
    const address = hostname === 'localhost' ? '127.0.0.1' : hostname.replace(/^\[|\]$/g, '');
    const port = Number(options.port ?? 443);
    this.host
      .connect(port, { address, timeoutMs: 10_000 })
      .then((raw) => {
        const secure = tls.connect({
          socket: raw as never,
          ...(isIP(address) === 0 ? { servername: address } : {}),
          ...(this.ca ? { ca: this.ca } : {}),
          rejectUnauthorized: true,
        });
        callback?.(null, secure);
      })
      .catch((cause: unknown) => callback?.(cause as Error, undefined as never));
    return undefined;
  }
}

export interface IssueInput {
  host: Host;
  directory: string;
  email: string;
  /** PEM of the account key (kept in the agent's state directory). */
  accountKey: Buffer;
  /** PEM of a CA the directory's HTTPS certificate is signed by, when it is not a public one (pebble). */
  ca?: string;
  domains: string[];
  log: (message: string) => void;
}

export interface Issued {
  certificate: string;
  key: string;
}

export async function newAccountKey(): Promise<Buffer> {
  const acme = await acmeClient();
  return acme.crypto.createPrivateEcdsaKey();
}

/** One order for all the names; resolves with the chain and its new key, or throws with the CA's reason. */
export async function issueCertificate(input: IssueInput): Promise<Issued> {
  const acme = await acmeClient();
  const client = new acme.Client({ directoryUrl: input.directory, accountKey: input.accountKey });
  const agent = new HostAgent(input.host, input.ca);
  // Per client, not on acme-client's shared axios instance: no global state changes.
  const http = (client as unknown as { http: { request: (url: string, method: string, opts?: Record<string, unknown>) => Promise<unknown> } }).http;
  const request = http.request.bind(http);
  http.request = (url, method, opts = {}) => request(url, method, { ...opts, httpsAgent: agent, proxy: false, timeout: 30_000 });
  // acme-client's HTTP layer repeats a request whose answer was lost on the way back. When that request was
  // the one that asked the CA to validate, the CA may have validated the challenge before the repeat arrives
  // and refuses it ("Cannot update challenge with status valid"). A challenge that reads valid is done.
  const api = (client as unknown as { api: { apiRequest: (url: string, payload: null, ok: number[]) => Promise<{ data: { status?: string } }> } }).api;
  const completeChallenge = client.completeChallenge.bind(client);
  client.completeChallenge = async (challenge) => {
    try {
      return await completeChallenge(challenge);
    } catch (refused) {
      const now = await api.apiRequest(challenge.url, null, [200]).catch(() => undefined);
      if (now?.data.status === 'valid' || now?.data.status === 'processing') return now.data as typeof challenge;
      throw refused;
    }
  };

  const key = await acme.crypto.createPrivateEcdsaKey();
  const [, csr] = await acme.crypto.createCsr({ commonName: input.domains[0]!, altNames: input.domains }, key);
  const written: string[] = [];
  try {
    const certificate = await client.auto({
      csr,
      email: input.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client would check from this machine; we check from the host's own side below.
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if (challenge.type !== 'http-01' || !TOKEN.test(challenge.token)) {
          throw new HostKitError('ACME_CHALLENGE_UNSUPPORTED', `unexpected ${challenge.type} challenge for ${authz.identifier.value}`);
        }
        const file = `${CHALLENGE_DIR}/${challenge.token}`;
        await input.host.writeFile(file, keyAuthorization, { uid: 0, gid: 0, mode: 0o644 });
        written.push(file);
        // Only tell the CA to validate once nginx serves the token: a failed validation costs rate limit.
        const path = `/.well-known/acme-challenge/${challenge.token}`;
        const served = await hostHttpRequest(input.host, { port: 80, path, hostHeader: authz.identifier.value }).catch((e: Error) => ({
          status: 0,
          body: e.message,
        }));
        if (served.status !== 200 || served.body.trim() !== keyAuthorization) {
          throw new HostKitError(
            'ACME_CHALLENGE_NOT_SERVED',
            `nginx does not serve the HTTP-01 token for ${authz.identifier.value} (HTTP ${served.status}); is a HostKit site declared for it?`,
          );
        }
        input.log(`challenge for ${authz.identifier.value} served`);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        if (TOKEN.test(challenge.token)) await input.host.remove(`${CHALLENGE_DIR}/${challenge.token}`);
      },
    });
    return { certificate, key: key.toString('utf8') };
  } finally {
    for (const file of written) await input.host.remove(file).catch(() => undefined);
    agent.destroy();
  }
}
