import { expect, it } from 'vitest';
import type { ExecOptions } from '../../reconciler/hosts/types.js';
import { driversWithBrokenSudoers } from '../support/broken-sudoers.js';
import { manifestYaml } from '../support/manifests.js';
import { writeRepo } from '../support/fixtures.js';
import { aptSourceManifest, serveAptRepo, type ServedAptRepo } from './apt-repo.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, eventually, HOST_NAME, reconcile } from './reconcile.js';

// A bare Debian 12 host (no nginx, no PostgreSQL, no nftables) brought up from the
// repository alone: the packages come from a local signed apt repository declared in
// spec.aptSources, HostKit sets up its own PostgreSQL admin access, and one reconcile
// ends with a site served through nginx by a service that logs into its database,
// behind the firewall.

const PORT = 9501;

// The service answers with the user its DATABASE_URL logs in as (psql from postgresql's client).
const APP = `import http.server, os, subprocess
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        r = subprocess.run(["psql", os.environ["DATABASE_URL"], "-XtAc", "select current_user"], capture_output=True, text=True)
        body = (r.stdout.strip() if r.returncode == 0 else "db error: " + r.stderr.strip()).encode() + b"\\n"
        self.send_response(200 if r.returncode == 0 else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", ${PORT}), H).serve_forever()
`;

function hostYaml(served: ServedAptRepo, packages: string[] = []): string {
  return manifestYaml({
    kind: 'Host',
    name: HOST_NAME,
    spec: {
      stateDirectory: '/var/lib/hostkit',
      aptSources: [aptSourceManifest(served)],
      firewall: { input: 'drop', ssh: { port: 22 } },
      ...(packages.length > 0 ? { packages } : {}),
    },
  });
}

function shopYaml(extra: Record<string, unknown> = {}): string {
  return manifestYaml({
    kind: 'Project',
    name: 'shop',
    on: [HOST_NAME],
    spec: {
      runtime: 'python',
      service: { command: ['/usr/bin/python3', '/srv/shop/app.py'], port: PORT },
      domains: [{ name: 'shop.hk.test', tls: 'self-signed' }],
      database: { password: { file: '/etc/hostkit/secrets/shop-db' } },
      firewall: [{ port: 443 }],
      health: { http: { path: '/', bodyContains: 'shop' }, timeout: '5s', retries: 5 },
      ...extra,
    },
  });
}

/** Every command the host runs while `work` runs. */
async function recording<T>(m: TestHost, work: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const commands: string[] = [];
  const exec = m.host.exec.bind(m.host);
  m.host.exec = async (file: string, args: readonly string[], options?: ExecOptions) => {
    commands.push([file, ...args].join(' '));
    return exec(file, args, options);
  };
  try {
    return { result: await work(), commands };
  } finally {
    m.host.exec = exec;
  }
}

describeHost('a bare host from the repository alone (packages, apt source, PostgreSQL access) on the bare image', () => {
  const machine = useHost({ variant: 'bare', aptRepo: true });
  let served: ServedAptRepo;

  it(
    'one reconcile installs the packages, sets up PostgreSQL admin access, serves the site through nginx from a service that logs into its database, and puts the firewall in place',
    { timeout: 600_000 },
    async () => {
      const m = machine();
      for (const tool of ['nginx', 'psql', 'nft']) expect((await m.host.exec('sh', ['-c', `command -v ${tool}`])).exitCode, tool).not.toBe(0);
      served = await serveAptRepo(m);
      await m.exec('mkdir', ['-p', '/etc/hostkit/secrets', '/srv/shop']);
      await m.host.writeFile('/etc/hostkit/secrets/shop-db', 'shop-db-password-3f9', { uid: 0, gid: 0, mode: 0o600 });
      await m.host.writeFile('/srv/shop/app.py', APP, { uid: 0, gid: 0, mode: 0o644 });
      const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostYaml(served), 'projects/shop.yaml': shopYaml() });
      const dry = await reconcile(m, repoDir, { dryRun: true });
      expect(dry.stage).toBe('planned');
      if (dry.stage !== 'planned') return;
      const creates = dry.planned.plan.changes.filter((c) => c.action === 'create').map((c) => c.id);
      expect(creates).toEqual(expect.arrayContaining(['aptsource/hostkit-test', 'package/nginx', 'package/postgresql', 'package/nftables', 'pgaccess/local']));

      const result = appliedOk(await reconcile(m, repoDir));
      expect(result.status).toBe('applied');
      // Packages first, then PostgreSQL access before the role and the database.
      const order = result.steps.map((s) => s.id);
      expect(order.indexOf('aptsource/hostkit-test')).toBeLessThan(order.indexOf('package/nginx'));
      expect(order.indexOf('package/postgresql')).toBeLessThan(order.indexOf('pgaccess/local'));
      expect(order.indexOf('pgaccess/local')).toBeLessThan(order.indexOf('pgrole/shop'));
      for (const pkg of ['nginx', 'postgresql', 'nftables']) {
        expect((await m.host.exec('dpkg-query', ['-W', '-f', '${Status}', pkg])).stdout, pkg).toBe('install ok installed');
      }
      // Served through nginx (TLS), by a service that logged into its database as its role.
      const get = () => m.host.exec('curl', ['-sk', '--max-time', '5', '--resolve', 'shop.hk.test:443:127.0.0.1', 'https://shop.hk.test/']);
      expect(await eventually(async () => (await get()).stdout === 'shop\n', 20_000)).toBe(true);
      // Root is HostKit's admin over the socket; the firewall table is loaded.
      expect((await m.host.exec('psql', ['-XtAc', 'select 1', '-U', 'postgres', 'postgres'])).stdout.trim()).toBe('1');
      const table = (await m.exec('nft', ['list', 'table', 'inet', 'hostkit'])).stdout;
      expect(table).toMatch(/policy drop/);
      expect(table).toMatch(/dport 443 accept/);
    },
  );

  it('a second reconcile makes no changes, runs no apt-get and needs no network (the repository stopped)', { timeout: 300_000 }, async () => {
    const m = machine();
    await m.exec('systemctl', ['stop', `hostkit-test-apt-${served.uri.match(/:(\d+)\//)![1]}`]);
    try {
      const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostYaml(served), 'projects/shop.yaml': shopYaml() });
      const { result, commands } = await recording(m, () => reconcile(m, repoDir));
      expect(appliedOk(result).status).toBe('no-changes');
      expect(commands.filter((c) => /(^|\s)(apt-get|apt-cache|apt)\s/.test(c))).toEqual([]);
      expect(commands.filter((c) => c.startsWith('dpkg-query '))).toHaveLength(1);
    } finally {
      await serveAptRepo(m);
    }
  });

  it('a package that does not exist fails the run naming the manifest and the package; nothing else is applied', { timeout: 300_000 }, async () => {
    const m = machine();
    const repoDir = await writeRepo({
      'hosts/test-host.yaml': hostYaml(served, ['hostkit-no-such-package']),
      'projects/shop.yaml': shopYaml({ service: { command: ['/usr/bin/python3', '/srv/shop/app.py'], port: PORT, environment: { GREETING: 'changed' } } }),
    });
    const before = (await m.host.readFile('/etc/hostkit/env/shop.env'))!.toString();
    const outcome = await reconcile(m, repoDir);
    // Found by the plan (fresh lists) or by the apply's apt-cache policy before anything installs: either way at the manifest's line.
    const error =
      outcome.stage === 'planned'
        ? outcome.planned.plan.diagnostics
            .filter((d) => d.severity === 'error')
            .map((d) => `${d.location?.file}:${d.location?.line}: ${d.detail}`)
            .join('\n')
        : (() => {
            const r = applied(outcome);
            expect(r.status).toBe('rolled-back');
            if (r.status !== 'rolled-back') return '';
            expect(r.failed.id).toBe('package/hostkit-no-such-package');
            return r.failed.error;
          })();
    process.stderr.write(`[host] bare-host: missing package (${outcome.stage}): ${error}\n`);
    expect(error).toContain('hostkit-no-such-package');
    expect(error).toMatch(/hosts\/test-host\.yaml:\d+/);
    // Nothing else of the commit: not the env file's change.
    expect((await m.host.readFile('/etc/hostkit/env/shop.env'))!.toString()).toBe(before);
  });

  it(
    'an operator account with sudo rules brings sudo (implied); a rule visudo refuses is never installed and the run rolls back',
    { timeout: 300_000 },
    async () => {
      const m = machine();
      const ops = manifestYaml({
        kind: 'Account',
        name: 'ops',
        on: [HOST_NAME],
        spec: { home: '/home/ops', shell: '/bin/bash', sudo: [{ commands: ['/usr/bin/systemctl'], password: false }] },
      });
      const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostYaml(served), 'hosts/ops.yaml': ops, 'projects/shop.yaml': shopYaml() });
      const refused = applied(await reconcile(m, repoDir, { drivers: driversWithBrokenSudoers() }));
      expect(refused.status).toBe('rolled-back');
      if (refused.status !== 'rolled-back') return;
      expect(refused.failed.id).toBe('sudoers/ops');
      expect(refused.failed.error).toMatch(/^sudo rules of account ops \(hosts\/ops\.yaml:\d+:\d+\): visudo -cf refused them: .*Nothing was installed$/s);
      expect(await m.host.stat('/etc/sudoers.d/hostkit-ops')).toBeUndefined();
      expect((await m.host.exec('id', ['ops'])).exitCode).not.toBe(0);
      // sudo itself came from the implied package (kept, as packages are), and the rule goes in once it is sound.
      expect((await m.host.exec('dpkg-query', ['-W', '-f', '${Status}', 'sudo'])).stdout).toBe('install ok installed');
      appliedOk(await reconcile(m, repoDir));
      expect((await m.exec('sudo', ['-l', '-U', 'ops'])).stdout).toMatch(/\(root\) NOPASSWD: \/usr\/bin\/systemctl/);
    },
  );
});
