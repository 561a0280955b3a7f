import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import type { Resource } from '../../core/resource.js';
import type { CommandSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { HostKitError } from '../../core/errors.js';
import type { ExecOptions, ExecResult } from '../../hosts/types.js';
import { hasSettleFirst } from '../types.js';
import { JournaledRun } from '../../../test/support/undo.js';
import {
  COMMAND_KILL_GRACE_MS,
  COMMAND_TIMEOUT_MS,
  commandDriver,
  commandStatePath,
  commandUnitName,
  isLifecycleUnitOf,
  runCommand,
  type CommandOp,
} from './index.js';

const spec: CommandSpec = {
  project: 'shop',
  name: 'migrate',
  phase: 'before-start',
  command: ['/srv/shop/bin/migrate', '--up'],
  down: ['/srv/shop/bin/migrate', '--down'],
  irreversible: false,
  user: 'shop',
  workingDirectory: '/srv/shop',
};

function resource(s: CommandSpec = spec): Resource<CommandSpec> {
  return {
    id: 'command/shop-migrate',
    kind: 'command',
    name: 'shop-migrate',
    spec: s,
    dependsOn: ['account/shop', 'envfile/etc/hostkit/env/shop.env', 'file/srv/shop/config.json'],
    origin: { file: 'projects/shop.yaml', line: 20 },
    project: 'shop',
  };
}

async function desired(digests: Record<string, string>, s: CommandSpec = spec) {
  const ctx = driverContext(new FakeHost());
  for (const [p, d] of Object.entries(digests)) ctx.fileDigests.set(p, d);
  return (await commandDriver.desire([resource(s)], ctx)).get('command/shop-migrate')!.desired;
}

const inputs = { '/etc/hostkit/env/shop.env': 'e1', '/srv/shop/config.json': 'c1' };

describe('reconciler/drivers/command', () => {
  it.each([
    { name: 'never ran', observed: undefined, change: {}, action: 'create' },
    { name: 'ran with the same spec and inputs', observed: 'same', change: {}, action: 'noop' },
    { name: 'the env file changed', observed: 'same', change: { '/etc/hostkit/env/shop.env': 'e2' }, action: 'update' },
    { name: 'a config file changed', observed: 'same', change: { '/srv/shop/config.json': 'c2' }, action: 'update' },
  ])('$name: $action', async ({ observed, change, action }) => {
    const before = await desired(inputs);
    const now = await desired({ ...inputs, ...change });
    const planned = commandDriver.plan({
      resource: resource(),
      desired: now,
      observed: observed ? { digest: before.digest, at: '2026-11-22T00:00:00Z' } : undefined,
      orphan: false,
    });
    expect(planned.action).toBe(action);
    if (action !== 'noop') expect(planned.reason).toMatch(/before the service \(re\)starts/);
  });

  it('a changed command line is a change; the env file is found among its dependencies', async () => {
    const a = await desired(inputs);
    const b = await desired(inputs, { ...spec, command: ['/srv/shop/bin/migrate', '--up', '--verbose'] });
    expect(a.digest).not.toBe(b.digest);
    expect(a.environmentFile).toBe('/etc/hostkit/env/shop.env');
  });

  it('a removed command is forgotten, not undone', () => {
    const planned = commandDriver.plan({ resource: resource(), desired: undefined, observed: { digest: 'x', at: 't' }, orphan: true });
    expect(planned.action).toBe('delete');
    expect(planned.reason).toMatch(/not undone/);
  });

  it('runs as the project user, in its directory, with its env file, as an argument array; records it only on success', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const d = await desired(inputs);
    const change = commandDriver.plan({ resource: resource(), desired: d, observed: undefined, orphan: false });
    const run = await JournaledRun.open(ctx, [change]);
    await run.apply(commandDriver, change);
    const call = host.calls.find((c) => c.file === 'systemd-run')!;
    expect(call.args).toEqual(
      expect.arrayContaining(['--wait', '--pipe', '-p', 'User=shop', 'WorkingDirectory=/srv/shop', 'EnvironmentFile=-/etc/hostkit/env/shop.env']),
    );
    expect(call.args.slice(call.args.indexOf('--') + 1)).toEqual(['/srv/shop/bin/migrate', '--up']);
    // Its transient unit names the project, so `hostkit logs shop --unit lifecycle` finds it.
    expect(call.args.find((a) => a.startsWith('--unit='))).toMatch(/^--unit=hostkit-command-shop-[0-9a-f]{10}\.service$/);
    expect(JSON.parse((await host.readFile('/var/lib/hostkit/commands.json'))!.toString()).commands['command/shop-migrate'].digest).toBe(d.digest);

    // Rollback runs the down command and forgets the run (the record is as before: none).
    await run.rollback();
    const down = host.calls.filter((c) => c.file === 'systemd-run').at(-1)!;
    expect(down.args.slice(down.args.indexOf('--') + 1)).toEqual(['/srv/shop/bin/migrate', '--down']);
    expect(isLifecycleUnitOf(down.args.find((a) => a.startsWith('--unit='))!.slice('--unit='.length), 'shop')).toBe(true);
    expect(await host.readFile('/var/lib/hostkit/commands.json')).toBeUndefined();
    // The down command ran once: the journal says so, and a second restore of the run does not run it again.
    expect(run.journal.events.filter((e) => e.ev === 'down')).toEqual([expect.objectContaining({ id: change.id, ok: true })]);
    expect((await run.plan()).steps.map((st) => st.action)).not.toContain('run-down');

    // A failing command throws and is not recorded.
    host.onExec((c) => (c.file === 'systemd-run' ? { exitCode: 3, stdout: '', stderr: 'relation exists' } : undefined));
    await expect(commandDriver.apply(change, ctx)).rejects.toThrow(/migrate of shop failed.*exited 3: relation exists/);
    expect(await host.readFile('/var/lib/hostkit/commands.json')).toBeUndefined();
  });

  it("an after-start command asks the executor to settle first and runs once the run's restarted services are up; a before-start one does neither", async () => {
    expect(hasSettleFirst(commandDriver)).toBe(true);
    const after = { ...spec, phase: 'after-start' as const };
    for (const [s, waits] of [
      [after, true],
      [spec, false],
    ] as const) {
      const host = new FakeHost();
      const ctx = driverContext(host);
      let up = false;
      ctx.run.restarts.restarted(new Promise((resolve) => setTimeout(resolve, 50)).then(() => (up = true)));
      const change = commandDriver.plan({ resource: resource(s), desired: await desired(inputs, s), observed: undefined, orphan: false });
      expect(commandDriver.settleFirst(change)).toBe(waits);
      let ranWhenUp: boolean | undefined;
      host.onExec((c) => (c.file === 'systemd-run' ? ((ranWhenUp = up), undefined) : undefined));
      await commandDriver.apply(change, ctx);
      expect(ranWhenUp).toBe(waits);
    }
  });
});

// Records the options of every exec, which FakeHost leaves out of its calls.
class TimedHost extends FakeHost {
  readonly options: (ExecOptions | undefined)[] = [];
  override exec(file: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.options.push(options);
    return super.exec(file, args, options);
  }
}

// What systemd-run (not --quiet) prints around the command's own stderr.
function report(result: string, status: string, stderr = ''): string {
  return `Running as unit: hostkit-command-0123456789.service\n${stderr}Finished with result: ${result}\nMain processes terminated with: ${status}\nService runtime: 5.462s\n`;
}

describe('reconciler/drivers/command runCommand: timeouts', () => {
  const run = { argv: ['/srv/shop/bin/migrate', '--up'], user: 'shop', workingDirectory: '/srv/shop' };

  it('gives the unit its time limit, the kill grace and control-group kill, and systemd-run a later backstop', async () => {
    const host = new TimedHost();
    await runCommand(host, { ...run, timeoutMs: 3_000 });
    const call = host.calls.find((c) => c.file === 'systemd-run')!;
    expect(call.args).toEqual(
      expect.arrayContaining(['RuntimeMaxSec=3000ms', `TimeoutStopSec=${COMMAND_KILL_GRACE_MS}ms`, 'KillMode=control-group', '--wait', '--collect']),
    );
    expect(call.args).not.toContain('--quiet');
    expect(host.options[0]?.timeoutMs).toBe(3_000 + COMMAND_KILL_GRACE_MS + 15_000);
    await runCommand(host, run);
    expect(host.calls.at(-1)!.args).toContain(`RuntimeMaxSec=${COMMAND_TIMEOUT_MS}ms`);
  });

  it("keeps the command's exit code and stderr, without systemd-run's own lines", async () => {
    const host = new FakeHost();
    host.onExec((c) =>
      c.file === 'systemd-run' ? { exitCode: 3, stdout: 'out\n', stderr: report('exit-code', 'code=exited/status=3', 'relation exists\n') } : undefined,
    );
    expect(await runCommand(host, run)).toEqual({ exitCode: 3, stdout: 'out\n', stderr: 'relation exists\n' });
  });

  it.each([
    ['code=killed/status=KILL', /got SIGTERM, then SIGKILL after 5 s$/],
    ['code=killed/status=TERM', /got SIGTERM$/],
  ])('a unit stopped at its limit (%s) is a timeout naming the command, not an exit code', async (status, end) => {
    const host = new FakeHost();
    host.onExec((c) => (c.file === 'systemd-run' ? { exitCode: 1, stdout: '', stderr: report('timeout', status, 'migrating...\n') } : undefined));
    const error = await runCommand(host, { ...run, timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'COMMAND_TIMED_OUT',
      message: expect.stringMatching(/^\/srv\/shop\/bin\/migrate --up timed out after 2 s: its unit hostkit-command-[0-9a-f]{10}\.service got /),
      data: { timeoutMs: 2_000, killGraceMs: 5_000, stderr: 'migrating...\n' },
    });
    expect((error as Error).message).toMatch(end);
  });

  it('when systemd-run itself does not return in time, its unit is killed and stopped from outside', async () => {
    const host = new FakeHost();
    host.onExec((c) => {
      if (c.file === 'systemd-run') throw new HostKitError('EXEC_TIMED_OUT', 'systemd-run timed out', { retryable: true });
      if (c.file === 'systemctl' && c.args[0] === 'stop')
        return { exitCode: 5, stdout: '', stderr: `Failed to stop ${c.args[2]}: Unit ${c.args[2]} not loaded.\n` };
      return undefined;
    });
    const error = await runCommand(host, { ...run, timeoutMs: 1_000 }).catch((e: unknown) => e);
    const unit = host.calls
      .find((c) => c.file === 'systemd-run')!
      .args.find((a) => a.startsWith('--unit='))!
      .slice('--unit='.length);
    expect(host.calls.filter((c) => c.file === 'systemctl').map((c) => c.args)).toEqual([
      ['kill', '--signal=SIGKILL', '--', unit],
      ['stop', '--', unit],
    ]);
    expect(error).toMatchObject({
      code: 'COMMAND_TIMED_OUT',
      message: `/srv/shop/bin/migrate --up timed out: systemd-run did not return within 21 s, its unit ${unit} was killed`,
    });
  });

  it('a unit that could not be stopped is named in the error', async () => {
    const host = new FakeHost();
    host.onExec((c) => {
      if (c.file === 'systemd-run') throw new HostKitError('EXEC_TIMED_OUT', 'systemd-run timed out', { retryable: true });
      if (c.file === 'systemctl') return { exitCode: 1, stdout: '', stderr: 'Failed to connect to bus\n' };
      return undefined;
    });
    await expect(runCommand(host, { ...run, timeoutMs: 1_000 })).rejects.toThrow(
      /its unit hostkit-command-\w+\.service may still run: systemctl kill .*Failed to connect to bus/,
    );
  });

  it('a lifecycle command that times out fails its change naming the project and the command; a new timeout alone does not run it again', async () => {
    const host = new FakeHost();
    host.onExec((c) => (c.file === 'systemd-run' ? { exitCode: 1, stdout: '', stderr: report('timeout', 'code=killed/status=KILL') } : undefined));
    const ctx = driverContext(host);
    const timed = { ...spec, timeoutMs: 2_000 };
    const d = await desired(inputs, timed);
    expect(d.digest).toBe((await desired(inputs)).digest);
    const change = commandDriver.plan({ resource: resource(timed), desired: d, observed: undefined, orphan: false });
    await expect(commandDriver.apply(change, ctx)).rejects.toMatchObject({
      code: 'LIFECYCLE_COMMAND_FAILED',
      message: expect.stringMatching(/^lifecycle command migrate of shop failed: \/srv\/shop\/bin\/migrate --up timed out after 2 s: /),
      data: { timedOut: true },
    });
    expect(host.calls.find((c) => c.file === 'systemd-run')!.args).toContain('RuntimeMaxSec=2000ms');
    expect(await host.readFile('/var/lib/hostkit/commands.json')).toBeUndefined();
  });
});

describe('reconciler/drivers/command: the transient unit of a lifecycle command names its project, exactly', () => {
  it.each([
    ['hostkit-command-shop-0123456789.service', 'shop', true],
    ['hostkit-command-shop-api-0123456789.service', 'shop', false], // project shop-api's
    ['hostkit-command-shop-api-0123456789.service', 'shop-api', true],
    ['hostkit-command-0123456789.service', 'shop', false], // a health command: no project
    ['hostkit-command-shop-012345678.service', 'shop', false],
    ['hostkit-command-shop-0123456789a.service', 'shop', false],
    ['hostkit-command-shop-0123456789.timer', 'shop', false],
    ['hk-shop.service', 'shop', false],
  ])('%s is of %s: %s', (unit, project, expected) => {
    expect(isLifecycleUnitOf(unit, project)).toBe(expected);
  });

  it('the name has ten hex digits after the project, or after the prefix alone', () => {
    expect(commandUnitName('shop')).toMatch(/^hostkit-command-shop-[0-9a-f]{10}\.service$/);
    expect(commandUnitName()).toMatch(/^hostkit-command-[0-9a-f]{10}\.service$/);
    expect(isLifecycleUnitOf(commandUnitName('shop'), 'shop')).toBe(true);
  });
});

describe('reconciler/drivers/command operations', () => {
  const record = (digest: string) => ({ digest, at: '2026-01-01T00:00:00.000Z' });

  it.each<[string, { digest: string } | undefined, ReturnType<typeof record> | undefined, CommandOp[]]>([
    ['never ran: run', { digest: 'd1' }, undefined, [{ op: 'run' }]],
    ['its spec or inputs changed: run', { digest: 'd2' }, record('d1'), [{ op: 'run' }]],
    ['ran as it is: nothing', { digest: 'd1' }, record('d1'), []],
    ['removed from the manifests: its record forgotten', undefined, record('d1'), [{ op: 'forget' }]],
  ])('%s', (_title, desired, observed, ops) => {
    expect(commandDriver.plan({ resource: resource(), desired, observed, orphan: desired === undefined }).ops).toEqual(ops);
  });

  it('apply of `forget` drops the record and runs nothing', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    host.seedFile(commandStatePath(ctx.stateDirectory), JSON.stringify({ commands: { [resource().id]: record('d1') } }));
    const observed = (await commandDriver.observe([resource()], ctx)).get(resource().id);
    const change = commandDriver.plan({ resource: resource(), desired: undefined, observed, orphan: true });
    expect(change.ops).toEqual([{ op: 'forget' }]);
    await commandDriver.apply(change, ctx);
    expect(host.calls).toEqual([]);
    expect((await commandDriver.observe([resource()], ctx)).get(resource().id)).toBeUndefined();
  });

  it('apply of a change with no `run` runs nothing', async () => {
    const host = new FakeHost();
    const ctx = driverContext(host);
    const change = commandDriver.plan({ resource: resource(), desired: { digest: 'd1' }, observed: undefined, orphan: false });
    expect(change.ops).toEqual([{ op: 'run' }]);
    await commandDriver.apply({ ...change, ops: [] }, ctx);
    expect(host.calls).toEqual([]);
  });
});
