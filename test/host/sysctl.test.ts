import { expect, it } from 'vitest';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, HOST_NAME, reconcile, repo } from './reconcile.js';

// Kernel parameters on a real host (reconciler/drivers/sysctl): in an nspawn
// host with its own network namespace only net.* is writable, so these use
// net.ipv4.ip_forward and net.ipv4.conf.all.log_martians; kernel.* is read-only
// there, which gives a key the kernel refuses.

const FILE = '/etc/sysctl.d/90-hostkit-routing.conf';
const FORWARD = 'net.ipv4.ip_forward';
const MARTIANS = 'net.ipv4.conf.all.log_martians';

function sysctl(parameters: Record<string, string | number>): string {
  return `apiVersion: hostkit.dev/v1
kind: Sysctl
metadata:
  name: routing
spec:
  placement:
    hosts: [${HOST_NAME}]
  parameters:
${Object.entries(parameters)
  .map(([k, v]) => `    ${k}: ${v}\n`)
  .join('')}`;
}

// A service that exits at once: its unit fails to start after the sysctl change applied.
const BROKEN_UNIT = `apiVersion: hostkit.dev/v1
kind: Unit
metadata:
  name: broken
spec:
  placement:
    hosts: [${HOST_NAME}]
  command: [/usr/bin/false]
  restart: "no"
`;

/** The live value, read from /proc/sys (not through sysctl). */
async function live(m: TestHost, key: string): Promise<string> {
  return (await m.exec('cat', [`/proc/sys/${key.replaceAll('.', '/')}`])).stdout.trim();
}

async function file(m: TestHost): Promise<string | undefined> {
  const r = await m.host.exec('cat', [FILE]);
  return r.exitCode === 0 ? r.stdout : undefined;
}

describeHost('reconciler/drivers/sysctl on a real host', () => {
  const machine = useHost();

  it('apply sets the live values and writes the file; a second plan is empty; a changed value is applied', async () => {
    const m = machine();
    expect([await live(m, FORWARD), await live(m, MARTIANS)]).toEqual(['0', '0']);
    appliedOk(await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, [MARTIANS]: '1' }) })));
    expect([await live(m, FORWARD), await live(m, MARTIANS)]).toEqual(['1', '1']);
    expect(await file(m)).toBe(`# Written by HostKit (sysctl/routing); a change here is undone on its next run.\n${FORWARD} = 1\n${MARTIANS} = 1\n`);
    expect((await m.exec('stat', ['-c', '%U:%G %a', FILE])).stdout.trim()).toBe('root:root 644');

    const again = await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, [MARTIANS]: '1' }) }));
    expect(applied(again).status).toBe('no-changes');

    const changed = appliedOk(await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, [MARTIANS]: 0 }) })));
    expect(changed.steps.map((s) => `${s.action} ${s.id}`)).toEqual(['update sysctl/routing']);
    expect(await live(m, MARTIANS)).toBe('0');
    expect(await file(m)).toContain(`${MARTIANS} = 0\n`);
  });

  it('a value changed by hand is seen as drift and set again', async () => {
    const m = machine();
    await m.exec('sysctl', ['-q', '-w', `${MARTIANS}=1`]);
    const plan = await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, [MARTIANS]: 0 }) }), { dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    const change = plan.planned.plan.changes.find((c) => c.id === 'sysctl/routing')!;
    expect([change.action, change.fields]).toEqual(['update', [{ field: `/parameters/${MARTIANS}`, before: '1', after: '0' }]]);
    appliedOk(await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, [MARTIANS]: 0 }) })));
    expect(await live(m, MARTIANS)).toBe('0');
  });

  it('a later step that fails rolls the value and the file back', async () => {
    const m = machine();
    const before = await file(m);
    const outcome = await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 0, [MARTIANS]: 0 }), 'hosts/broken.yaml': BROKEN_UNIT }));
    const result = applied(outcome);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('unit/hk-broken.service');
    expect(result.rollbackErrors).toEqual([]);
    expect(await live(m, FORWARD)).toBe('1');
    expect(await file(m)).toBe(before);
  });

  it('a key the kernel refuses (kernel.* is read-only here) fails the apply, which leaves the file and values as they were', async () => {
    const m = machine();
    const before = await file(m);
    const pidMax = await live(m, 'kernel.pid_max');
    const outcome = await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 0, 'kernel.pid_max': Number(pidMax) + 1 }) }));
    const result = applied(outcome);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('sysctl/routing');
    expect(result.failed.error).toMatch(/sysctl --quiet --load \/etc\/sysctl.d\/90-hostkit-routing.conf exited .*kernel.pid_max/s);
    expect([await live(m, FORWARD), await live(m, 'kernel.pid_max')]).toEqual(['1', pidMax]);
    expect(await file(m)).toBe(before);
  });

  it('a key the kernel lacks is a plan error naming the key at its line', async () => {
    const m = machine();
    const plan = await reconcile(m, await repo({ 'hosts/sysctl.yaml': sysctl({ [FORWARD]: 1, 'net.ipv4.no_such_key': 1 }) }));
    if (plan.stage !== 'planned') throw new Error(`expected a refused plan, got ${plan.stage}`);
    expect(plan.planned.plan.diagnostics.filter((d) => d.severity === 'error')).toEqual([
      expect.objectContaining({
        summary: 'unknown kernel parameter',
        detail: expect.stringContaining('net.ipv4.no_such_key cannot be read on this host: cannot stat /proc/sys/net/ipv4/no_such_key'),
        location: expect.objectContaining({ file: 'hosts/sysctl.yaml', line: 10 }),
      }),
    ]);
  });

  it("an orphan's file is removed and its values stay until the next boot", async () => {
    const m = machine();
    const result = appliedOk(await reconcile(m, await repo({})));
    expect(result.steps.map((s) => `${s.action} ${s.id}`)).toEqual(['delete sysctl/routing']);
    expect(await file(m)).toBeUndefined();
    expect(await live(m, FORWARD)).toBe('1');
  });
});
