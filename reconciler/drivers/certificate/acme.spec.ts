import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import acme from 'acme-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAcme, type FetchToken } from '../../../test/support/fake-acme.js';
import { FakeHost } from '../../hosts/fake.js';
import { hostHttpRequest } from '../../hosts/http.js';
import { LocalHost } from '../../hosts/local.js';
import { CHALLENGE_DIR } from '../shared/web.js';
import { issueCertificate, newAccountKey } from './acme.js';

const DOMAIN = 'app.example.test';

describe('reconciler/drivers/certificate/acme', () => {
  // acme-client repeats a request whose answer was lost after retryDefaultDelay × attempt seconds (5 s by default).
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryDefaultDelay: number } }).acmeSettings;
  const retryDefaultDelay = settings.retryDefaultDelay;
  beforeAll(() => {
    settings.retryDefaultDelay = 0.05;
  });
  afterAll(() => {
    settings.retryDefaultDelay = retryDefaultDelay;
  });

  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  /**
   * A fake CA, and a fake host whose port 80 serves its challenge files (nginx's webroot) and whose
   * connections to the CA's port reach the CA. `caFetches` is what the CA reads for a token.
   */
  async function setup(caFetches: (host: FakeHost) => FetchToken): Promise<{ host: FakeHost; ca: FakeAcme }> {
    const host = new FakeHost();
    host.seedDir(CHALLENGE_DIR);
    const web = http.createServer((req, res) => {
      const file = req.url?.startsWith('/.well-known/acme-challenge/') ? host.text(`${CHALLENGE_DIR}/${path.posix.basename(req.url)}`) : undefined;
      if (file === undefined) res.writeHead(404).end();
      else res.end(file);
    });
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    const ca = await FakeAcme.start(caFetches(host));
    closers.push(
      () => ca.close(),
      () => void web.close(),
    );
    const local = new LocalHost();
    host.onConnect((port) => (port === ca.port ? local.connect(port) : port === 80 ? local.connect((web.address() as AddressInfo).port) : undefined));
    return { host, ca };
  }

  const issue = async (host: FakeHost, ca: FakeAcme, log: string[] = []) =>
    issueCertificate({
      host,
      directory: ca.directory,
      ca: ca.certificate,
      email: 'ops@example.test',
      accountKey: await newAccountKey(),
      domains: [DOMAIN],
      log: (message) => log.push(message),
    });

  // What the CA reads through the host's port 80, as its validation server would.
  const fromHost = (host: FakeHost) => async (domain: string, token: string) =>
    (await hostHttpRequest(host, { port: 80, path: `/.well-known/acme-challenge/${token}`, hostHeader: domain })).body;

  it('a validation request whose answer was lost, refused when repeated, counts as done when the challenge reads valid', async () => {
    const { host, ca } = await setup(fromHost);
    const log: string[] = [];
    const issued = await issue(host, ca, log);

    // The CA validated, its answer was lost, acme-client repeated the request (with the spent nonce, then a new one)
    // and the CA refused it as pebble does; the challenge then read valid.
    expect(ca.challengeRequests).toEqual(['validated: valid, answer lost', 'badNonce', 'refused: valid', 'read: valid', 'read: valid']);
    const leaf = new X509Certificate(issued.certificate);
    expect(leaf.subjectAltName).toBe(`DNS:${DOMAIN}`);
    expect(leaf.checkPrivateKey(createPrivateKey(issued.key))).toBe(true);
    expect(leaf.verify(new X509Certificate(ca.certificate).publicKey)).toBe(true);
    expect(log).toEqual([`challenge for ${DOMAIN} served`]);
    expect(await host.readdir(CHALLENGE_DIR)).toEqual([]);
  });

  it('a challenge that reads invalid after the refusal fails with the CA’s error', async () => {
    // The CA's validation server reaches some other machine for the name.
    const { host, ca } = await setup(() => async () => 'not this token');

    await expect(issue(host, ca)).rejects.toThrow('Cannot update challenge with status invalid, only status pending');
    expect(ca.challengeRequests).toEqual(['validated: invalid, answer lost', 'badNonce', 'refused: invalid', 'read: invalid']);
    expect(await host.readdir(CHALLENGE_DIR)).toEqual([]);
  });
});
