import { describe, expect, it } from 'vitest';
import { FakeApt } from '../../../test/support/fake-apt.js';
import { manifestYaml, type ManifestInput } from '../../../test/support/manifests.js';
import { applyPlan } from '../../apply/executor.js';
import { RunJournal } from '../../apply/journal.js';
import { rollbackRun } from '../../apply/rollback.js';
import { silentLogger } from '../../core/log.js';
import { planHost, type PlannedHost } from '../../diff/plan.js';
import { FakeHost } from '../../hosts/fake.js';
import { validateFiles } from '../../manifests/index.js';

const HOST = 'web-1';
const STATE = '/var/lib/hostkit';
const SOURCES = '/etc/apt/sources.list.d/hostkit-vendor.sources';
const KEYFILE = '/etc/apt/keyrings/hostkit-vendor.asc';
const KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----';

const vendor = (signedBy: object, suites = ['bookworm']) => ({
  name: 'vendor',
  uris: ['https://deb.vendor.example/debian'],
  suites,
  components: ['main'],
  signedBy,
});

async function planOn(host: FakeHost, spec: Record<string, unknown>): Promise<PlannedHost> {
  const doc: ManifestInput = { kind: 'Host', name: HOST, spec: { stateDirectory: STATE, ...spec } };
  const repo = await validateFiles([{ file: 'hosts/web-1.yaml', bytes: new TextEncoder().encode(manifestYaml(doc)) }]);
  expect(repo.diagnostics).toEqual([]);
  return planHost({ hostName: HOST, host, log: silentLogger(), repository: 'test', manifests: repo.manifests, mode: 'apply' });
}

const changes = (p: PlannedHost) => p.plan.changes.filter((c) => c.action !== 'noop').map((c) => `${c.action} ${c.id}`);

describe('reconciler/drivers/aptsource', () => {
  it('writes the deb822 source and its inline key (root, 0644), Signed-By naming the key; a second plan is empty', async () => {
    const host = new FakeHost();
    const planned = await planOn(host, { aptSources: [vendor({ key: KEY })] });
    expect(changes(planned)).toEqual(['create aptsource/vendor']);
    expect(planned.plan.changes[0]!.ops).toEqual([
      { op: 'write', path: KEYFILE },
      { op: 'write', path: SOURCES },
    ]);
    expect((await applyPlan(planned)).status).toBe('applied');
    expect(host.text(SOURCES)).toBe(
      '# Written by HostKit (aptsource/vendor); a change here is undone on its next run.\nTypes: deb\nURIs: https://deb.vendor.example/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/hostkit-vendor.asc\n',
    );
    expect(host.text(KEYFILE)).toBe(KEY + '\n');
    expect(await host.stat(KEYFILE)).toMatchObject({ uid: 0, gid: 0, mode: 0o644 });
    expect(changes(await planOn(host, { aptSources: [vendor({ key: KEY })] }))).toEqual([]);
  });

  it('refuses a user or password in a URI (apt would write it into a file any user reads, and the plan would show it)', async () => {
    const doc: ManifestInput = {
      kind: 'Host',
      name: HOST,
      spec: { aptSources: [{ ...vendor({ key: KEY }), uris: ['https://ci:s3cret-token@deb.vendor.example/debian'] }] },
    };
    const repo = await validateFiles([{ file: 'hosts/web-1.yaml', bytes: new TextEncoder().encode(manifestYaml(doc)) }]);
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({ severity: 'error', location: expect.objectContaining({ file: 'hosts/web-1.yaml', pointer: '/spec/aptSources/0/uris/0' }) }),
    ]);
  });

  it('a key given by path is named as it is, and a key file HostKit wrote before is removed', async () => {
    const host = new FakeHost();
    await applyPlan(await planOn(host, { aptSources: [vendor({ key: KEY })] }));
    const planned = await planOn(host, { aptSources: [vendor({ path: '/usr/share/keyrings/vendor.gpg' })] });
    expect(planned.plan.changes.find((c) => c.id === 'aptsource/vendor')!.ops).toEqual([
      { op: 'write', path: SOURCES },
      { op: 'remove', path: KEYFILE },
    ]);
    expect((await applyPlan(planned)).status).toBe('applied');
    expect(host.text(SOURCES)).toContain('Signed-By: /usr/share/keyrings/vendor.gpg\n');
    expect(await host.stat(KEYFILE)).toBeUndefined();
  });

  it('a changed key updates the lists before the install of the same run, however fresh they were (the source file is the same)', async () => {
    const host = new FakeHost();
    const apt = new FakeApt(host, { 'vendor-tool': ['2.0-1'] });
    await applyPlan(await planOn(host, { aptSources: [vendor({ key: KEY })] }));
    apt.updated();
    const { sourcesDigest } = await import('../package/apt.js');
    await host.writeFile(`${STATE}/apt-lists.json`, JSON.stringify({ updatedAt: Date.now(), sources: await sourcesDigest(host) }), {
      uid: 0,
      gid: 0,
      mode: 0o644,
    });
    const planned = await planOn(host, { aptSources: [vendor({ key: KEY.replace('abcd', 'efgh') })], packages: ['vendor-tool'] });
    expect(changes(planned)).toEqual(['update aptsource/vendor', 'create package/vendor-tool']);
    expect((await applyPlan(planned)).status).toBe('applied');
    expect(apt.commands.map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['apt-get update', 'apt-cache policy', 'apt-get install']);
  });

  it('a restore puts both files back from the run journal; an orphan source goes with its key', async () => {
    const host = new FakeHost();
    await applyPlan(await planOn(host, { aptSources: [vendor({ key: KEY })] }));
    const before = [host.text(SOURCES), host.text(KEYFILE)];
    const result = await applyPlan(await planOn(host, { aptSources: [vendor({ key: KEY.replace('abcd', 'efgh') }, ['trixie'])] }));
    expect(host.text(SOURCES)).toContain('Suites: trixie');
    const done = await rollbackRun((await RunJournal.load(host, STATE, result.run!))!, { dryRun: false, log: silentLogger() });
    expect(done.result!.errors).toEqual([]);
    expect([host.text(SOURCES), host.text(KEYFILE)]).toEqual(before);

    const orphan = await planOn(host, {});
    expect(changes(orphan)).toEqual(['delete aptsource/vendor']);
    expect((await applyPlan(orphan)).status).toBe('applied');
    expect([await host.stat(SOURCES), await host.stat(KEYFILE)]).toEqual([undefined, undefined]);
  });
});
