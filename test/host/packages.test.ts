import { expect, it } from 'vitest';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import type { Host } from '../../reconciler/hosts/types.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, HOST_NAME, repo } from './reconcile.js';

// OS packages and apt sources on a real host (reconciler/drivers/package and
// aptsource), on the standard test image: nginx (with nginx-light), postgresql-15,
// nftables and python3 are installed, its apt lists are empty and it has no network.

const hostManifest = (spec: string) => `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: /var/lib/hostkit
${spec}`;

const STATIC_SITE = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: docs
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: static
  domains:
    - name: docs.example.test
      tls: none
`;

const DATA_DIR = `apiVersion: hostkit.dev/v1
kind: Directory
metadata:
  name: pkgtest
spec:
  placement:
    hosts: [${HOST_NAME}]
  path: /srv/pkgtest
  owner: root
  group: root
  mode: "0755"
`;

const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdAhostkit\n=test\n-----END PGP PUBLIC KEY BLOCK-----';

/** Every process HostKit starts on the host, as "program args...". */
function recorded(host: Host): { host: Host; commands: string[] } {
  const commands: string[] = [];
  const wrapped = new Proxy(host, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== 'exec') return (value as (...a: unknown[]) => unknown).bind(target);
      return (file: string, args: string[], ...rest: unknown[]) => {
        commands.push([file, ...args].join(' '));
        return (value as (...a: unknown[]) => unknown).call(target, file, args, ...rest);
      };
    },
  });
  return { host: wrapped, commands };
}

async function reconcileRecorded(m: TestHost, files: Record<string, string>): Promise<{ outcome: ReconcileOutcome; commands: string[] }> {
  const { host, commands } = recorded(m.host);
  const outcome = await reconcileHost({ repoDir: await repo(files), hostName: HOST_NAME, host, dryRun: false, log: silentLogger(), env: {} });
  return { outcome, commands };
}

const apt = (commands: readonly string[]) => commands.filter((c) => /(^|\s)apt-(get|cache)\s/.test(c));

describeHost('reconciler/drivers/package and aptsource on a real host', () => {
  const machine = useHost();

  it('installed packages count as present (nginx through nginx-light, postgresql as postgresql-15): 0 package changes, one dpkg-query, no apt', async () => {
    const m = machine();
    const packages = '  packages: [nginx, nginx-light, postgresql, nftables, python3]\n';
    const { outcome, commands } = await reconcileRecorded(m, { 'hosts/test-host.yaml': hostManifest(packages), 'hosts/docs.yaml': STATIC_SITE });
    const result = applied(outcome);
    if (outcome.stage !== 'applied') throw new Error('unreachable');
    const changes = outcome.planned.plan.changes.filter((c) => c.kind === 'package');
    expect(changes.map((c) => `${c.action} ${c.id}`)).toEqual([
      'noop package/nftables',
      'noop package/nginx',
      'noop package/nginx-light',
      'noop package/postgresql',
      'noop package/python3',
    ]);
    expect(changes.find((c) => c.id === 'package/postgresql')!.reason).toBe('installed (provided by postgresql-15)');
    expect(result.status).toBe('applied');
    expect(result.steps.filter((s) => s.id.startsWith('package/'))).toEqual([]);
    expect(commands.filter((c) => c.startsWith('dpkg-query '))).toHaveLength(1);
    expect(apt(commands)).toEqual([]);

    // The second reconcile: nothing to do at all, and still no apt.
    const again = await reconcileRecorded(m, { 'hosts/test-host.yaml': hostManifest(packages), 'hosts/docs.yaml': STATIC_SITE });
    expect(applied(again.outcome).status).toBe('no-changes');
    expect(apt(again.commands)).toEqual([]);
  });

  it('a package no apt source has fails the run naming the manifest line and the package; nothing else is applied', async () => {
    const m = machine();
    // No network here: the lists are updated from no source at all (the update itself must succeed).
    await m.exec('sh', ['-c', 'mv /etc/apt/sources.list /etc/apt/sources.list.offline']);
    const { outcome, commands } = await reconcileRecorded(m, {
      'hosts/test-host.yaml': hostManifest('  packages:\n    - python3\n    - hostkit-no-such-package\n'),
      'hosts/data.yaml': DATA_DIR,
    });
    const result = applied(outcome);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') throw new Error('unreachable');
    expect(result.failed.error).toBe(
      "package hostkit-no-such-package, declared at hosts/test-host.yaml:9 (Host spec.packages): no apt source of the host has it (check the name, or declare the source in the Host's spec.aptSources); nothing was installed",
    );
    expect(
      apt(commands).map((c) =>
        c
          .replace(/^env .*?apt-/, 'apt-')
          .split(' ')
          .slice(0, 2)
          .join(' '),
      ),
    ).toEqual(['apt-get update', 'apt-cache policy']);
    expect((await m.exec('sh', ['-c', 'test -e /srv/pkgtest && echo present || echo absent'])).stdout.trim()).toBe('absent');
  });

  it('an apt source is written as deb822 with its inline key, which apt reads; a second reconcile changes nothing', async () => {
    const m = machine();
    const sources = `  aptSources:
    - name: vendor
      uris: [https://deb.vendor.example/debian]
      suites: [bookworm]
      components: [main]
      signedBy:
        key: |
${KEY.split('\n')
  .map((l) => `          ${l}`)
  .join('\n')}
`;
    const files = { 'hosts/test-host.yaml': hostManifest(sources) };
    const { outcome } = await reconcileRecorded(m, files);
    expect(applied(outcome).status).toBe('applied');
    const cat = async (p: string) => (await m.exec('cat', [p])).stdout;
    expect(await cat('/etc/apt/sources.list.d/hostkit-vendor.sources')).toBe(
      '# Written by HostKit (aptsource/vendor); a change here is undone on its next run.\nTypes: deb\nURIs: https://deb.vendor.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/hostkit-vendor.asc\n',
    );
    expect(await cat('/etc/apt/keyrings/hostkit-vendor.asc')).toBe(KEY + '\n');
    expect((await m.exec('stat', ['-c', '%U:%G %a', '/etc/apt/sources.list.d/hostkit-vendor.sources', '/etc/apt/keyrings/hostkit-vendor.asc'])).stdout).toBe(
      'root:root 644\nroot:root 644\n',
    );
    // apt parses it (a malformed stanza is an error of every apt command).
    const policy = await m.exec('apt-cache', ['policy']);
    expect([policy.exitCode, policy.stderr]).toEqual([0, '']);
    const again = await reconcileRecorded(m, files);
    expect(applied(again.outcome).status).toBe('no-changes');
  });
});
