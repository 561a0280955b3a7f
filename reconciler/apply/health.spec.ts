import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedArgs } from '../drivers/certificate/selfsigned.js';
import { FakeHost } from '../hosts/fake.js';
import { LocalHost } from '../hosts/local.js';
import { validateFiles } from '../manifests/index.js';
import { healthChecks, runHealthCheck, type HealthCheck } from './health.js';

const DOMAIN = 'api.example.test';
const ACME_FILE = `/etc/hostkit/tls/${DOMAIN}/fullchain.pem`;
const enc = (text: string) => new TextEncoder().encode(text);

/** The health checks of one project on host h, with the given domain lines (indented under `domains:`). */
async function checks(domain: string | undefined, throughNginx = true): Promise<Map<string, HealthCheck>> {
  const project = [
    'apiVersion: hostkit.dev/v1',
    'kind: Project',
    'metadata: { name: api }',
    'spec:',
    '  placement: { hosts: [h] }',
    '  runtime: binary',
    '  service:',
    '    command: [/usr/bin/api]',
    '    port: 9401',
    ...(domain ? ['  domains:', `    - name: ${DOMAIN}`, ...domain.split('\n').map((l) => `      ${l}`)] : []),
    '  health:',
    '    http: { path: /healthz }',
    '    retries: 0',
  ].join('\n');
  const repo = await validateFiles([
    { file: 'hosts/h.yaml', bytes: enc('apiVersion: hostkit.dev/v1\nkind: Host\nmetadata: { name: h }\nspec:\n  acme: { email: ops@example.test }\n') },
    { file: 'projects/api.yaml', bytes: enc(project + '\n') },
  ]);
  expect(repo.diagnostics).toEqual([]);
  return healthChecks(repo.manifests, { throughNginx });
}

async function check(domain: string | undefined, throughNginx = true): Promise<HealthCheck> {
  return (await checks(domain, throughNginx)).get('api')!;
}

/** A certificate and key made the way the certificate driver makes a self-signed one. */
function keyPair(dir: string, name: string, domains: string[]): { cert: string; key: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  execFileSync('openssl', selfSignedArgs(key, cert, domains, 'self-signed'), { stdio: 'ignore' });
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

async function listen<T extends net.Server>(server: T): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

describe('reconciler/apply/health', () => {
  describe('healthChecks: how an HTTP check reaches the app', () => {
    it.each([
      ['tls: acme', 'tls: acme', { port: 443, tls: { serverName: DOMAIN, certificateFile: ACME_FILE }, url: `https://${DOMAIN}/healthz (via 127.0.0.1:443)` }],
      [
        'the default (acme)',
        'aliases: []',
        { port: 443, tls: { serverName: DOMAIN, certificateFile: ACME_FILE }, url: `https://${DOMAIN}/healthz (via 127.0.0.1:443)` },
      ],
      ['tls: self-signed', 'tls: self-signed', { port: 443, tls: { serverName: DOMAIN, certificateFile: ACME_FILE } }],
      ['acme without the HTTP redirect', 'tls: acme\nredirectHttp: false', { port: 443, tls: { serverName: DOMAIN, certificateFile: ACME_FILE } }],
      [
        'given certificate files',
        'tls: { certificate: /etc/hostkit/secrets/api/tls.pem, key: /etc/hostkit/secrets/api/tls.key }',
        { port: 443, tls: { serverName: DOMAIN, certificateFile: '/etc/hostkit/secrets/api/tls.pem' } },
      ],
      ['tls: none', 'tls: none', { port: 80, hostHeader: DOMAIN, url: `http://${DOMAIN}/healthz (via 127.0.0.1:80)` }],
    ])('a site with %s', async (_, domain, expected) => {
      const http = (await check(domain)).http!;
      expect(http).toMatchObject({ hostHeader: DOMAIN, path: '/healthz', expectStatus: 200, ...expected });
      if (expected.port === 80) expect(http.tls).toBeUndefined();
    });

    it('no site, or no nginx managed: the service’s own port over HTTP', async () => {
      expect((await check(undefined)).http).toEqual({ port: 9401, path: '/healthz', expectStatus: 200, url: 'http://127.0.0.1:9401/healthz' });
      expect((await check('tls: acme', false)).http).toEqual({ port: 9401, path: '/healthz', expectStatus: 200, url: 'http://127.0.0.1:9401/healthz' });
    });
  });

  describe('runHealthCheck over HTTPS and HTTP on a fake host', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hk-health-'));
    const placed = keyPair(dir, 'placed', [DOMAIN]);
    const other = keyPair(dir, 'other', [DOMAIN]);
    const elsewhere = keyPair(dir, 'elsewhere', ['other.example.test']);
    const seen: { host?: string; servername?: string }[] = [];
    // What the app answers at each path: /moved redirects, /broken fails.
    const app = (req: http.IncomingMessage, res: http.ServerResponse) => {
      seen.push({ ...(req.headers.host ? { host: req.headers.host } : {}), servername: (req.socket as { servername?: string }).servername || '' });
      if (req.url === '/moved') res.writeHead(301, { location: `https://${DOMAIN}/healthz/` }).end();
      else if (req.url === '/broken') res.writeHead(500).end('broken');
      else res.end('ok');
    };
    const servers = {
      placed: https.createServer({ cert: placed.cert, key: placed.key }, app),
      other: https.createServer({ cert: other.cert, key: other.key }, app),
      elsewhere: https.createServer({ cert: elsewhere.cert, key: elsewhere.key }, app),
      plain: http.createServer(app),
    };
    const ports: Record<string, number> = {};
    beforeAll(async () => {
      for (const [name, server] of Object.entries(servers)) ports[name] = await listen(server);
    });
    afterAll(() => {
      for (const server of Object.values(servers)) {
        server.closeAllConnections();
        server.close();
      }
    });

    /** A fake host whose 443 is the named TLS server, whose 80 is the plain one, with `file` at the ACME path. */
    function host(on443: keyof typeof servers, file: string | null = placed.cert): FakeHost {
      const fake = new FakeHost(file === null ? {} : { [ACME_FILE]: file });
      fake.onExec((call) => (call.file === 'systemctl' ? { exitCode: 0, stdout: 'active\n', stderr: '' } : undefined));
      fake.onConnect((port) => (port === 443 ? new LocalHost().connect(ports[on443]!) : port === 80 ? new LocalHost().connect(ports.plain!) : undefined));
      return fake;
    }

    const run = (fake: FakeHost, c: HealthCheck) => runHealthCheck(fake, c, 0);

    it('a TLS site is asked over HTTPS on 443, with SNI and Host header the domain, and passes with the certificate HostKit placed', async () => {
      const fake = host('placed');
      seen.length = 0;
      expect(await run(fake, await check('tls: acme'))).toEqual([]);
      expect(fake.connections).toEqual(['127.0.0.1:443']);
      expect(seen).toEqual([{ host: DOMAIN, servername: DOMAIN }]);
    });

    it('a site without TLS is asked over HTTP on 80 with the domain as Host header', async () => {
      const fake = host('placed');
      seen.length = 0;
      expect(await run(fake, await check('tls: none'))).toEqual([]);
      expect(fake.connections).toEqual(['127.0.0.1:80']);
      expect(seen).toEqual([{ host: DOMAIN, servername: '' }]);
    });

    it('a certificate other than the one HostKit placed fails the check, naming the file', async () => {
      const [problem] = await run(host('other'), await check('tls: acme'));
      expect(problem?.detail).toMatch(
        new RegExp(
          `^api: GET https://api\\.example\\.test/healthz \\(via 127\\.0\\.0\\.1:443\\): the server presented a certificate for api\\.example\\.test ` +
            `\\(SHA-256 [0-9A-F:]{23}…\\) that is not the one HostKit placed in ${ACME_FILE.replace(/\./g, '\\.')} \\(SHA-256 [0-9A-F:]{23}…\\)`,
        ),
      );
    });

    it('the placed certificate must cover the domain', async () => {
      const [problem] = await run(host('elsewhere', elsewhere.cert), await check('tls: acme'));
      expect(problem?.detail).toContain(`the certificate in ${ACME_FILE} does not cover ${DOMAIN}`);
    });

    it('with no certificate file to trust, nothing is asked', async () => {
      const fake = host('placed', null);
      const [problem] = await run(fake, await check('tls: acme'));
      expect(problem?.detail).toContain(`the site's certificate ${ACME_FILE} does not exist`);
      expect(fake.connections).toEqual([]);
    });

    it('a redirect fails, naming where it points, unless expectStatus asks for it', async () => {
      const c = await check('tls: acme');
      const [problem] = await run(host('placed'), { ...c, http: { ...c.http!, path: '/moved' } });
      expect(problem?.detail).toContain(
        `GET https://${DOMAIN}/healthz (via 127.0.0.1:443) answered 301 (a redirect to https://${DOMAIN}/healthz/; health checks do not follow redirects), expected 200`,
      );
      expect(await run(host('placed'), { ...c, http: { ...c.http!, path: '/moved', expectStatus: 301 } })).toEqual([]);
    });

    it('a plain HTTP 301 to HTTPS (the site’s redirect) fails too', async () => {
      const c = await check('tls: none');
      const [problem] = await run(host('placed'), { ...c, http: { ...c.http!, path: '/moved' } });
      expect(problem?.detail).toContain(`answered 301 (a redirect to https://${DOMAIN}/healthz/;`);
    });

    it('a 500 fails with the status', async () => {
      const c = await check('tls: acme');
      const [problem] = await run(host('placed'), { ...c, http: { ...c.http!, path: '/broken' } });
      expect(problem?.detail).toContain('answered 500, expected 200');
    });
  });
});
