import { cp, mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { silentLogger } from '../../reconciler/core/log.js';
import { hostHasIpv6 } from '../../reconciler/drivers/nginx/index.js';
import { siteFile } from '../../reconciler/drivers/nginx/paths.js';
import { reconcileHost } from '../../reconciler/engine.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, HOST_NAME, reconcile, repo, service } from './reconcile.js';

const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'corpus');
// The corpus cases whose hostile value would land in an nginx file, a certificate request or an htpasswd file.
const NGINX_SUMMARIES = new Set(['invalid domain name', 'invalid URL path', 'invalid CIDR', 'invalid realm', 'invalid path']);

// The real host, with every command and every write recorded.
function recording(host: Host): { host: Host; commands: string[]; writes: string[] } {
  const commands: string[] = [];
  const writes: string[] = [];
  const wrapped: Host = Object.create(host) as Host;
  wrapped.exec = (file, args, options) => {
    commands.push([file, ...args].join(' '));
    return host.exec(file, args, options);
  };
  for (const method of ['writeFile', 'mkdir', 'setOwnership', 'remove'] as const) {
    (wrapped as unknown as Record<string, unknown>)[method] = (p: string, ...rest: unknown[]) => {
      writes.push(`${method} ${p}`);
      return (host[method] as (...a: unknown[]) => Promise<void>).call(host, p, ...rest);
    };
  }
  return { host: wrapped, commands, writes };
}

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
  project: gated
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

  it('certificate files the manifest names: replacing the certificate on the host makes the next run reload nginx, which serves it', async () => {
    const m = machine();
    const issue = (cn: string) =>
      m.exec('sh', [
        '-c',
        `mkdir -p /etc/hostkit/own-tls && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=${cn} -addext subjectAltName=DNS:named.hk.test -keyout /etc/hostkit/own-tls/named.key.new -out /etc/hostkit/own-tls/named.pem.new 2>/dev/null && mv /etc/hostkit/own-tls/named.key.new /etc/hostkit/own-tls/named.key && mv /etc/hostkit/own-tls/named.pem.new /etc/hostkit/own-tls/named.pem`,
      ]);
    const served = async () =>
      (
        await m.exec('sh', [
          '-c',
          'openssl s_client -connect 127.0.0.1:443 -servername named.hk.test </dev/null 2>/dev/null | openssl x509 -noout -subject -nameopt RFC2253',
        ])
      ).stdout.trim();
    await issue('first.named.hk.test');
    const named = GATED.replace('name: gated\n', 'name: named\n').replace(
      / {2}domains:[\s\S]*$/,
      '  domains:\n    - name: named.hk.test\n      tls: { certificate: /etc/hostkit/own-tls/named.pem, key: /etc/hostkit/own-tls/named.key }\n      redirectHttp: false\n',
    );
    // The sites of the tests before stay as they were (the next test expects them). Certificate files outside
    // the project's own paths are for a host-level manifest to name.
    const files = { 'projects/gated.yaml': GATED, 'files/page.yaml': PAGE, 'projects/web.yaml': WEB, 'hosts/named.yaml': named };
    appliedOk(await reconcile(m, await repo(files), { env }));
    expect(await served()).toBe('subject=CN=first.named.hk.test');
    expect(applied(await reconcile(m, await repo(files), { env })).status).toBe('no-changes');
    // The test host has IPv6: the site listens on [::] as well.
    expect(await hostHasIpv6(m.host)).toBe(true);
    expect((await m.host.readFile(siteFile('named.hk.test')))?.toString()).toContain('listen [::]:443 ssl;');

    await issue('second.named.hk.test'); // renewed by hand or by another tool, nginx not told
    expect(await served()).toBe('subject=CN=first.named.hk.test');
    const before = await workers(m);
    const outcome = appliedOk(await reconcile(m, await repo(files), { env }));
    expect(outcome.status).toBe('applied');
    expect(await served()).toBe('subject=CN=second.named.hk.test');
    expect(await workers(m)).not.toBe(before);
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
    expect(result.failed.id).toBe(`site/${long}`);
    expect(result.failed.error).toMatch(/nginx -t rejected the configuration[\s\S]*server_names_hash/);
    expect((await m.host.exec('test', ['-e', `/etc/nginx/conf.d/hostkit-${long}.conf`])).exitCode).toBe(1);
    expect(await workers(m)).toBe(before);
    expect((await curl(m, 'https://web.hk.test/')).status).toBe('200');
    expect(await m.host.stat('/var/lib/hostkit/nginx-reload-owed')).toBeUndefined();
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
      expect(result.failed.id).toBe('site/web.hk.test');
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

  it('hostile domain, path, CIDR and realm values from the corpus never reach a file or nginx -t', async () => {
    const m = machine();
    const confBefore = (await m.exec('ls', ['/etc/nginx/conf.d'])).stdout;
    const before = await workers(m);
    const cases: string[] = [];
    for (const name of (await readdir(path.join(CORPUS, 'bad'))).sort()) {
      const expected = JSON.parse(await readFile(path.join(CORPUS, 'bad', name, 'expect.json'), 'utf8')) as { summary: string; generate?: unknown };
      if (!NGINX_SUMMARIES.has(expected.summary) || expected.generate) continue;
      cases.push(name);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'hk-hostile-'));
      await cp(path.join(CORPUS, 'shared'), dir, { recursive: true });
      await cp(path.join(CORPUS, 'bad', name), dir, { recursive: true });
      const rec = recording(m.host);
      const outcome = await reconcileHost({ repoDir: dir, hostName: 'web-1', host: rec.host, dryRun: false, log: silentLogger(), env: {} });
      expect(outcome.stage, name).toBe('invalid');
      expect(rec.writes, name).toEqual([]);
      expect(
        rec.commands.filter((c) => /^(nginx|openssl|systemctl)\b/.test(c)),
        name,
      ).toEqual([]);
    }
    expect(cases.length).toBeGreaterThanOrEqual(20);
    expect((await m.exec('ls', ['/etc/nginx/conf.d'])).stdout).toBe(confBefore);
    expect(await workers(m)).toBe(before);
  });

  it('a run killed after writing a site file and before nginx took it: the next run reloads', async () => {
    const m = machine();
    const noRedirect = service(
      'web',
      9301,
      domains('    - name: web.hk.test\n      aliases: [www.web.hk.test]\n      tls: self-signed\n      redirectHttp: false\n'),
    );
    const repoDir = await repo({ 'projects/web.yaml': noRedirect });
    const child = execa(
      'node',
      [path.resolve('dist/test/support/reconcile-child.js'), repoDir, HOST_NAME, String(m.leaderPid), m.machine, 'before-nginx-test'],
      {
        reject: false,
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('stopped before nginx -t')) resolve();
      });
      void child.then((r) => reject(new Error(`the child ended before the kill point: ${r.stdout} ${r.stderr}`)));
    });
    child.kill('SIGKILL');
    expect((await child).signal).toBe('SIGKILL');
    // The new file is on disk, nginx still runs the old one (redirecting), and the owed reload is recorded.
    expect((await m.exec('cat', ['/etc/nginx/conf.d/hostkit-web.hk.test.conf'])).stdout).not.toContain('return 301');
    expect(await curl(m, 'http://web.hk.test/')).toMatchObject({ status: '301' });
    expect(await m.host.stat('/var/lib/hostkit/nginx-reload-owed')).toBeDefined();

    const plan = await reconcile(m, repoDir, { dryRun: true });
    expect(plan.stage).toBe('planned');
    if (plan.stage === 'planned') {
      expect(plan.planned.plan.changes.find((c) => c.id === 'site/web.hk.test')).toMatchObject({ action: 'update', fields: [{ field: '/reload' }] });
    }
    appliedOk(await reconcile(m, repoDir));
    expect(await curl(m, 'http://web.hk.test/')).toMatchObject({ status: '200' });
    expect(await m.host.stat('/var/lib/hostkit/nginx-reload-owed')).toBeUndefined();
    expect(applied(await reconcile(m, repoDir)).status).toBe('no-changes');
  });
});
