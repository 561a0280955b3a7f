import { describe, expect, it } from 'vitest';
import { JournaledRun } from '../../../test/support/undo.js';
import { driverContext, inventoryAfter } from '../../../test/support/context.js';
import type { Resource } from '../../core/resource.js';
import type { TimerSpec, UnitSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { fakeSystemd } from '../../../test/support/fake-systemd.js';
import { RESTART_GRACE_MS, timerDriver, unitDriver, type DesiredUnit, type ObservedUnit, type UnitOp, type UnitRun, type UnitUndo } from './driver.js';
import { envAssignment, execArg, execLine, renderService } from './render.js';
import type { DriverContext } from '../types.js';
import type { Change } from '../../diff/model.js';

/** hk-job.timer, daily at 03:00, for hk-job.service. */
function jobTimer(): Resource<TimerSpec> {
  return resource<TimerSpec>('timer', 'hk-job.timer', {
    unit: 'hk-job.timer',
    service: 'hk-job.service',
    onCalendar: ['*-*-* 03:00:00'],
    schedule: '0 3 * * *',
    persistent: true,
  });
}

function serviceSpec(name: string, extra: Partial<UnitSpec> = {}): UnitSpec {
  return {
    unit: `hk-${name}.service`,
    description: `HostKit project ${name}`,
    command: ['/usr/bin/python3', '-m', 'http.server', '9001'],
    user: name,
    group: name,
    environment: {},
    restart: 'on-failure',
    type: 'simple',
    limits: {},
    isolation: { profile: 'web-service', writablePaths: [], network: 'any' },
    reads: [],
    ...extra,
  };
}

function resource<S>(kind: 'unit' | 'timer', name: string, spec: S): Resource<S> {
  return { id: `${kind}/${name}`, kind, name, spec, dependsOn: [], origin: { file: 'projects/x.yaml', line: 1 } };
}

async function planAll(ctx: DriverContext, run: UnitRun, resources: Resource<UnitSpec>[]) {
  const wanted = await unitDriver.desire(resources, ctx, run);
  const observed = await unitDriver.observe(resources, ctx, run);
  return resources.map((r) => unitDriver.plan({ resource: r, desired: wanted.get(r.id)!.desired, observed: observed.get(r.id), orphan: false }));
}

/** Apply and settle as the executor does; with `journaled`, each change is first backed up in that run journal (to roll back from). */
async function applyAll(ctx: DriverContext, run: UnitRun, changes: Change<DesiredUnit, ObservedUnit, UnitUndo>[], journaled?: JournaledRun) {
  const items = [];
  for (const c of changes.filter((c) => c.action !== 'noop')) {
    items.push({ change: c, undo: journaled ? await journaled.apply(unitDriver, c, run) : await unitDriver.apply(c as never, ctx, run) });
  }
  await unitDriver.settle!(items as never, ctx, 'apply', run);
  // As the executor does: verify every change (this waits out the restart grace).
  for (const i of items) await unitDriver.verify(i.change as never, ctx, run);
  return items;
}

describe('reconciler/drivers/systemd', () => {
  it('quotes Exec arguments so systemd reads back the exact strings', () => {
    expect(execArg('a b')).toBe('"a b"');
    expect(execArg('100%')).toBe('"100%%"');
    expect(execArg('$HOME')).toBe('"$$HOME"');
    expect(execArg('say "hi"')).toBe('"say \\"hi\\""');
    expect(execArg('back\\slash')).toBe('"back\\\\slash"');
    expect(execLine(['/usr/bin/env', ';', 'rm'])).toBe('/usr/bin/env ";" "rm"');
  });

  it('writes control characters in Exec arguments as \\xNN escapes, which systemd decodes', () => {
    expect(execArg('a\tb\u001b')).toBe('"a\\x09b\\x1b"');
  });

  it.each(['+bash', '-/usr/bin/node', '!!/bin/sh', '!sh', ':/bin/sh', '@/bin/sh', '|/bin/sh', '-+bash', '', 'rm -rf /', '/bin/%n'])(
    'refuses to render an Exec line whose program is %j (SYSTEMD_UNSAFE_PROGRAM)',
    (program) => {
      expect(() => execLine([program, 'x'])).toThrow(expect.objectContaining({ code: 'SYSTEMD_UNSAFE_PROGRAM' }));
      expect(() => renderService(serviceSpec('api', { command: [program, 'x'] }), undefined, false)).toThrow(/Exec prefix|not a plain|empty/);
    },
  );

  it('renders Environment= values exactly: $ stays one $, % becomes %%, quotes and backslashes escaped', () => {
    expect(envAssignment('A', 'p$HOME $$x %n "q" \\ end\\')).toBe('"A=p$HOME $$x %%n \\"q\\" \\\\ end\\\\"');
    const text = renderService(serviceSpec('api', { environment: { PRICE: '$5' } }), undefined, false);
    expect(text).toContain('Environment="PRICE=$5"\n');
  });

  it.each([
    ['Shop %n', 'Description=Shop %%n\n'],
    ['ends in a backslash \\', 'Description=ends in a backslash\nAfter='],
    ['two\\\\ ', 'Description=two\nAfter='],
    ['a\u0007bell\tand tab', 'Description=a bell and tab\n'],
    ['line\nExecStartPre=/bin/sh', 'Description=line ExecStartPre=/bin/sh\n'],
  ])('renders the description %j as plain text systemd reads back', (description, expected) => {
    const text = renderService(serviceSpec('api', { description }), undefined, false);
    expect(text).toContain(expected);
    expect(text.split('\n').filter((l) => l.startsWith('ExecStart'))).toHaveLength(1);
  });

  it('renders limits, loopback-only network and the strict profile as directives', () => {
    const text = renderService(
      serviceSpec('api', {
        limits: { memoryMax: '256M', memoryHigh: '200M', cpuQuota: '50%', tasksMax: 64 },
        isolation: { profile: 'strict', writablePaths: ['/srv/api'], network: 'loopback-only' },
      }),
      undefined,
      false,
    );
    for (const line of [
      'MemoryMax=256M',
      'MemoryHigh=200M',
      'CPUQuota=50%',
      'TasksMax=64',
      'IPAddressDeny=any',
      'IPAddressAllow=localhost',
      'PrivateDevices=yes',
      'CapabilityBoundingSet=',
      'ReadWritePaths=-/srv/api',
      'WantedBy=multi-user.target',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
  });

  it('observes all units with ONE systemctl call', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = Array.from({ length: 40 }, (_, i) => resource('unit', `hk-a${i}.service`, serviceSpec(`a${i}`)));
    await unitDriver.observe(resources, ctx, run);
    expect(host.calls.filter((c) => c.file === 'systemctl')).toHaveLength(1);
  });

  it('first apply: one daemon-reload, one enable and one restart call for all units; second plan is all noop', async () => {
    const host = new FakeHost();
    const units = fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = ['a', 'b', 'c'].map((n) => resource('unit', `hk-${n}.service`, serviceSpec(n)));
    const changes = await planAll(ctx, run, resources);
    expect(changes.map((c) => c.action)).toEqual(['create', 'create', 'create']);
    host.calls.length = 0;
    const items = await applyAll(ctx, run, changes as never);
    const systemctl = host.calls.filter((c) => c.file === 'systemctl').map((c) => c.args.join(' '));
    expect(systemctl.filter((a) => a === 'daemon-reload')).toHaveLength(1);
    expect(systemctl.filter((a) => a.startsWith('enable'))).toEqual(['enable --no-reload -- hk-a.service hk-b.service hk-c.service']);
    expect(systemctl.filter((a) => a.startsWith('restart'))).toEqual(['restart -- hk-a.service hk-b.service hk-c.service']);
    for (const { change } of items) expect(await unitDriver.verify(change as never, ctx, run)).toEqual([]);
    expect(units.get('hk-a.service')).toMatchObject({ active: 'active' });
    expect(host.text('/etc/systemd/system/multi-user.target.wants/hk-a.service')).toBe('');
    expect((await planAll(ctx, run, resources)).map((c) => c.action)).toEqual(['noop', 'noop', 'noop']);
  });

  it('a unit file named hk-* that HostKit did not write, or that was edited by hand, is shown by size and fingerprint only', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = [resource('unit', 'hk-a.service', serviceSpec('a'))];
    host.seedFile('/etc/systemd/system/hk-a.service', '[Service]\nEnvironment=TOKEN=CANARY-7f3e9a\n');
    const [foreign] = await planAll(ctx, run, resources);
    expect(foreign!.fields[0]).toEqual({
      field: '/content',
      before: expect.stringMatching(/^exists, 42 bytes, fingerprint hmac:[0-9a-f]{12}$/),
      after: 'unit file',
    });
    await applyAll(ctx, run, [foreign] as never);
    ctx.inventory = inventoryAfter(ctx, resources);
    host.seedFile('/etc/systemd/system/hk-a.service', host.text('/etc/systemd/system/hk-a.service') + 'Environment=PASTED=CANARY-7f3e9a\n');
    const [edited] = await planAll(ctx, run, resources);
    expect(edited!.fields[0]!.before).toMatch(/^changed by hand, \d+ bytes, fingerprint hmac:/);
    expect(JSON.stringify([foreign!.fields, edited!.fields])).not.toContain('CANARY');
  });

  it('a plain Environment= value that looks like a credential is shown by length and fingerprint, in the new text and in the one HostKit wrote before', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const spec = (mode: string) => serviceSpec('a', { environment: { MODE: mode, API_TOKEN: 'CANARY-7f3e9a%$"x', GH: 'ghp_CANARY0123456789abcdefghij' } });
    const [created] = await planAll(ctx, run, [resource('unit', 'hk-a.service', spec('live'))]);
    expect(created!.fields[0]!.diff).toContain('+Environment=API_TOKEN=(plain value, 17 characters, redacted) hmac:');
    expect(created!.fields[0]!.diff).toContain('+Environment=GH=(plain value, 30 characters, redacted) hmac:');
    expect(created!.fields[0]!.diff).toContain('+Environment="MODE=live"');
    await applyAll(ctx, run, [created] as never);
    expect(host.text('/etc/systemd/system/hk-a.service')).toContain('Environment="API_TOKEN=CANARY-7f3e9a%%$\\"x"');
    ctx.inventory = inventoryAfter(ctx, [resource('unit', 'hk-a.service', spec('live'))]);
    const [updated] = await planAll(ctx, run, [resource('unit', 'hk-a.service', spec('debug'))]);
    const diff = updated!.fields[0]!.diff!;
    expect(diff).toMatch(/^-Environment="MODE=live"$/m);
    expect(diff).toMatch(/^ Environment=API_TOKEN=\(plain value, 17 characters, redacted\) hmac:[0-9a-f]{12}$/m);
    expect(JSON.stringify([created!.fields, updated!.fields])).not.toContain('CANARY');
  });

  it('a changed input file restarts exactly that service', async () => {
    const host = new FakeHost();
    const units = fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = ['a', 'b'].map((n) => resource('unit', `hk-${n}.service`, serviceSpec(n, { reads: [`/etc/hostkit/env/${n}.env`] })));
    ctx.fileDigests.set('/etc/hostkit/env/a.env', 'd1').set('/etc/hostkit/env/b.env', 'd1');
    await applyAll(ctx, run, (await planAll(ctx, run, resources)) as never);
    ctx.inventory = inventoryAfter(ctx, resources); // HostKit now owns what it wrote: the next plan may show its diff
    const before = { a: units.get('hk-a.service')!.invocation, b: units.get('hk-b.service')!.invocation };
    ctx.fileDigests.set('/etc/hostkit/env/a.env', 'd2');
    const changes = await planAll(ctx, run, resources);
    expect(changes.map((c) => c.action)).toEqual(['update', 'noop']);
    expect(changes[0]!.fields[0]!.diff).toMatch(/^-# HostKit inputs: .*$/m);
    host.calls.length = 0;
    await applyAll(ctx, run, changes as never);
    expect(units.get('hk-a.service')!.invocation).not.toBe(before.a);
    expect(units.get('hk-b.service')!.invocation).toBe(before.b);
    // Only the inputs comment changed: the directives are the ones systemd has loaded.
    expect(host.calls.filter((c) => c.file === 'systemd-analyze')).toEqual([]);
  });

  it('a unit file whose directives change is checked by systemd-analyze again; one loaded with different comments only is not', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const analyzed = () => host.calls.filter((c) => c.file === 'systemd-analyze' && c.args[0] === 'verify').length;
    await applyAll(ctx, run, (await planAll(ctx, run, [resource('unit', 'hk-a.service', serviceSpec('a'))])) as never);
    expect(analyzed()).toBe(1);
    await applyAll(ctx, run, (await planAll(ctx, run, [resource('unit', 'hk-a.service', serviceSpec('a', { command: ['/usr/bin/sleep', '99'] }))])) as never);
    expect(analyzed()).toBe(2);
    // A comment added by hand to the loaded file: rewritten without a check. The same
    // comment on a file systemd has not loaded: checked, since nothing vouches for it.
    const path = '/etc/systemd/system/hk-a.service';
    await host.writeFile(path, `# note\n${host.text(path)!}`, { uid: 0, gid: 0, mode: 0o644 });
    await applyAll(ctx, run, (await planAll(ctx, run, [resource('unit', 'hk-a.service', serviceSpec('a', { command: ['/usr/bin/sleep', '99'] }))])) as never);
    expect(analyzed()).toBe(2);
    const [unloaded] = await planAll(ctx, run, [resource('unit', 'hk-b.service', serviceSpec('b'))]);
    await unitDriver.apply(unloaded as never, ctx, run); // written, never loaded
    await host.writeFile('/etc/systemd/system/hk-b.service', `# note\n${host.text('/etc/systemd/system/hk-b.service')!}`, { uid: 0, gid: 0, mode: 0o644 });
    const before = analyzed();
    await applyAll(ctx, run, (await planAll(ctx, run, [resource('unit', 'hk-b.service', serviceSpec('b'))])) as never);
    expect(analyzed()).toBe(before + 1);
  });

  it('a service stopped by hand is drift: planned as a start', async () => {
    const host = new FakeHost();
    const units = fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = [resource('unit', 'hk-a.service', serviceSpec('a'))];
    await applyAll(ctx, run, (await planAll(ctx, run, resources)) as never);
    units.set('hk-a.service', { ...units.get('hk-a.service')!, active: 'inactive', sub: 'dead' });
    const [change] = await planAll(ctx, run, resources);
    expect(change!.action).toBe('update');
    expect(change!.fields).toEqual([{ field: '/state', before: 'inactive (dead)', after: 'active' }]);
  });

  it('a restart owed by a killed run is planned and made, then forgotten', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = [resource('unit', 'hk-a.service', serviceSpec('a'))];
    const [change] = await planAll(ctx, run, resources);
    await unitDriver.apply(change as never, ctx, run); // written, then "killed": no settle
    expect(host.text('/var/lib/hostkit/systemd-pending.json')).toContain('hk-a.service');
    const [next] = await planAll(ctx, run, resources);
    expect(next!.fields.map((f) => f.field)).toContain('/restart');
    await applyAll(ctx, run, [next] as never);
    expect(host.text('/var/lib/hostkit/systemd-pending.json')).not.toContain('hk-a.service');
  });

  it('a unit file that is current but not loaded by systemd gets its daemon-reload, start and enable', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const r = resource('unit', 'hk-a.service', serviceSpec('a'));
    const [first] = await planAll(ctx, run, [r]);
    await unitDriver.apply(first as never, ctx, run); // file written, nothing else
    await host.remove('/var/lib/hostkit/systemd-pending.json'); // and no restart owed on record
    const [change] = await planAll(ctx, run, [r]);
    expect(change!.fields.map((f) => f.field)).toEqual(['/daemonReload', '/state', '/enabled']);
    host.calls.length = 0;
    await applyAll(ctx, run, [change] as never);
    expect(host.calls.filter((c) => c.file === 'systemctl').map((c) => c.args[0])).toEqual(['enable', 'daemon-reload', 'restart', 'show']);
    expect((await planAll(ctx, run, [r]))[0]!.action).toBe('noop');
  });

  it('systemd-analyze verify warnings are reported as warnings; its errors stop the unit from being installed', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    host.onExec((call) =>
      call.file === 'systemd-analyze' && call.args[0] === 'verify'
        ? call.args[2]!.endsWith('hk-bad.service')
          ? { exitCode: 1, stdout: '', stderr: `${call.args[2]}: Command /nope is not executable: No such file or directory` }
          : { exitCode: 0, stdout: '', stderr: `${call.args[2]}:12: Unknown key name 'Foo' in section 'Service', ignoring.` }
        : undefined,
    );
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    await applyAll(ctx, run, (await planAll(ctx, run, [resource('unit', 'hk-a.service', serviceSpec('a'))])) as never);
    expect(ctx.warnings.map((w) => [w.summary, w.detail])).toEqual([
      ['unit warning', "systemd-analyze verify hk-a.service: hk-a.service:12: Unknown key name 'Foo' in section 'Service', ignoring."],
    ]);
    const [bad] = await planAll(ctx, run, [resource('unit', 'hk-bad.service', serviceSpec('bad'))]);
    await expect(unitDriver.apply(bad as never, ctx, run)).rejects.toThrow(
      /systemd-analyze verify rejected hk-bad.service; it was not installed:\nhk-bad.service: Command \/nope is not executable/,
    );
    expect(host.text('/etc/systemd/system/hk-bad.service')).toBeUndefined();
  });

  it('a drop-in added by hand to an owned unit is drift: removed on apply (service restarted), restored on rollback', async () => {
    const host = new FakeHost();
    const units = fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const r = resource('unit', 'hk-a.service', serviceSpec('a'));
    await applyAll(ctx, run, (await planAll(ctx, run, [r])) as never);
    const before = units.get('hk-a.service')!.invocation;
    host.seedFile('/etc/systemd/system/hk-a.service.d/override.conf', '[Service]\nUser=root\n');
    const [change] = await planAll(ctx, run, [r]);
    expect(change!.action).toBe('update');
    expect(change!.fields).toEqual([{ field: '/dropIns', before: ['hk-a.service.d/override.conf'], after: [] }]);
    const journaled = await JournaledRun.open(ctx, [change!]);
    await applyAll(ctx, run, [change] as never, journaled);
    expect(host.text('/etc/systemd/system/hk-a.service.d/override.conf')).toBeUndefined();
    expect(units.get('hk-a.service')!.invocation).not.toBe(before);
    expect((await planAll(ctx, run, [r]))[0]!.action).toBe('noop');
    await journaled.rollback();
    expect(host.text('/etc/systemd/system/hk-a.service.d/override.conf')).toBe('[Service]\nUser=root\n');
  });

  it('a unit that fails to start names itself with its journal tail', async () => {
    const host = new FakeHost();
    fakeSystemd(host, { failStart: 'hk-b.service' });
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const resources = ['a', 'b'].map((n) => resource('unit', `hk-${n}.service`, serviceSpec(n)));
    await expect(applyAll(ctx, run, (await planAll(ctx, run, resources)) as never)).rejects.toThrow(/hk-b.service failed to start[\s\S]*EADDRINUSE/);
  });

  it('timer-driven services are neither enabled nor started; their timer is', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const service = resource('unit', 'hk-job.service', serviceSpec('job', { type: 'oneshot', restart: 'no' }));
    const timer = jobTimer();
    await applyAll(ctx, run, (await planAll(ctx, run, [service])) as never);
    expect(host.calls.some((c) => c.file === 'systemctl' && c.args[0] === 'restart')).toBe(false);
    const timerRun = timerDriver.createRun!(ctx);
    const wanted = await timerDriver.desire([timer], ctx, timerRun);
    const change = timerDriver.plan({ resource: timer, desired: wanted.get(timer.id)!.desired, observed: undefined, orphan: false });
    const undo = await timerDriver.apply(change, ctx, timerRun);
    await timerDriver.settle!([{ change, undo }], ctx, 'apply', timerRun);
    expect(host.text('/etc/systemd/system/hk-job.timer')).toContain('OnCalendar=*-*-* 03:00:00\n');
    expect(host.calls.filter((c) => c.file === 'systemctl' && c.args[0] === 'restart').map((c) => c.args.slice(2))).toEqual([['hk-job.timer']]);
  });

  it("a service that dies within the restart grace fails verify, also when timers settle after it; the run's restarts wait it out", async () => {
    const host = new FakeHost();
    fakeSystemd(host, { dies: { unit: 'hk-a.service', afterMs: 300 } });
    const timer = jobTimer();
    const setup = driverContext(host);
    const setupRun = timerDriver.createRun!(setup);
    const made = await timerDriver.desire([timer], setup, setupRun);
    const create = timerDriver.plan({ resource: timer, desired: made.get(timer.id)!.desired, observed: undefined, orphan: false });
    await timerDriver.settle!([{ change: create, undo: await timerDriver.apply(create, setup, setupRun) }], setup, 'apply', setupRun);

    // One run: the service is restarted, then the timer is removed (no restart of its own, so no grace).
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const [change] = await planAll(ctx, run, [resource('unit', 'hk-a.service', serviceSpec('a'))]);
    const undo = await unitDriver.apply(change as never, ctx, run);
    await unitDriver.settle!([{ change, undo }] as never, ctx, 'apply', run);
    const restarted = performance.now();
    const timerRun = timerDriver.createRun!(ctx);
    const seen = (await timerDriver.observe([timer], ctx, timerRun)).get(timer.id);
    const remove = timerDriver.plan({ resource: timer, desired: undefined, observed: seen, orphan: true });
    expect(remove.action).toBe('delete');
    await timerDriver.settle!([{ change: remove, undo: await timerDriver.apply(remove, ctx, timerRun) }], ctx, 'apply', timerRun);
    // Verify asks once the service's grace is over, so its death at 300 ms is seen.
    const problems = await unitDriver.verify(change as never, ctx, run);
    expect(performance.now() - restarted).toBeGreaterThanOrEqual(RESTART_GRACE_MS - 50);
    expect(problems.map((d) => d.detail)).toEqual([expect.stringMatching(/^hk-a.service is failed \(failed\), not active/)]);

    // An after-start command's wait: the grace of what this run restarted so far.
    const next = driverContext(host);
    const nextRun = unitDriver.createRun!(next);
    const [b] = await planAll(next, nextRun, [resource('unit', 'hk-b.service', serviceSpec('b'))]);
    await unitDriver.settle!([{ change: b, undo: await unitDriver.apply(b as never, next, nextRun) }] as never, next, 'apply', nextRun);
    const settledAt = performance.now();
    await next.run.restarts.allUp();
    expect(performance.now() - settledAt).toBeGreaterThanOrEqual(RESTART_GRACE_MS - 100);
  });

  it('rollback restores the previous unit file and restarts only that unit', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const v1 = resource('unit', 'hk-a.service', serviceSpec('a'));
    await applyAll(ctx, run, (await planAll(ctx, run, [v1])) as never);
    const old = host.text('/etc/systemd/system/hk-a.service');
    const v2 = resource('unit', 'hk-a.service', serviceSpec('a', { command: ['/usr/bin/python3', '-m', 'http.server', '9002'] }));
    const changes = await planAll(ctx, run, [v2]);
    const journaled = await JournaledRun.open(ctx, changes);
    await applyAll(ctx, run, changes as never, journaled);
    host.calls.length = 0;
    await journaled.rollback();
    expect(host.text('/etc/systemd/system/hk-a.service')).toBe(old);
    expect(host.calls.filter((c) => c.file === 'systemctl').map((c) => c.args.join(' '))).toEqual([
      'enable --no-reload -- hk-a.service',
      'daemon-reload',
      'restart -- hk-a.service',
      // ...and, past the restart grace, one look that it stayed up.
      'show --no-pager --property=Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload,InvocationID,Result -- hk-a.service',
    ]);
  });
});

describe('reconciler/drivers/systemd operations', () => {
  const service = (name: string) => resource<UnitSpec>('unit', `hk-${name}.service`, serviceSpec(name));
  const desired = (name: string, over: Partial<DesiredUnit> = {}): DesiredUnit => ({
    unit: `hk-${name}.service`,
    path: `/etc/systemd/system/hk-${name}.service`,
    content: `[Service]\nExecStart=/bin/${name}\n`,
    display: `[Service]\nExecStart=/bin/${name}\n`,
    active: true,
    wantedBy: 'multi-user.target',
    ...over,
  });
  const running = { load: 'loaded', active: 'active', sub: 'running', enabled: true };
  const live = (over: Partial<ObservedUnit> = {}): ObservedUnit => ({
    content: Buffer.from(desired('api').content),
    shown: desired('api').display,
    state: running,
    pending: false,
    dropIns: [],
    ...over,
  });

  it.each<[string, DesiredUnit | undefined, ObservedUnit | undefined, UnitOp[]]>([
    ['new unit: written, enabled, restarted', desired('api'), undefined, [{ op: 'write' }, { op: 'enable' }, { op: 'restart' }]],
    ['new unit that only runs from its timer: written', desired('api', { active: false, wantedBy: undefined }), undefined, [{ op: 'write' }]],
    ['new file: written, restarted', desired('api'), live({ content: Buffer.from('[Service]\nExecStart=/bin/old\n') }), [{ op: 'write' }, { op: 'restart' }]],
    ['stopped by hand: restarted', desired('api'), live({ state: { ...running, active: 'failed', sub: 'failed' } }), [{ op: 'restart' }]],
    ['disabled by hand: enabled again', desired('api'), live({ state: { ...running, enabled: false } }), [{ op: 'enable' }]],
    ['a file systemd has not loaded: daemon-reload', desired('api'), live({ state: { ...running, load: 'not-found' } }), [{ op: 'daemon-reload' }]],
    [
      'a drop-in made by hand: removed, restarted',
      desired('api'),
      live({ dropIns: ['override.conf'] }),
      [{ op: 'remove-drop-ins', dropIns: ['override.conf'] }, { op: 'restart' }],
    ],
    ['a restart owed by an interrupted run: daemon-reload and restart', desired('api'), live({ pending: true }), [{ op: 'daemon-reload' }, { op: 'restart' }]],
    ['as desired: nothing', desired('api'), live(), []],
    ['orphan: stopped, disabled, removed', undefined, live(), [{ op: 'stop' }, { op: 'disable' }, { op: 'remove' }]],
  ])('%s', (_title, d, o, ops) => {
    expect(unitDriver.plan({ resource: service('api'), desired: d, observed: o, orphan: d === undefined }).ops).toEqual(ops);
  });

  it('settle enables and restarts the units whose operations say so, in one call each', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    const ctx = driverContext(host);
    const run = unitDriver.createRun!(ctx);
    const item = (name: string, ops: UnitOp[]) => ({
      change: { ...unitDriver.plan({ resource: service(name), desired: desired(name), observed: undefined, orphan: false }), ops },
      undo: { wrote: false },
    });
    const items = [item('api', [{ op: 'enable' }, { op: 'restart' }]), item('web', [{ op: 'restart' }]), item('worker', [])];
    // Each names /content among its fields: settle goes by the operations.
    expect(items.every((i) => i.change.fields.some((f) => f.field === '/content'))).toBe(true);
    await unitDriver.settle!(items, ctx, 'apply', run);
    const systemctl = host.calls.filter((c) => c.file === 'systemctl').map((c) => c.args.join(' '));
    expect(systemctl.slice(0, 3)).toEqual(['enable --no-reload -- hk-api.service', 'daemon-reload', 'restart -- hk-api.service hk-web.service']);
  });

  it('apply of a removal stops and disables the unit in one call, then removes its file', async () => {
    const host = new FakeHost();
    fakeSystemd(host);
    host.seedFile('/etc/systemd/system/hk-api.service', desired('api').content);
    const ctx = driverContext(host);
    const change = unitDriver.plan({ resource: service('api'), desired: undefined, observed: live(), orphan: true });
    await unitDriver.apply(change, ctx, unitDriver.createRun!(ctx));
    expect(host.calls.map((c) => [c.file, ...c.args].join(' '))).toEqual(['systemctl disable --now hk-api.service']);
    expect(host.text('/etc/systemd/system/hk-api.service')).toBeUndefined();
  });
});
