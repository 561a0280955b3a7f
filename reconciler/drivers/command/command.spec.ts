import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import type { Resource } from '../../core/resource.js';
import type { CommandSpec } from '../../core/specs.js';
import { FakeHost } from '../../hosts/fake.js';
import { commandDriver } from './index.js';

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

describe('reconciler/drivers/command', () => {
  const inputs = { '/etc/hostkit/env/shop.env': 'e1', '/srv/shop/config.json': 'c1' };

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
    const undo = await commandDriver.apply(change, ctx);
    const call = host.calls.find((c) => c.file === 'systemd-run')!;
    expect(call.args).toEqual(
      expect.arrayContaining(['--wait', '--pipe', '-p', 'User=shop', 'WorkingDirectory=/srv/shop', 'EnvironmentFile=-/etc/hostkit/env/shop.env']),
    );
    expect(call.args.slice(call.args.indexOf('--') + 1)).toEqual(['/srv/shop/bin/migrate', '--up']);
    expect(JSON.parse((await host.readFile('/var/lib/hostkit/commands.json'))!.toString()).commands['command/shop-migrate'].digest).toBe(d.digest);

    // Rollback runs the down command and forgets the run.
    await commandDriver.rollback(change, undo, ctx);
    const down = host.calls.filter((c) => c.file === 'systemd-run').at(-1)!;
    expect(down.args.slice(down.args.indexOf('--') + 1)).toEqual(['/srv/shop/bin/migrate', '--down']);
    expect(JSON.parse((await host.readFile('/var/lib/hostkit/commands.json'))!.toString()).commands).toEqual({});

    // A failing command throws and is not recorded.
    host.onExec((c) => (c.file === 'systemd-run' ? { exitCode: 3, stdout: '', stderr: 'relation exists' } : undefined));
    await expect(commandDriver.apply(change, ctx)).rejects.toThrow(/migrate of shop failed.*exited 3: relation exists/);
    expect(JSON.parse((await host.readFile('/var/lib/hostkit/commands.json'))!.toString()).commands).toEqual({});
  });
});
