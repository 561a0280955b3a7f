import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../core/log.js';
import type { Resource } from '../../../core/resource.js';
import { FakeHost } from '../../../hosts/fake.js';
import type { UnitSpec } from '../spec.js';
import { deployDriver, renderInstance, type DesiredDeploy, type ObservedDeploy } from './index.js';
import { renderUpstream, upstreamColor } from './layout.js';
import type { DeploySpec } from './spec.js';

const service: UnitSpec = {
  unit: 'hk-app.service',
  description: 'HostKit project app',
  command: ['/usr/bin/python3', 'app.py'],
  user: 'app',
  group: 'app',
  workingDirectory: '/srv/app/current',
  environmentFile: '/etc/hostkit/env/app.env',
  environment: {},
  restart: 'on-failure',
  type: 'simple',
  limits: {},
  isolation: { profile: 'web-service', writablePaths: ['/srv/app'], network: 'any' },
  reads: [],
};

const spec: DeploySpec = {
  project: 'app',
  service,
  ports: { blue: 9401, green: 9402 },
  address: '127.0.0.1',
  health: { http: { path: '/healthz', expectStatus: 200 }, timeoutMs: 1000, retries: 0 },
  drainMs: 5000,
  releases: true,
};

const resource: Resource<DeploySpec> = {
  id: 'deploy/app',
  kind: 'deploy',
  name: 'app',
  spec,
  dependsOn: [],
  origin: { file: 'projects/app.yaml', line: 3 },
  project: 'app',
};
const desired: DesiredDeploy = { version: 'a'.repeat(16), text: '# HostKit inputs: /etc/hostkit/env/app.env hmac:0123\n' };
const V_OLD = 'b'.repeat(16);

const observed = (o: Partial<ObservedDeploy>): ObservedDeploy => ({ versions: {}, running: { blue: false, green: false }, ...o });

describe('reconciler/drivers/systemd/deploy', () => {
  it.each([
    [
      'nothing yet: green starts, is checked, and nginx switches to it',
      undefined,
      ['start hk-app@green.service', 'check hk-app@green.service', 'switch hk-app@green.service'],
    ],
    [
      'a new version while blue serves: green starts, is checked, switched to, blue drains and stops',
      observed({ upstream: 'blue', versions: { blue: V_OLD }, running: { blue: true, green: false } }),
      ['start hk-app@green.service', 'check hk-app@green.service', 'switch hk-app@green.service', 'drain', 'stop hk-app@blue.service'],
    ],
    [
      'the version serving, the other stopped: nothing',
      observed({ upstream: 'green', versions: { green: 'a'.repeat(16), blue: V_OLD }, running: { blue: false, green: true } }),
      [],
    ],
    [
      'the version serving, the idle one left running by a crash: it stops',
      observed({ upstream: 'green', versions: { green: 'a'.repeat(16), blue: V_OLD }, running: { blue: true, green: true } }),
      ['stop hk-app@blue.service'],
    ],
    [
      'the instance serving stopped (by hand): the other one starts on the version and takes over',
      observed({ upstream: 'green', versions: { green: 'a'.repeat(16) }, running: { blue: false, green: false } }),
      ['start hk-app@blue.service', 'check hk-app@blue.service', 'switch hk-app@blue.service', 'stop hk-app@green.service'],
    ],
  ])('%s', (_title, seen, ops) => {
    const change = deployDriver.plan({ resource, desired, observed: seen, orphan: false });
    expect(change.ops.map((o) => ('instance' in o ? `${o.op} ${o.instance}` : o.op))).toEqual(ops);
    expect(change.action).toBe(ops.length === 0 ? 'noop' : seen ? 'update' : 'create');
  });

  it('an orphan with instances on the host: both removed; none: nothing', () => {
    expect(deployDriver.plan({ resource, desired: undefined, observed: observed({ upstream: 'blue' }), orphan: true }).ops).toEqual([{ op: 'remove' }]);
    expect(deployDriver.plan({ resource, desired: undefined, observed: undefined, orphan: true }).action).toBe('noop');
  });

  it('an instance runs from its own release with its own PORT, marked with the version and its inputs', () => {
    const text = renderInstance(spec, desired, 'green', '/srv/app/releases/R1');
    expect(text).toContain('WorkingDirectory=/srv/app/releases/R1\n');
    expect(text).toContain('Environment="PORT=9402"\n');
    expect(text).toContain(`# HostKit deploy version: ${'a'.repeat(16)}\n`);
    expect(text).toContain('# HostKit inputs: /etc/hostkit/env/app.env hmac:0123\n');
    expect(text).toContain('EnvironmentFile=/etc/hostkit/env/app.env\n');
  });

  it('the upstream file names the instance it points at', () => {
    const text = renderUpstream('my-app', 'blue', '127.0.0.1', 9401);
    expect(text).toContain('upstream hostkit_deploy_my_app {\n    server 127.0.0.1:9401;\n}');
    expect(upstreamColor(text)).toBe('blue');
    expect(upstreamColor('upstream x {}')).toBeUndefined();
  });

  it('the restore starts the instance nginx pointed at before reloading nginx, and only then stops the new one', async () => {
    const host = new FakeHost();
    const calls: string[] = [];
    host.onExec((call) => {
      calls.push([call.file, ...call.args].join(' '));
      if (call.file === 'systemctl' && call.args[0] === 'show') return { exitCode: 0, stdout: 'Id=hk-app@blue.service\nActiveState=inactive\n', stderr: '' };
      return { exitCode: 0, stdout: '', stderr: '' };
    });
    host.onConnect(() => Promise.reject(new Error('refused')));
    const after = deployDriver.restore.after!;
    const record = {
      project: 'app',
      upstream: 'blue',
      running: { blue: false, green: false },
      ports: spec.ports,
      address: '127.0.0.1',
      health: { timeoutMs: 10, retries: -1 },
    };
    const plan = await after.plan(
      [],
      [{ id: 'deploy/app', begun: true, applied: true, ran: false, finished: false, records: [{ key: 'deploy', data: record }] }],
      host,
      () => Promise.resolve(undefined),
    );
    expect(plan).toBeDefined();
    await after.apply(plan, { host, stateDirectory: '/var/lib/hostkit', log: silentLogger(), ran: () => Promise.resolve() });
    const order = [
      'systemctl restart hk-app@blue.service',
      'nginx -t',
      'systemctl reload-or-restart nginx.service',
      'systemctl disable --now --quiet hk-app@green.service',
    ];
    expect(order.map((c) => calls.indexOf(c))).toEqual([...order.map((c) => calls.indexOf(c))].sort((a, b) => a - b));
    expect(order.every((c) => calls.includes(c))).toBe(true);
  });
});
