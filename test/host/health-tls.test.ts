import { beforeAll, expect, it } from 'vitest';
import { healthChecks, runHealthCheck } from '../../reconciler/apply/health.js';
import { isQuarantined } from '../../reconciler/apply/quarantine.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import { validateRepository } from '../../reconciler/manifests/index.js';
import { writeRepo } from '../support/fixtures.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { ACME_HOST, startPebble } from './pebble.js';
import { applied, eventually, HOST_NAME, unitProperty } from './reconcile.js';

// Health checks of TLS sites on a real host: a service behind an ACME domain
// (pebble) is checked over HTTPS on its first apply, through nginx, pinned to
// the certificate HostKit placed; an app answering 500 is rolled back; a
// self-signed domain is checked the same way.

const STATE = '/var/lib/hostkit';
const API_CERT = '/etc/hostkit/tls/api.hk.test/fullchain.pem';
const SELF_CERT = '/etc/hostkit/tls/self.hk.test/fullchain.pem';
const API_FILES = ['/etc/systemd/system/hk-api.service', '/etc/hostkit/env/api.env', '/srv/api/app.py', '/etc/nginx/conf.d/hostkit-api.hk.test.conf', API_CERT];

// The app answers /healthz with HEALTH_STATUS and logs how each request reached it (scheme nginx forwarded, Host).
const APP = `import http.server, os, sys

class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("version " + os.environ["VERSION"] + "\\n").encode()
        self.send_response(int(os.environ["HEALTH_STATUS"]) if self.path == "/healthz" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        print("seen", self.path, self.headers.get("X-Forwarded-Proto"), self.headers.get("Host"), flush=True)

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
`;

function project(name: string, port: number, tls: string, version: string, status: number): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: ${name}
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, /srv/${name}/app.py, "${port}"]
    port: ${port}
    environment:
      VERSION: ${version}
      HEALTH_STATUS: "${status}"
  files:
    - name: app.py
      content: |
${APP.split('\n')
  .map((l) => (l ? `        ${l}` : ''))
  .join('\n')}
  domains:
    - name: ${name}.hk.test
      tls: ${tls}
  health:
    http:
      path: /healthz
      bodyContains: version ${version}
    timeout: 2s
    retries: 2
`;
}

const api = (version: string, status = 200) => ({ 'projects/api.yaml': project('api', 9411, 'acme', version, status) });
const self = () => ({ 'projects/self.yaml': project('self', 9412, 'self-signed', 's1', 200) });

let commits = 0;
function commitId(): string {
  commits++;
  return commits.toString(16).padStart(40, 'e');
}

async function apply(m: TestHost, files: Record<string, string>, commit: string): Promise<{ outcome: ReconcileOutcome; repoDir: string }> {
  const repoDir = await writeRepo({ 'hosts/test-host.yaml': ACME_HOST, ...files });
  return { outcome: await reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {}, commit }), repoDir };
}

async function snapshot(m: TestHost, paths: readonly string[]): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const p of paths) out[p] = (await m.host.readFile(p))?.toString('utf8');
  return out;
}

/** What the app logged of the requests it was sent (path, forwarded scheme, Host). */
async function seen(m: TestHost, unit: string): Promise<string[]> {
  const log = await m.host.exec('journalctl', ['-u', unit, '--no-pager', '-o', 'cat']);
  return log.stdout.split('\n').filter((l) => l.startsWith('seen '));
}

/** The body served over HTTPS for NAME.hk.test at `p`, from inside the host. */
async function https(m: TestHost, name: string, p: string): Promise<string> {
  return (await m.host.exec('curl', ['-sk', '--max-time', '3', `https://${name}.hk.test${p}`])).stdout;
}

describeHost('reconciler/apply/health (HTTPS to TLS sites, pinned to the certificate HostKit placed) on a real host', () => {
  const machine = useHost();

  beforeAll(async () => {
    await startPebble(machine(), ['api.hk.test', 'self.hk.test']);
  });

  it('a service with an ACME domain and health.http applies on the first run; its check passes over HTTPS through nginx', async () => {
    const m = machine();
    const result = applied((await apply(m, api('v1'), commitId())).outcome);
    if (result.status === 'rolled-back') throw new Error(`the first apply rolled back at ${result.failed.id}: ${result.failed.error}`);
    expect(result.status).toBe('applied');
    expect(result.warnings.filter((w) => w.summary === 'certificate not issued')).toEqual([]);
    expect(result.health).toEqual([{ project: 'api', ok: true, url: 'https://api.hk.test/healthz (via 127.0.0.1:443)' }]);
    // The app saw the check arrive through nginx's TLS server, as the domain; the certificate is pebble's.
    expect(await seen(m, 'hk-api.service')).toContain('seen /healthz https api.hk.test');
    const issuer = await m.exec('openssl', ['x509', '-noout', '-issuer', '-in', API_CERT]);
    expect(issuer.stdout).toMatch(/Pebble/);
  });

  it('with the app answering 500 the run is rolled back to the previous state, and the commit quarantined', async () => {
    const m = machine();
    const before = await snapshot(m, API_FILES);
    const bad = commitId();
    const result = applied((await apply(m, api('v2', 500), bad)).outcome);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('health/api');
    expect(result.failed.error).toContain('GET https://api.hk.test/healthz (via 127.0.0.1:443) answered 500, expected 200');
    expect(result.health).toEqual([
      { project: 'api', ok: false, url: 'https://api.hk.test/healthz (via 127.0.0.1:443)', detail: expect.stringContaining('answered 500') as string },
    ]);
    expect(result.quarantined).toBe(true);
    expect(await isQuarantined(m.host, STATE, bad)).toBeDefined();
    // Back on the previous unit, env file, app and site, serving v1 over HTTPS again.
    expect(await snapshot(m, API_FILES)).toEqual(before);
    expect(await unitProperty(m, 'hk-api.service', 'ActiveState')).toBe('active');
    expect(await eventually(async () => (await https(m, 'api', '/healthz')) === 'version v1\n', 10_000)).toBe(true);
  });

  it('a self-signed domain is checked over HTTPS too; a served certificate other than the placed one fails the check', async () => {
    const m = machine();
    const { outcome, repoDir } = await apply(m, { ...api('v1'), ...self() }, commitId());
    const result = applied(outcome);
    if (result.status === 'rolled-back') throw new Error(`the apply rolled back at ${result.failed.id}: ${result.failed.error}`);
    expect(result.health).toEqual([{ project: 'self', ok: true, url: 'https://self.hk.test/healthz (via 127.0.0.1:443)' }]);
    expect(await seen(m, 'hk-self.service')).toContain('seen /healthz https self.hk.test');

    // Another certificate for the same name in the file HostKit placed: nginx still serves the one it loaded.
    const placed = (await m.host.readFile(SELF_CERT))!;
    const stat = (await m.host.stat(SELF_CERT))!;
    const repo = await validateRepository(repoDir);
    const check = healthChecks(repo.manifests, { throughNginx: true }).get('self')!;
    try {
      await m.exec('openssl', [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '/tmp/other.key'],
        ...['-out', SELF_CERT, '-days', '1', '-subj', '/CN=self.hk.test', '-addext', 'subjectAltName=DNS:self.hk.test'],
      ]);
      const problems = await runHealthCheck(m.host, { ...check, retries: 0 }, 0);
      expect(problems.map((d) => d.detail)).toEqual([
        expect.stringMatching(
          /^self: GET https:\/\/self\.hk\.test\/healthz \(via 127\.0\.0\.1:443\): the server presented a certificate for self\.hk\.test \(SHA-256 [0-9A-F:]+…\) that is not the one HostKit placed in \/etc\/hostkit\/tls\/self\.hk\.test\/fullchain\.pem/,
        ),
      ]);
    } finally {
      await m.host.writeFile(SELF_CERT, placed, stat);
    }
    expect(await runHealthCheck(m.host, { ...check, retries: 0 }, 0)).toEqual([]);
  });
});
