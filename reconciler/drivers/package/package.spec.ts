import { describe, expect, it } from 'vitest';
import { FakeApt } from '../../../test/support/fake-apt.js';
import { fakeSystemd } from '../../../test/support/fake-systemd.js';
import { manifestYaml, type ManifestInput } from '../../../test/support/manifests.js';
import { applyPlan } from '../../apply/executor.js';
import { rollbackRun } from '../../apply/rollback.js';
import { RunJournal } from '../../apply/journal.js';
import { silentLogger } from '../../core/log.js';
import { planHost, type PlannedHost } from '../../diff/plan.js';
import { FakeHost } from '../../hosts/fake.js';
import { validateFiles } from '../../manifests/index.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import { parsePolicy, parseStatus, provider, versionMatches, parseInstalled } from './apt.js';

const HOST = 'web-1';
const STATE = '/var/lib/hostkit';
const enc = (s: string) => new TextEncoder().encode(s);

function hostDoc(spec: Record<string, unknown> = {}): ManifestInput {
  return { kind: 'Host', name: HOST, spec: { stateDirectory: STATE, ...spec } };
}

const site = (name: string): ManifestInput => ({
  kind: 'Project',
  name,
  on: [HOST],
  spec: { runtime: 'static', domains: [{ name: `${name}.example.test`, tls: 'none' }] },
});

async function repo(files: Record<string, ManifestInput[]>) {
  const validated = await validateFiles(Object.entries(files).map(([file, docs]) => ({ file, bytes: enc(manifestYaml(...docs)) })));
  return validated;
}

async function planOn(host: FakeHost, files: Record<string, ManifestInput[]>, mode: 'plan' | 'apply' = 'apply'): Promise<PlannedHost> {
  const r = await repo(files);
  expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return planHost({ hostName: HOST, host, log: silentLogger(), repository: 'test', manifests: r.manifests, mode });
}

const packageChanges = (p: PlannedHost) => p.plan.changes.filter((c) => c.kind === 'package').map((c) => `${c.action} ${c.id}`);
const processes = (host: FakeHost) => host.calls.map((c) => (c.file === 'env' ? c.args.find((a) => !a.includes('=')) : c.file));

// A host with apt lists HostKit refreshed a minute ago (no update owed) over these sources.
async function freshLists(host: FakeHost, apt: FakeApt) {
  apt.updated();
  host.seedDir(STATE);
  const { sourcesDigest } = await import('./apt.js');
  await host.writeFile(`${STATE}/apt-lists.json`, JSON.stringify({ updatedAt: Date.now() - 60_000, sources: await sourcesDigest(host) }), {
    uid: 0,
    gid: 0,
    mode: 0o644,
  });
}

describe('reconciler/drivers/package/apt', () => {
  it.each([
    ['22.11.0-1nodesource1', '22.*', true],
    ['22.11.0-1nodesource1', '2.*', false],
    ['18.19.0+dfsg-6~deb12u2', '22.*', false],
    ['5:7.0.15-1~deb12u1', '7.0.*', true],
    ['5:7.0.15-1~deb12u1', '5:7.0.15-1~deb12u1', true],
    ['1.6.2-1', '1.6.2-1', true],
    ['1.6.2-1', '1.6.2', false],
  ])('version %s matches %s: %s', (installed, pin, matches) => {
    expect(versionMatches(installed, pin)).toBe(matches);
  });

  it('a name is present as itself, as what an installed package provides, or as its versioned flavour (postgresql-15)', () => {
    const installed = parseInstalled(
      'nginx-full\t1.22.1-9\tii \tnginx, httpd\npostgresql-15\t15.10-0+deb12u1\tii \tpostgresql-contrib-15\njq\t1.6-2.1\trc \t\nlibssl3:amd64\t3.0.15-1\tii \t\n',
    );
    expect(provider(installed, 'nginx')).toEqual({ name: 'nginx-full', version: '1.22.1-9' });
    expect(provider(installed, 'postgresql')).toEqual({ name: 'postgresql-15', version: '15.10-0+deb12u1' });
    expect(provider(installed, 'libssl3')?.name).toBe('libssl3');
    // Removed with its configuration left ("rc") is not installed; a pin counts only the package itself.
    expect(provider(installed, 'jq')).toBeUndefined();
    expect(provider(installed, 'postgresql', '15.*')).toBeUndefined();
    expect(provider(installed, 'postgresql-1')).toBeUndefined();
  });

  it('reads a dpkg status file as dpkg-query lists it (a host given as a directory runs no command)', () => {
    const text =
      'Package: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\nProvides: httpd\n\nPackage: jq\nStatus: deinstall ok config-files\nVersion: 1.6-2.1\n';
    expect([...parseStatus(text)]).toEqual([['nginx', { version: '1.22.1-9', provides: ['httpd'] }]]);
  });

  it('reads apt-cache policy: installable versions, none for a virtual name, nothing for an unknown one', () => {
    const text = `jq:\n  Installed: (none)\n  Candidate: 1.6-2.1\n  Version table:\n     1.6-2.1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\nhttpd:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n`;
    expect([...parsePolicy(text)]).toEqual([
      ['jq', ['1.6-2.1']],
      ['httpd', []],
    ]);
  });
});

describe('reconciler/drivers/package: expansion', () => {
  async function packages(files: Record<string, ManifestInput[]>) {
    const r = await repo(files);
    const host = hostSettings(r.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host')!);
    const x = expandForHost(r.manifests, host);
    return { diagnostics: r.diagnostics, resources: x.resources.filter((r) => r.kind === 'package' || r.kind === 'aptsource') };
  }

  it('implies a package per kind the host gets, declared ones added, a project pin merged into one resource', async () => {
    const { diagnostics, resources } = await packages({
      'hosts/web-1.yaml': [hostDoc({ packages: ['jq', { name: 'nodejs', version: '22.*' }], firewall: { input: 'drop' }, secrets: { env: ['API_DB'] } })],
      'hosts/shop.yaml': [
        {
          kind: 'Project',
          name: 'shop',
          on: [HOST],
          spec: { runtime: { node: '22' }, service: { command: ['/usr/bin/node', 'app.js'] }, packages: ['imagemagick'] },
        },
        {
          kind: 'Project',
          name: 'api',
          on: [HOST],
          spec: { runtime: 'python', service: { command: ['/usr/bin/python3', '-m', 'api'] }, database: { password: { env: 'API_DB' } } },
        },
        site('docs'),
      ],
    });
    expect(diagnostics).toEqual([]);
    expect(Object.fromEntries(resources.map((r) => [r.id, [r.spec, r.project ?? '(host)']]))).toEqual({
      'package/jq': [{ name: 'jq', neededBy: ['Host spec.packages'] }, '(host)'],
      'package/nodejs': [{ name: 'nodejs', version: '22.*', neededBy: ['Host spec.packages', 'Project/shop runtime'] }, '(host)'],
      'package/imagemagick': [{ name: 'imagemagick', neededBy: ['Project/shop'] }, 'shop'],
      'package/nginx': [{ name: 'nginx', neededBy: ['sites (implied)'] }, '(host)'],
      'package/postgresql': [{ name: 'postgresql', neededBy: ['databases (implied)'] }, '(host)'],
      'package/nftables': [{ name: 'nftables', neededBy: ['firewall (implied)'] }, '(host)'],
      'package/python3': [{ name: 'python3', neededBy: ['python (implied)'] }, '(host)'],
    });
    expect(resources.find((r) => r.id === 'package/jq')!.origin).toMatchObject({ file: 'hosts/web-1.yaml', line: 7 });
  });

  it('implicitPackages renames or drops an implied package, false drops them all', async () => {
    const renamed = await packages({
      'hosts/web-1.yaml': [hostDoc({ implicitPackages: { sites: 'nginx-full', firewall: false }, firewall: {} }), site('docs')],
    });
    expect(renamed.resources.map((r) => r.id)).toEqual(['package/nginx-full']);
    const none = await packages({ 'hosts/web-1.yaml': [hostDoc({ implicitPackages: false }), site('docs')] });
    expect(none.resources).toEqual([]);
  });

  it('sudo rules imply sudo (visudo checks them) and backups imply restic; each renamed or dropped like the others', async () => {
    const files = (implicitPackages?: object) => ({
      'hosts/web-1.yaml': [
        hostDoc({
          secrets: { env: ['API_DB'] },
          backup: { password: { file: '/etc/hostkit/secrets/restic' } },
          ...(implicitPackages ? { implicitPackages } : {}),
        }),
        { kind: 'Account', name: 'ops', on: [HOST], spec: { home: '/home/ops', sudo: [{ commands: ['/usr/bin/systemctl'] }] } },
        {
          kind: 'Project',
          name: 'api',
          on: [HOST],
          spec: { runtime: 'binary', service: { command: ['/srv/api/api'] }, database: { password: { env: 'API_DB' }, backup: { schedule: 'daily' } } },
        },
      ],
    });
    const implied = await packages(files());
    expect(implied.diagnostics).toEqual([]);
    expect(Object.fromEntries(implied.resources.map((r) => [r.id, (r.spec as { neededBy: string[] }).neededBy]))).toEqual({
      'package/postgresql': ['databases (implied)'],
      'package/sudo': ['sudo (implied)'],
      'package/restic': ['backups (implied)'],
    });
    const renamed = await packages(files({ sudo: false, backups: 'restic-custom' }));
    expect(renamed.resources.map((r) => r.id).sort()).toEqual(['package/postgresql', 'package/restic-custom']);
  });

  it('a project pins only a package it alone needs: a pin on one the host or another project needs is an error at the pin', async () => {
    const { diagnostics, resources } = await packages({
      'hosts/web-1.yaml': [hostDoc({ packages: ['nodejs'] })],
      'hosts/shop.yaml': [{ kind: 'Project', name: 'shop', on: [HOST], spec: { runtime: { node: '22' }, service: { command: ['/usr/bin/node'] } } }],
    });
    expect(diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'package pinned by a project',
        detail: "Project/shop pins nodejs=22.*, also needed by the host; only the Host's spec.packages may pin a shared package",
        location: expect.objectContaining({ file: 'hosts/shop.yaml' }),
      }),
    ]);
    expect(resources.map((r) => r.id)).not.toContain('package/nodejs');
  });

  it('two pins of one name on a host are an error at the second', async () => {
    const { diagnostics } = await packages({
      'hosts/web-1.yaml': [hostDoc({ packages: [{ name: 'nodejs', version: '20.*' }] })],
      'hosts/shop.yaml': [{ kind: 'Project', name: 'shop', on: [HOST], spec: { runtime: { node: '22' }, service: { command: ['/usr/bin/node'] } } }],
    });
    expect(diagnostics).toEqual([
      expect.objectContaining({
        summary: 'package declared twice',
        detail: 'nodejs=22.* on host web-1 conflicts with nodejs=20.* at hosts/web-1.yaml:7',
        location: expect.objectContaining({ file: 'hosts/shop.yaml' }),
      }),
    ]);
  });

  it('a project-level Project declares only granted packages, never a removal; apt sources are Host fields', async () => {
    const project = {
      kind: 'Project',
      name: 'shop',
      on: [HOST],
      spec: { runtime: 'static', packages: ['jq', 'imagemagick', { name: 'telnet', remove: true }] },
    };
    const { diagnostics } = await packages({
      'hosts/web-1.yaml': [hostDoc({ policy: { grants: { shop: { packages: ['jq'] } } } })],
      'projects/shop.yaml': [project],
    });
    expect(diagnostics.map((d) => [d.summary, d.detail.split('.')[0], d.location?.pointer])).toEqual([
      ['not allowed in a project manifest', 'rule project-package: package imagemagick is not granted to project shop', '/spec/packages/1'],
      ['not allowed in a project manifest', 'rule package-remove: purging telnet removes it for the whole host', '/spec/packages/2/remove'],
    ]);
    const sources = await repo({ 'projects/shop.yaml': [{ ...project, spec: { runtime: 'static', aptSources: [] } }] });
    expect(sources.diagnostics.map((d) => d.location?.pointer)).toContain('/spec/aptSources');
  });

  it('the schema refuses a bad name, version or key, at its line', async () => {
    const r = await repo({
      'hosts/web-1.yaml': [
        hostDoc({
          packages: ['Bad_Name', { name: 'jq', version: 'latest' }],
          aptSources: [{ name: 'x', uris: ['https://deb.example'], suites: ['stable'], signedBy: { key: 'not a key' } }],
        }),
      ],
    });
    const pointers = r.diagnostics.map((d) => `${d.location?.pointer}:${d.location?.line}`);
    expect(pointers).toEqual(expect.arrayContaining(['/spec/packages/0:7', '/spec/packages/1/version:9', '/spec/aptSources/0/signedBy/key:17']));
  });
});

describe('reconciler/drivers/package', () => {
  it('noop: the packages are there (nginx as nginx, postgresql as postgresql-15): one dpkg-query, no apt, 0 changes', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host);
    const planned = await planOn(host, {
      'hosts/web-1.yaml': [hostDoc()],
      'hosts/p.yaml': [site('docs'), { kind: 'Project', name: 'api', on: [HOST], spec: { runtime: 'python', service: { command: ['/usr/bin/python3'] } } }],
    });
    expect(packageChanges(planned)).toEqual(['noop package/nginx', 'noop package/python3']);
    host.packages.set('nginx-light', { version: '1.22.1-9' });
    host.packages.delete('nginx');
    const flavours = await planOn(host, {
      'hosts/web-1.yaml': [hostDoc({ packages: ['postgresql', 'nginx-light'], implicitPackages: { sites: 'nginx-light' } })],
      'hosts/p.yaml': [site('docs')],
    });
    expect(flavours.plan.changes.filter((c) => c.kind === 'package').map((c) => `${c.action} ${c.id}: ${c.reason ?? ''}`)).toEqual([
      'noop package/nginx-light: ',
      'noop package/postgresql: installed (provided by postgresql-15)',
    ]);
    expect(host.calls.filter((c) => c.file === 'dpkg-query')).toHaveLength(2); // one per plan
    expect(apt.commands).toEqual([]);
  });

  it('installs every missing package in one apt-get, before anything else of the run; no update while the lists are fresh', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const apt = new FakeApt(host, { jq: ['1.6-2.1'], nodejs: ['22.11.0-1nodesource1', '20.18.0-1nodesource1'] });
    await freshLists(host, apt);
    const files = {
      'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })],
      'hosts/shop.yaml': [{ kind: 'Project', name: 'shop', on: [HOST], spec: { runtime: { node: '22' }, service: { command: ['/usr/bin/node', 'app.js'] } } }],
    };
    const planned = await planOn(host, files);
    expect(packageChanges(planned)).toEqual(['create package/jq', 'create package/nodejs']);
    expect(planned.plan.changes.slice(0, 2).map((c) => c.kind)).toEqual(['package', 'package']);
    host.calls.length = 0;
    const result = await applyPlan(planned);
    expect((result as { failed?: unknown }).failed).toBeUndefined();
    expect(apt.commands).toEqual([
      'apt-cache policy -- jq nodejs',
      'apt-get install -q -y -o DPkg::Lock::Timeout=300 --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold jq nodejs=22.*',
    ]);
    // The first process of the apply is apt-get (plan asked apt-cache already): nothing else was applied before the packages.
    const first = host.calls.findIndex((c) => c.file === 'env');
    expect(first).toBe(0);
    expect(host.calls[first]!.args.slice(0, 3)).toEqual(['DEBIAN_FRONTEND=noninteractive', 'NEEDRESTART_MODE=a', 'NEEDRESTART_SUSPEND=1']);
    expect(host.packages.get('nodejs')?.version).toBe('22.11.0-1nodesource1');

    // The next run: nothing to do, and apt is not asked anything.
    host.calls.length = 0;
    const again = await planOn(host, files);
    expect(packageChanges(again)).toEqual(['noop package/jq', 'noop package/nodejs']);
    expect(processes(host).filter((p) => p === 'apt-get' || p === 'apt-cache')).toEqual([]);
  });

  it.each([
    ['HostKit never updated them', undefined],
    ['they are older than an hour', { updatedAt: Date.now() - 2 * 3600_000 }],
    ['a source file changed since', { updatedAt: Date.now(), sources: 'another digest' }],
  ])('updates the lists before the install when %s', async (_title, marker) => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    if (marker) {
      await freshLists(host, apt);
      const { sourcesDigest } = await import('./apt.js');
      await host.writeFile(`${STATE}/apt-lists.json`, JSON.stringify({ sources: await sourcesDigest(host), ...marker }), { uid: 0, gid: 0, mode: 0o644 });
    }
    const planned = await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })] });
    expect((await applyPlan(planned)).status).toBe('applied');
    expect(apt.commands.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['apt-get update', 'apt-cache policy', 'apt-get install']);
  });

  it('an apt source changed in this run updates the lists before the install, fresh as they were', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { nodejs: ['22.11.0-1nodesource1'] });
    await freshLists(host, apt);
    apt.lists.clear(); // the fresh lists lack the new source's packages
    const source = {
      name: 'nodesource',
      uris: ['https://deb.nodesource.com/node_22.x'],
      suites: ['nodistro'],
      components: ['main'],
      signedBy: { path: '/usr/share/keyrings/nodesource.gpg' },
    };
    const planned = await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ aptSources: [source], packages: [{ name: 'nodejs', version: '22.*' }] })] });
    expect(planned.plan.changes.slice(0, 2).map((c) => `${c.action} ${c.id}`)).toEqual(['create aptsource/nodesource', 'create package/nodejs']);
    // A declared source may bring what the lists lack: the plan has no error for it.
    expect(planned.plan.diagnostics).toEqual([]);
    expect((await applyPlan(planned)).status).toBe('applied');
    expect(apt.commands.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['apt-get update', 'apt-cache policy', 'apt-get install']);
  });

  it('a package no source has fails the run naming it and its manifest line, before any install; the run restores the source it wrote', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    const source = { name: 'local', uris: ['file:///srv/repo'], suites: ['./'], signedBy: { path: '/etc/apt/keyrings/local.gpg' } };
    const planned = await planOn(host, {
      'hosts/web-1.yaml': [hostDoc({ aptSources: [source], packages: ['jq', 'hostkit-no-such-package'] })],
      'hosts/dir.yaml': [{ kind: 'Directory', name: 'data', on: [HOST], spec: { path: '/srv/data', owner: 'root', group: 'root', mode: '0755' } }],
    });
    const result = await applyPlan(planned);
    expect(result.status).toBe('rolled-back');
    expect((result as { failed?: { error: string; retryable?: boolean } }).failed?.error).toBe(
      "package hostkit-no-such-package, declared at hosts/web-1.yaml:16 (Host spec.packages): no apt source of the host has it (check the name, or declare the source in the Host's spec.aptSources); nothing was installed",
    );
    expect(apt.commands.some((c) => c.startsWith('apt-get install'))).toBe(false);
    expect(host.packages.has('jq')).toBe(false);
    expect(await host.stat('/srv/data')).toBeUndefined();
    expect(await host.stat('/etc/apt/sources.list.d/hostkit-local.sources')).toBeUndefined();
  });

  it('a package missing after an update that could not fetch a source: the error says what apt warned', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, {});
    apt.updateWarning =
      "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\nW: Some index files failed to download.";
    const result = await applyPlan(await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })] }));
    expect((result as { failed?: { error: string } }).failed?.error).toMatch(
      /^package jq, declared at hosts\/web-1.yaml:7 .* nothing was installed \(apt-get update said: W: Failed to fetch .*Temporary failure resolving 'deb.debian.org' W: Some index files failed to download.\)$/,
    );
  });

  it('with fresh lists and no declared source, the plan itself has the error: nothing is applied', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    await freshLists(host, apt);
    const planned = await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq', { name: 'jq-extra', version: '2.*' }] })] });
    expect(planned.plan.diagnostics.map((d) => `${d.summary}: ${d.detail} @${d.location?.line}`)).toEqual([
      "package not found: jq-extra=2.*, declared at hosts/web-1.yaml:8 (Host spec.packages), cannot be installed: no apt source of the host has it (check the name, or declare the source in the Host's spec.aptSources) @8",
    ]);
    await expect(applyPlan(planned)).rejects.toThrow(/has errors; nothing was applied/);
  });

  it('a held dpkg lock fails the run with a clear, retryable error', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    await freshLists(host, apt);
    const planned = await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })] });
    apt.failNext = 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)';
    const result = await applyPlan(planned);
    expect((result as { failed?: { error: string; retryable?: boolean } }).failed?.error).toMatch(
      /^the dpkg lock was still held after 300 s .*unattended-upgr/,
    );
    expect((result as { failed?: { error: string; retryable?: boolean } }).failed?.retryable).toBe(true);
  });

  it('a package no manifest declares any more is reported and kept; remove: true purges it', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    await freshLists(host, apt);
    const withJq = { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })] };
    expect((await applyPlan(await planOn(host, withJq))).status).toBe('applied');
    const inventory = JSON.parse((await host.readFile(`${STATE}/inventory.json`))!.toString()) as { resources: Record<string, { written?: object }> };
    expect(Object.keys(inventory.resources['package/jq']!.written ?? {})).toEqual(['apt-get install']);

    apt.commands.length = 0;
    const orphan = await planOn(host, { 'hosts/web-1.yaml': [hostDoc()] });
    const change = orphan.plan.changes.find((c) => c.id === 'package/jq')!;
    expect([change.action, change.orphan, change.reason]).toEqual([
      'noop',
      true,
      'no manifest declares it any more; HostKit installed it, and it stays installed (declare it with remove: true to purge it)',
    ]);
    expect((await applyPlan(orphan)).status).toBe('no-changes');
    expect(host.packages.has('jq')).toBe(true);

    const purge = await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: [{ name: 'jq', remove: true }] })] });
    expect(packageChanges(purge)).toEqual(['delete package/jq']);
    expect((await applyPlan(purge)).status).toBe('applied');
    expect(apt.commands.at(-1)).toMatch(/^apt-get install .* --purge jq-$/);
    expect(host.packages.has('jq')).toBe(false);
  });

  it('a restore keeps what the run installed, reported as not undone', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { jq: ['1.6-2.1'] });
    await freshLists(host, apt);
    const result = await applyPlan(await planOn(host, { 'hosts/web-1.yaml': [hostDoc({ packages: ['jq'] })] }));
    const journal = (await RunJournal.load(host, STATE, result.run!))!;
    const done = await rollbackRun(journal, { dryRun: false, log: silentLogger() });
    expect(done.result!.errors).toEqual([]);
    expect(done.result!.warnings).toEqual(['package/jq: packages are kept installed (purging one can take its data and services with it)']);
    expect(host.packages.has('jq')).toBe(true);
    expect(apt.commands.filter((c) => c.includes('purge') || c.endsWith('jq-'))).toEqual([]);
  });
});
