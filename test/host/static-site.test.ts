import { expect, it } from 'vitest';
import type { DirectorySpec } from '../../reconciler/core/specs.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, HOST_NAME, reconcile, repo } from './reconcile.js';

// A static site (runtime: static) on a real host: no account or directory that
// nothing uses, a web root created where nginx can read it, and a root outside
// the project checked rather than created.

function staticProject(name: string, extra = ''): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: static
${extra}  domains:
    - name: ${name}.hk.test
      tls: none
`;
}

// The default web root (/srv/site/public), and one outside the project's own paths, for a host-level manifest to name.
const SITE = staticProject('site');
const OUTSIDE = staticProject('ext', '  static:\n    root: /var/www/shared\n');

async function get(m: TestHost, name: string): Promise<{ status: string; body: string }> {
  const r = await m.exec('curl', ['-s', '--max-time', '5', '--resolve', `${name}:80:127.0.0.1`, '-w', '\n%{http_code}', `http://${name}/`]);
  const lines = r.stdout.split('\n');
  const status = lines.pop()!;
  return { status, body: lines.join('\n') };
}

const stat = async (m: TestHost, p: string) => (await m.exec('stat', ['-c', '%U:%G %a', p])).stdout.trim();
const exists = async (m: TestHost, what: string[]) => (await m.host.exec(what[0]!, what.slice(1))).exitCode === 0;

describeHost('a static site (runtime: static) on a real host', () => {
  const machine = useHost();

  it('plans no account or working directory, creates the web root nginx serves from, and is idempotent', async () => {
    const m = machine();
    const files = { 'projects/site.yaml': SITE };
    const dry = await reconcile(m, await repo(files), { dryRun: true });
    if (dry.stage !== 'planned') throw new Error(`expected a plan, got ${dry.stage}`);
    const changes = dry.planned.plan.changes.map((c) => `${c.action} ${c.id}`);
    // nginx, which the site implies, is installed on the test image: a noop, first (packages rank first).
    expect(changes).toEqual(['noop package/nginx', 'create directory/srv/site/public', 'create site/site.hk.test']);
    expect(dry.planned.plan.changes[1]!.desired).toMatchObject({ owner: 'root', group: 'www-data', mode: 0o750 } satisfies Partial<DirectorySpec>);

    appliedOk(await reconcile(m, await repo(files)));
    expect(await stat(m, '/srv/site/public')).toBe('root:www-data 750');
    expect(await stat(m, '/srv/site')).toBe('root:root 755'); // made on the way, for nginx to pass through
    expect(await exists(m, ['getent', 'passwd', 'site'])).toBe(false);
    // What the operator deploys into the web root (umask 022), nginx serves.
    await m.exec('sh', ['-c', 'umask 022 && printf "static page\\n" > /srv/site/public/index.html']);
    expect(await get(m, 'site.hk.test')).toEqual({ status: '200', body: 'static page\n' });

    const again = await reconcile(m, await repo(files));
    expect(applied(again).status).toBe('no-changes');
  });

  it('a root outside the project is a plan error at static.root while missing; once there it is checked, not created, and served', async () => {
    const m = machine();
    const files = { 'projects/site.yaml': SITE, 'hosts/ext.yaml': OUTSIDE };
    const missing = await reconcile(m, await repo(files));
    if (missing.stage !== 'planned') throw new Error(`expected a refused plan, got ${missing.stage}`);
    const problems = missing.planned.plan.changes.flatMap((c) => c.diagnostics).filter((d) => d.severity === 'error');
    expect(problems).toEqual([
      expect.objectContaining({
        summary: 'web root missing',
        detail: expect.stringContaining('serves /var/www/shared, which does not exist on the host'),
        location: expect.objectContaining({ file: 'hosts/ext.yaml', line: 8 }),
      }),
    ]);
    expect(await exists(m, ['test', '-e', '/etc/nginx/conf.d/hostkit-ext.hk.test.conf'])).toBe(false);

    await m.exec('sh', ['-c', 'mkdir -p /var/www/shared && printf "shared page\\n" > /var/www/shared/index.html']);
    const plan = await reconcile(m, await repo(files), { dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    const site = plan.planned.plan.changes.find((c) => c.id === 'site/ext.hk.test')!;
    expect(site.fields).toContainEqual({ field: '/root', after: '/var/www/shared (exists; HostKit does not create it)' });
    expect(plan.planned.plan.changes.filter((c) => c.action !== 'noop').map((c) => c.id)).toEqual(['site/ext.hk.test']);

    appliedOk(await reconcile(m, await repo(files)));
    expect(await stat(m, '/var/www/shared')).toBe('root:root 755');
    expect(await get(m, 'ext.hk.test')).toEqual({ status: '200', body: 'shared page\n' });
    expect(await get(m, 'site.hk.test')).toEqual({ status: '200', body: 'static page\n' });
  });
});
