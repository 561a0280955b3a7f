import { describe, expect, it } from 'vitest';
import { JournaledRun } from '../../../test/support/undo.js';
import type { Resource } from '../../core/resource.js';
import { expandForHost, hostSettings } from '../../manifests/expand.js';
import { validateFiles } from '../../manifests/index.js';
import type { HostManifest, Manifest } from '../../manifests/types.js';
import { FakeHost } from '../../hosts/fake.js';
import { FakeKernel } from '../../../test/support/fake-sysctl.js';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { DriverContext } from '../types.js';
import { sysctlDriver, type ObservedSysctl, type SysctlSpec } from './index.js';

const PATH = '/etc/sysctl.d/90-hostkit-routing.conf';
const FILE = `# Written by HostKit (sysctl/routing); a change here is undone on its next run.
net.ipv4.ip_forward = 1
net.ipv4.tcp_rmem = 4096 131072 6291456
`;

function resource(parameters: Record<string, string>, name = 'routing'): Resource<SysctlSpec> {
  return {
    id: `sysctl/${name}`,
    kind: 'sysctl',
    name,
    spec: { path: `/etc/sysctl.d/90-hostkit-${name}.conf`, parameters },
    dependsOn: [],
    origin: { file: 'hosts/sysctl.yaml', line: 3 },
    fieldOrigins: Object.fromEntries(Object.keys(parameters).map((k, i) => [`parameters/${k}`, { file: 'hosts/sysctl.yaml', line: 8 + i }])),
    hostLevel: true,
  };
}

const ROUTING = resource({ 'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096 131072 6291456' });

function setup(values: Record<string, string> = { 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_rmem': '4096\t131072\t6291456', 'vm.swappiness': '60' }) {
  const host = new FakeHost();
  const kernel = new FakeKernel(values);
  kernel.install(host);
  return { host, kernel };
}

async function planOn(ctx: DriverContext, r: Resource<SysctlSpec>, orphan = false) {
  const desired = orphan ? undefined : (await sysctlDriver.desire([r], ctx)).get(r.id)!.desired;
  const observed = (await sysctlDriver.observe([r], ctx)).get(r.id);
  return sysctlDriver.plan({ resource: r, desired, observed, orphan });
}

const sysctlCalls = (host: FakeHost) => host.calls.filter((c) => c.file === 'sysctl').map((c) => c.args.join(' '));

describe('reconciler/drivers/sysctl', () => {
  const desired = { path: PATH, content: FILE, owner: 'root', group: 'root', mode: 0o644, parameters: ROUTING.spec.parameters };
  const file = { type: 'file' as const, content: Buffer.from(FILE), owner: 'root', group: 'root', mode: 0o644, owned: true };
  const live = { 'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096\t131072\t6291456' };

  it.each<[string, ObservedSysctl, boolean, string, string[]]>([
    [
      'no file, values differ: created',
      { live: { ...live, 'net.ipv4.ip_forward': '0' }, problems: {} },
      false,
      'create',
      ['/content', '/owner', '/group', '/mode', '/parameters/net.ipv4.ip_forward'],
    ],
    [
      'no file, values already so: created all the same (the file is what a boot reads)',
      { live, problems: {} },
      false,
      'create',
      ['/content', '/owner', '/group', '/mode'],
    ],
    ['file and values as desired (tabs as sysctl prints them): nothing', { file, live, problems: {} }, false, 'noop', []],
    [
      'a value changed by hand: set again',
      { file, live: { ...live, 'net.ipv4.ip_forward': '0' }, problems: {} },
      false,
      'update',
      ['/parameters/net.ipv4.ip_forward'],
    ],
    ['the file edited by hand: written again', { file: { ...file, content: Buffer.from('x = 1\n') }, live, problems: {} }, false, 'update', ['/content']],
    ['orphan: its file is removed', { file, live, problems: {} }, true, 'delete', []],
    ['orphan already gone', { live, problems: {} }, true, 'noop', []],
  ])('%s', (_title, observed, orphan, action, fields) => {
    const change = sysctlDriver.plan({ resource: ROUTING, desired: orphan ? undefined : desired, observed, orphan });
    expect(change.action).toBe(action);
    expect(change.fields.map((f) => f.field)).toEqual(fields);
    expect(change.diagnostics).toEqual([]);
  });

  it('shows a live value as before and after, and says an orphan leaves the values as they are', () => {
    const change = sysctlDriver.plan({
      resource: ROUTING,
      desired,
      observed: { file, live: { ...live, 'net.ipv4.ip_forward': '0' }, problems: {} },
      orphan: false,
    });
    expect(change.fields).toEqual([{ field: '/parameters/net.ipv4.ip_forward', before: '0', after: '1' }]);
    const orphan = sysctlDriver.plan({ resource: ROUTING, desired: undefined, observed: { file, live, problems: {} }, orphan: true });
    expect(orphan.reason).toBe('no manifest declares it any more; the live values stay as they are until the next boot');
  });

  it('observes every resource with one sysctl process, however many there are', async () => {
    const count = async (n: number) => {
      const { host, kernel } = setup();
      const resources = Array.from({ length: n }, (_, i) => {
        kernel.values.set(`net.ipv4.conf.eth${i}.forwarding`, '0');
        return resource({ [`net.ipv4.conf.eth${i}.forwarding`]: '1', 'net.ipv4.ip_forward': '1' }, `r${i}`);
      });
      const observed = await sysctlDriver.observe(resources, driverContext(host, { mode: 'plan' }));
      expect([...observed.values()].every((o) => o.live['net.ipv4.ip_forward'] === '0')).toBe(true);
      return host.calls.length;
    };
    expect(await count(1)).toBe(1);
    expect(await count(20)).toBe(1);
  });

  it('a key the kernel lacks is a plan error naming the key, at its line', async () => {
    const { host } = setup();
    const r = resource({ 'net.ipv4.ip_forward': '1', 'net.ipv4.no_such_key': '1' });
    const change = await planOn(driverContext(host, { mode: 'plan' }), r);
    expect(change.diagnostics).toEqual([
      {
        severity: 'error',
        summary: 'unknown kernel parameter',
        detail:
          'net.ipv4.no_such_key cannot be read on this host: cannot stat /proc/sys/net/ipv4/no_such_key: No such file or directory; check the name (sysctl -a lists them)',
        location: { file: 'hosts/sysctl.yaml', line: 9 },
      },
    ]);
  });

  it('applies: writes the file, loads it, verifies; a second plan is empty', async () => {
    const { host, kernel } = setup();
    const ctx = driverContext(host);
    const change = await planOn(ctx, ROUTING);
    expect(change.action).toBe('create');
    host.calls.length = 0;
    await sysctlDriver.apply(change, ctx);
    expect(host.text(PATH)).toBe(FILE);
    expect(await host.stat(PATH)).toMatchObject({ uid: 0, gid: 0, mode: 0o644 });
    expect(sysctlCalls(host)).toEqual(['-- net.ipv4.ip_forward net.ipv4.tcp_rmem', `--quiet --load ${PATH}`]);
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('1');
    expect(await sysctlDriver.verify(change, ctx)).toEqual([]);

    const next = driverContext(host, { mode: 'plan', inventory: inventoryAfter(ctx, [ROUTING]) });
    expect((await planOn(next, ROUTING)).action).toBe('noop');
  });

  it('a changed value is applied, and rollback puts back the file and the value', async () => {
    const { host, kernel } = setup();
    const ctx = driverContext(host);
    await sysctlDriver.apply(await planOn(ctx, ROUTING), ctx);
    const changed = resource({ 'net.ipv4.ip_forward': '0', 'net.ipv4.tcp_rmem': '4096 131072 6291456' });
    const later = driverContext(host, { inventory: inventoryAfter(ctx, [ROUTING]) });
    const change = await planOn(later, changed);
    expect(change.action).toBe('update');
    expect(change.fields.map((f) => f.field)).toEqual(['/content', '/parameters/net.ipv4.ip_forward']);
    const run = await JournaledRun.open(later, [change]);
    await run.apply(sysctlDriver, change);
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('0');
    expect(host.text(PATH)).toContain('net.ipv4.ip_forward = 0\n');

    await run.rollback();
    expect(host.text(PATH)).toBe(FILE);
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('1');
  });

  it('rollback of a create removes the file and writes the previous values back, in one sysctl', async () => {
    const { host, kernel } = setup();
    const ctx = driverContext(host);
    const change = await planOn(ctx, ROUTING);
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(sysctlDriver, change);
    host.calls.length = 0;
    await run.rollback();
    expect(host.text(PATH)).toBeUndefined();
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('0');
    // One read to see whether the values are already as before, then one write.
    expect(sysctlCalls(host)).toEqual([
      '-- net.ipv4.ip_forward net.ipv4.tcp_rmem',
      '--quiet --write net.ipv4.ip_forward=0 net.ipv4.tcp_rmem=4096\t131072\t6291456',
    ]);
  });

  it('a key the kernel refuses fails apply, which puts back the previous file and values before it throws', async () => {
    const { host, kernel } = setup({ 'net.ipv4.ip_forward': '0', 'kernel.pid_max': '32768' });
    kernel.readOnly.add('kernel.pid_max');
    host.seedFile(PATH, 'net.ipv4.ip_forward = 0\n');
    const ctx = driverContext(host);
    const r = resource({ 'net.ipv4.ip_forward': '1', 'kernel.pid_max': '65536' });
    const change = await planOn(ctx, r);
    expect(change.diagnostics).toEqual([]);
    await expect(sysctlDriver.apply(change, ctx)).rejects.toThrow(
      /sysctl --quiet --load \/etc\/sysctl.d\/90-hostkit-routing.conf exited 1.*setting key "kernel.pid_max": Read-only file system/s,
    );
    expect(host.text(PATH)).toBe('net.ipv4.ip_forward = 0\n');
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('0');
    expect(kernel.values.get('kernel.pid_max')).toBe('32768');
  });

  it('verify reports a value the kernel did not take', async () => {
    const { host, kernel } = setup();
    const ctx = driverContext(host);
    const change = await planOn(ctx, ROUTING);
    await sysctlDriver.apply(change, ctx);
    kernel.values.set('net.ipv4.ip_forward', '0'); // e.g. another file loaded after ours
    const problems = await sysctlDriver.verify(change, ctx);
    expect(problems.map((d) => d.detail)).toEqual([`${PATH} or the live values differ from what was applied: /parameters/net.ipv4.ip_forward`]);
  });

  it('the run journal backs up its file and the live values before it applies (crash recovery and hostkit rollback restore them)', async () => {
    const { host } = setup();
    const ctx = driverContext(host);
    const change = await planOn(ctx, ROUTING);
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(sysctlDriver, change);
    const backups = run.journal.events.filter((e) => e.ev === 'backup').map((e) => (e as { target: { type: string; path?: string; key?: string } }).target);
    expect(backups).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'file', path: PATH })]));
    expect((await run.plan()).steps.map((st) => st.action)).toEqual(expect.arrayContaining(['remove-file', 'restore-values']));
  });

  it('deleting an orphan removes its file and leaves the values; rollback puts the file back', async () => {
    const { host, kernel } = setup();
    const ctx = driverContext(host);
    await sysctlDriver.apply(await planOn(ctx, ROUTING), ctx);
    const later = driverContext(host, { inventory: inventoryAfter(ctx, [ROUTING]) });
    const change = await planOn(later, ROUTING, true);
    expect(change.action).toBe('delete');
    const run = await JournaledRun.open(later, [change]);
    host.calls.length = 0;
    await run.apply(sysctlDriver, change);
    expect(host.text(PATH)).toBeUndefined();
    expect(sysctlCalls(host)).toEqual([]);
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('1');
    expect(await sysctlDriver.verify(change, later)).toEqual([]);
    await run.rollback();
    expect(host.text(PATH)).toBe(FILE);
  });
});

describe('reconciler/drivers/sysctl/manifest', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const HOST = 'apiVersion: hostkit.dev/v1\nkind: Host\nmetadata: { name: web-1 }\nspec: {}\n';
  const sysctl = (name: string, body: string, project = '') =>
    `apiVersion: hostkit.dev/v1\nkind: Sysctl\nmetadata:\n  name: ${name}\n${project}spec:\n  placement: { hosts: [web-1] }\n${body}`;

  async function validate(files: Record<string, string>) {
    return validateFiles(Object.entries({ 'hosts/web-1.yaml': HOST, ...files }).map(([file, text]) => ({ file, bytes: enc(text) })));
  }

  it('expands into one resource: the file in /etc/sysctl.d, values as text, each key located', async () => {
    const repo = await validate({
      'hosts/sysctl.yaml': sysctl('routing', '  parameters:\n    net.ipv4.ip_forward: 1\n    net.ipv4.tcp_rmem: "4096 131072 6291456"\n'),
      'hosts/other.yaml': sysctl('other', '  file: 95-other.conf\n  parameters:\n    vm.swappiness: 10\n'),
    });
    expect(repo.diagnostics).toEqual([]);
    const host = hostSettings(repo.manifests.find((m): m is Manifest<HostManifest> => m.kind === 'Host')!);
    const resources = expandForHost(repo.manifests, host)
      .resources.filter((r) => r.kind === 'sysctl')
      .sort((a, b) => a.id.localeCompare(b.id));
    expect(resources.map((r) => [r.id, r.spec, r.hostLevel])).toEqual([
      ['sysctl/other', { path: '/etc/sysctl.d/95-other.conf', parameters: { 'vm.swappiness': '10' } }, true],
      [
        'sysctl/routing',
        { path: '/etc/sysctl.d/90-hostkit-routing.conf', parameters: { 'net.ipv4.ip_forward': '1', 'net.ipv4.tcp_rmem': '4096 131072 6291456' } },
        true,
      ],
    ]);
    expect(resources[1]!.fieldOrigins?.['parameters/net.ipv4.tcp_rmem']).toMatchObject({ file: 'hosts/sysctl.yaml', line: 9 });
  });

  it.each([
    ['a key written as a path', '  parameters:\n    "net/ipv4/ip_forward": 1\n', '/spec/parameters/net~1ipv4~1ip_forward'],
    ['a key of one segment', '  parameters:\n    kernel: 1\n', '/spec/parameters/kernel'],
    ['a value over two lines', '  parameters:\n    net.ipv4.ip_forward: "1\\n2"\n', '/spec/parameters/net.ipv4.ip_forward'],
    ['a value with a trailing space', '  parameters:\n    net.ipv4.ip_forward: "1 "\n', '/spec/parameters/net.ipv4.ip_forward'],
    ['a file outside /etc/sysctl.d', '  file: ../sysctl.conf\n  parameters:\n    net.ipv4.ip_forward: 1\n', '/spec/file'],
    ['no parameters', '  parameters: {}\n', '/spec/parameters'],
  ])('the schema refuses %s', async (_title, body, pointer) => {
    const repo = await validate({ 'hosts/sysctl.yaml': sysctl('routing', body) });
    expect(repo.valid).toBe(false);
    expect(repo.diagnostics.map((d) => d.location?.pointer)).toContain(pointer);
  });

  it('one key in two manifests is an error at the second (which file wins would depend on the names)', async () => {
    const repo = await validate({
      'hosts/a.yaml': sysctl('a', '  parameters:\n    net.ipv4.ip_forward: 1\n'),
      'hosts/b.yaml': sysctl('b', '  parameters:\n    net.ipv4.ip_forward: 0\n'),
    });
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'sysctl parameter claimed twice',
        detail: 'net.ipv4.ip_forward on host web-1 is also claimed at hosts/a.yaml:8',
        location: expect.objectContaining({ file: 'hosts/b.yaml', line: 8 }),
      }),
    ]);
  });

  it('is host-level only: a project manifest declaring it is refused (rule host-level-kind)', async () => {
    const repo = await validate({ 'projects/shop.yaml': sysctl('shop', '  parameters:\n    net.ipv4.ip_forward: 1\n', '  project: shop\n') });
    expect(repo.diagnostics).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'not allowed in a project manifest',
        detail: expect.stringContaining('rule host-level-kind: Sysctl/shop sets kernel parameters for the whole host, which project shop does not own'),
        location: expect.objectContaining({ file: 'projects/shop.yaml', pointer: '/kind' }),
      }),
    ]);
  });
});

describe('reconciler/drivers/sysctl operations', () => {
  it('the file operations, then a load where the file or the kernel has other values; a chmod loads nothing', async () => {
    const { host, kernel } = setup({ 'net.ipv4.ip_forward': '0' });
    const ctx = driverContext(host);
    const routing = resource({ 'net.ipv4.ip_forward': '1' });
    const created = await planOn(ctx, routing);
    expect(created.ops).toEqual([{ op: 'write' }, { op: 'load' }]);
    await sysctlDriver.apply(created, ctx);
    expect(kernel.values.get('net.ipv4.ip_forward')).toBe('1');

    kernel.values.set('net.ipv4.ip_forward', '0');
    expect((await planOn(ctx, routing)).ops).toEqual([{ op: 'load' }]);
    kernel.values.set('net.ipv4.ip_forward', '1');

    await host.setOwnership(PATH, { uid: 0, gid: 0, mode: 0o600 });
    const chmod = await planOn(ctx, routing);
    expect(chmod.ops).toEqual([{ op: 'chmod' }]);
    host.calls.length = 0;
    const run = await JournaledRun.open(ctx, [chmod]);
    await run.apply(sysctlDriver, chmod);
    expect(sysctlCalls(host)).toEqual([]);
    expect((await host.stat(PATH))?.mode).toBe(0o644);
    // No load, so no kernel values to put back: the journal holds the file only.
    expect((await run.plan()).steps.map((st) => st.action)).toEqual(['restore-file']);

    expect((await planOn(ctx, routing, true)).ops).toEqual([{ op: 'remove' }]);
  });
});
