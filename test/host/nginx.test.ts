import { expect, it } from 'vitest';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, HOST_NAME, reconcile, repo, service } from './reconcile.js';

// Sites on the host's loopback: curl inside the host, names pinned with --resolve.
async function curl(m: TestHost, url: string, ...extra: string[]): Promise<{ status: string; body: string; location: string }> {
  const host = new URL(url).hostname;
  const port = url.startsWith('https') ? '443' : '80';
  const r = await m.exec('curl', ['-sk', '--max-time', '5', '--resolve', `${host}:${port}:127.0.0.1`, '-w', '\n%{http_code} %{redirect_url}', ...extra, url]);
  const lines = r.stdout.split('\n');
  const [status = '', location = ''] = lines.pop()!.split(' ');
  return { status, body: lines.join('\n'), location };
}

async function workers(m: TestHost): Promise<string> {
  const master = (await m.exec('cat', ['/run/nginx.pid'])).stdout.trim();
  return `${master}:${(await m.exec('pgrep', ['-P', master])).stdout.trim().split('\n').sort().join(',')}`;
}

function domains(yaml: string): string {
  return `  domains:\n${yaml}`;
}

const WEB = service('web', 9301, domains('    - name: web.hk.test\n      aliases: [www.web.hk.test]\n      tls: self-signed\n'));
const GATED = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: gated
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: static
  static:
    root: /var/www/gated
  domains:
    - name: gated.hk.test
      tls: none
      gate:
        basicAuth:
          realm: Staff only
          htpasswd: { env: HK_HTPASSWD }
    - name: inner.hk.test
      tls: none
      gate:
        allow: [127.0.0.2/32]
`;
const PAGE = `apiVersion: hostkit.dev/v1
kind: File
metadata:
  name: gated-page
spec:
  placement:
    hosts: [${HOST_NAME}]
  path: /var/www/gated/index.html
  content: "gated page\\n"
`;
const env = { HK_HTPASSWD: 'alice:correct horse battery\nbob:$apr1$abcdefgh$0123456789abcdefghijkl\n' };
const FOREIGN = 'server {\n    listen 80;\n    server_name foreign.hk.test;\n    return 200 "foreign\\n";\n}\n';

describeHost('reconciler/drivers/nginx (sites, gates, reload, prune) on a real host', () => {
  const machine = useHost();

  it('serves plain and gated sites: basic auth 401/200, an allowlist refuses other sources, htpasswd 0640 root:www-data', async () => {
    const m = machine();
    await m.exec('sh', ['-c', `printf '%s' '${FOREIGN}' > /etc/nginx/conf.d/foreign.conf && systemctl reload nginx`]);
    const result = appliedOk(await reconcile(m, await repo({ 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE }), { env }));
    expect(result.status).toBe('applied');
    expect(await curl(m, 'http://gated.hk.test/')).toMatchObject({ status: '401' });
    expect(await curl(m, 'http://gated.hk.test/', '-u', 'alice:wrong')).toMatchObject({ status: '401' });
    expect(await curl(m, 'http://gated.hk.test/', '-u', 'alice:correct horse battery')).toMatchObject({ status: '200', body: 'gated page\n' });
    expect(await curl(m, 'http://inner.hk.test/')).toMatchObject({ status: '403' });
    expect(await curl(m, 'http://inner.hk.test/', '--interface', '127.0.0.2')).toMatchObject({ status: '200', body: 'gated page\n' });
    // The ACME challenge location is open even on gated sites (the CA must reach it).
    await m.exec('sh', ['-c', 'echo token-body > /var/www/hostkit-acme/.well-known/acme-challenge/tok_1']);
    expect(await curl(m, 'http://inner.hk.test/.well-known/acme-challenge/tok_1')).toMatchObject({ status: '200', body: 'token-body\n' });
    expect((await m.exec('stat', ['-c', '%U:%G %a', '/etc/nginx/hostkit-htpasswd/gated.hk.test'])).stdout.trim()).toBe('root:www-data 640');
    const htpasswd = (await m.exec('cat', ['/etc/nginx/hostkit-htpasswd/gated.hk.test'])).stdout;
    expect(htpasswd).toMatch(/^alice:\$6\$[./A-Za-z0-9]{16}\$[./A-Za-z0-9]{86}\nbob:\$apr1\$/);
    expect(htpasswd).not.toContain('correct horse');
    expect(await curl(m, 'http://foreign.hk.test/')).toMatchObject({ status: '200', body: 'foreign\n' });
  });

  it('a TLS site: HTTP redirects to HTTPS, HTTPS proxies to the service; applying again writes and reloads nothing', async () => {
    const m = machine();
    const files = { 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE, 'projects/web.yaml': WEB };
    appliedOk(await reconcile(m, await repo(files), { env }));
    expect(await curl(m, 'http://web.hk.test/some/path?q=1')).toMatchObject({ status: '301', location: 'https://web.hk.test/some/path?q=1' });
    const https = await curl(m, 'https://www.web.hk.test/');
    expect(https.status).toBe('200');
    expect(https.body).toContain('Directory listing');
    const cert = await m.exec('sh', ['-c', 'openssl x509 -noout -ext subjectAltName -in /etc/hostkit/tls/web.hk.test/fullchain.pem']);
    expect(cert.stdout).toMatch(/DNS:web\.hk\.test, DNS:www\.web\.hk\.test/);
    expect(
      (await m.exec('stat', ['-c', '%a', '/etc/hostkit/tls', '/etc/hostkit/tls/web.hk.test', '/etc/hostkit/tls/web.hk.test/privkey.pem'])).stdout
        .split('\n')
        .slice(0, 3),
    ).toEqual(['700', '700', '600']);

    const before = await workers(m);
    const outcome = await reconcile(m, await repo(files), { env });
    expect(applied(outcome).status).toBe('no-changes');
    if (outcome.stage === 'applied') expect(outcome.planned.plan.summary).toMatchObject({ create: 0, update: 0, delete: 0 });
    expect(await workers(m)).toBe(before);
  });

  it('a value only nginx rejects: nothing is reloaded, the previous files come back, and the run reports nginx -t', async () => {
    const m = machine();
    // A legal DNS name too long for nginx's default server_names_hash_bucket_size.
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.hk.test`;
    const broken = service('broken', 9302, domains(`    - name: ${long}\n      tls: none\n`));
    const before = await workers(m);
    const outcome = await reconcile(
      m,
      await repo({ 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE, 'projects/web.yaml': WEB, 'projects/broken.yaml': broken }),
      { env },
    );
    const result = applied(outcome);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.error).toMatch(/nginx -t rejected the configuration[\s\S]*server_names_hash/);
    expect((await m.host.exec('test', ['-e', `/etc/nginx/conf.d/hostkit-${long}.conf`])).exitCode).toBe(1);
    expect(await workers(m)).toBe(before);
    expect((await curl(m, 'https://web.hk.test/')).status).toBe('200');
  });

  it('a reload the nginx master rejects (port 443 taken by another process) is caught by the probe and rolled back', async () => {
    const m = machine();
    // Start over without TLS sites, so the next apply needs a new listening socket on 443.
    appliedOk(await reconcile(m, await repo({ 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE }), { env }));
    expect((await m.exec('sh', ['-c', 'ss -ltnH "sport = :443" | wc -l'])).stdout.trim()).toBe('0');
    await m.exec('systemd-run', ['--unit=squatter', '/usr/bin/python3', '-m', 'http.server', '443', '--bind', '0.0.0.0']);
    try {
      await m.exec('sh', ['-c', 'for i in $(seq 50); do ss -ltnH "sport = :443" | grep -q . && exit 0; sleep 0.1; done; exit 1']);
      const outcome = await reconcile(m, await repo({ 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE, 'projects/web.yaml': WEB }), { env });
      const result = applied(outcome);
      expect(result.status).toBe('rolled-back');
      if (result.status !== 'rolled-back') return;
      expect(result.failed.error).toMatch(/did not take the new configuration[\s\S]*Address already in use/);
      expect((await m.host.exec('test', ['-e', '/etc/nginx/conf.d/hostkit-web.hk.test.conf'])).exitCode).toBe(1);
      expect(await curl(m, 'http://gated.hk.test/', '-u', 'alice:correct horse battery')).toMatchObject({ status: '200' });
    } finally {
      await m.exec('systemctl', ['stop', 'squatter']);
    }
  });

  it('prune removes only HostKit site files: a foreign site file survives and still answers', async () => {
    const m = machine();
    appliedOk(await reconcile(m, await repo({ 'projects/web.yaml': WEB }), { env }));
    expect((await m.exec('ls', ['/etc/nginx/conf.d'])).stdout.trim().split('\n').sort()).toEqual(['foreign.conf', 'hostkit-web.hk.test.conf']);
    expect((await m.host.exec('test', ['-e', '/etc/nginx/hostkit-htpasswd/gated.hk.test'])).exitCode).toBe(1);
    expect(await curl(m, 'http://foreign.hk.test/')).toMatchObject({ status: '200', body: 'foreign\n' });
    expect(await curl(m, 'http://gated.hk.test/')).not.toMatchObject({ status: '401' });
    expect((await curl(m, 'https://web.hk.test/')).status).toBe('200');
  });
});
