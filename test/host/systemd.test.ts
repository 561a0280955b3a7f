import path from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { describeHost, useHost } from './harness.js';
import { applied, appliedOk, eventually, httpStatus, invocationIds, reconcile, repo, service, unitProperty } from './reconcile.js';

const WEB = 'hk-web.service';
const API = 'hk-api.service';

function projects(webEnv: string, extra: Record<string, string> = {}) {
  return {
    'projects/web.yaml': service('web', 9101, `    environment:\n      GREETING: ${webEnv}\n    secrets:\n      TOKEN: { env: HK_TOKEN }\n`),
    'projects/api.yaml': service(
      'api',
      9102,
      '    environment:\n      MODE: live\n    isolation:\n      profile: strict\n      network: loopback-only\n    limits:\n      memoryMax: 128M\n      cpuQuota: 50%\n      tasksMax: 32\n' +
        '  files:\n    - name: settings.json\n      content: |\n        {"mode": "live"}\n',
    ),
    ...extra,
  };
}
const env = { HK_TOKEN: 'tok-4f9a2c-secret' };

describeHost('reconciler/drivers (account, directory, envfile, systemd) on a real host', () => {
  const machine = useHost();

  it('applies projects: users, directories, env files and services exist, and the services answer', async () => {
    const result = applied(await reconcile(machine(), await repo(projects('hello')), { env }));
    expect(result.status).toBe('applied');
    const m = machine();
    expect((await m.exec('getent', ['passwd', 'web'])).stdout).toMatch(/^web:x:\d+:\d+::\/srv\/web:\/usr\/sbin\/nologin$/m);
    expect((await m.exec('stat', ['-c', '%U:%G %a', '/srv/web'])).stdout.trim()).toBe('web:web 750');
    expect((await m.exec('stat', ['-c', '%U:%G %a', '/etc/hostkit/env/web.env'])).stdout.trim()).toBe('root:web 640');
    expect((await m.exec('cat', ['/etc/hostkit/env/web.env'])).stdout).toContain('TOKEN="tok-4f9a2c-secret"');
    expect((await m.exec('stat', ['-c', '%U:%G %a', '/srv/api/settings.json'])).stdout.trim()).toBe('root:api 640');
    expect((await m.exec('cat', ['/srv/api/settings.json'])).stdout).toBe('{"mode": "live"}\n');
    expect(await unitProperty(m, WEB, 'ActiveState')).toBe('active');
    expect(await unitProperty(m, WEB, 'UnitFileState')).toBe('enabled');
    expect(await httpStatus(m, 'http://127.0.0.1:9101/')).toBe('200');
    expect(await httpStatus(m, 'http://127.0.0.1:9102/')).toBe('200');
    // The strict profile, loopback-only network and limits are in force on the running unit.
    expect(await unitProperty(m, API, 'MemoryMax')).toBe(String(128 * 1024 * 1024));
    expect(await unitProperty(m, API, 'CPUQuotaPerSecUSec')).toBe('500ms');
    expect(await unitProperty(m, API, 'TasksMax')).toBe('32');
    expect(await unitProperty(m, API, 'IPAddressDeny')).toMatch(/0\.0\.0\.0\/0/);
    expect(await unitProperty(m, API, 'PrivateDevices')).toBe('yes');
    expect(await unitProperty(m, API, 'ProtectSystem')).toBe('strict');
    // The service sees its environment (the running process, not only the file).
    const pid = await unitProperty(m, WEB, 'MainPID');
    expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0')).toEqual(
      expect.arrayContaining(['GREETING=hello', 'PORT=9101', 'BIND=127.0.0.1']),
    );
  });

  it('applying the same manifests again changes nothing and restarts nothing', async () => {
    const before = await invocationIds(machine(), [WEB, API]);
    const outcome = await reconcile(machine(), await repo(projects('hello')), { env });
    expect(applied(outcome).status).toBe('no-changes');
    if (outcome.stage === 'applied') expect(outcome.planned.plan.summary).toMatchObject({ create: 0, update: 0, delete: 0, replace: 0 });
    expect(await invocationIds(machine(), [WEB, API])).toEqual(before);
  });

  it('changing only one env file restarts exactly that service, once', async () => {
    const m = machine();
    const before = await invocationIds(m, [WEB, API]);
    const startsBefore = (await m.exec('journalctl', ['--unit', WEB, '--output', 'cat', '--no-pager'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('Started ')).length;
    const outcome = await reconcile(m, await repo(projects('bonjour')), { env });
    expect(applied(outcome).status).toBe('applied');
    if (outcome.stage === 'applied') {
      expect(outcome.result.steps.map((s) => s.id)).toEqual(['envfile/etc/hostkit/env/web.env', `unit/${WEB}`]);
    }
    const after = await invocationIds(m, [WEB, API]);
    expect(after[WEB]).not.toBe(before[WEB]);
    expect(after[API]).toBe(before[API]);
    const startsAfter = (await m.exec('journalctl', ['--unit', WEB, '--output', 'cat', '--no-pager'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('Started ')).length;
    expect(startsAfter - startsBefore).toBe(1);
    const pid = await unitProperty(m, WEB, 'MainPID');
    expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0')).toContain('GREETING=bonjour');
  });

  it('a unit that fails systemd-analyze verify is not installed; the previous unit stays and keeps running', async () => {
    const m = machine();
    const unitBefore = await m.host.readFile(`/etc/systemd/system/${WEB}`);
    const idBefore = await unitProperty(m, WEB, 'InvocationID');
    const broken = projects('bonjour', {
      'projects/web.yaml': projects('bonjour')['projects/web.yaml'].replace('/usr/bin/python3', '/usr/bin/no-such-python'),
    });
    const result = applied(await reconcile(m, await repo(broken), { env }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe(`unit/${WEB}`);
    expect(result.failed.error).toContain('systemd-analyze verify rejected hk-web.service');
    expect(result.failed.error).toContain('/usr/bin/no-such-python');
    expect(await m.host.readFile(`/etc/systemd/system/${WEB}`)).toEqual(unitBefore);
    expect(await unitProperty(m, WEB, 'InvocationID')).toBe(idBefore);
    expect(await httpStatus(m, 'http://127.0.0.1:9101/')).toBe('200');
  });

  it('a unit that fails to start is reported with its journal, and the previous unit is back and running', async () => {
    const m = machine();
    const unitBefore = await m.host.readFile(`/etc/systemd/system/${WEB}`);
    // Binds the port api already holds: starts, then dies with EADDRINUSE.
    const clash = projects('bonjour', {
      'projects/web.yaml': projects('bonjour')['projects/web.yaml'].replace('http.server, "9101"', 'http.server, "9102"'),
    });
    const result = applied(await reconcile(m, await repo(clash), { env }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe(`unit/${WEB}`);
    expect(result.failed.error).toMatch(/not active/);
    expect(result.failed.error).toMatch(/Address already in use/);
    expect(await m.host.readFile(`/etc/systemd/system/${WEB}`)).toEqual(unitBefore);
    expect(await eventually(async () => (await httpStatus(m, 'http://127.0.0.1:9101/')) === '200', 10_000)).toBe(true);
    expect(await unitProperty(m, WEB, 'NeedDaemonReload')).toBe('no');
  });

  it('a new project whose service fails leaves nothing behind: no user, directory, env file or unit', async () => {
    const m = machine();
    const before = await invocationIds(m, [WEB, API]);
    const failing = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: doomed
spec:
  placement:
    hosts: [test-host]
  runtime: binary
  service:
    command: [/usr/bin/false]
    environment:
      MODE: doomed
`;
    const result = applied(await reconcile(m, await repo(projects('bonjour', { 'projects/doomed.yaml': failing })), { env }));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('unit/hk-doomed.service');
    expect(result.rollbackErrors).toEqual([]);
    expect((await m.host.exec('getent', ['passwd', 'doomed'])).exitCode).toBe(2);
    expect((await m.host.exec('getent', ['group', 'doomed'])).exitCode).toBe(2);
    expect(await m.host.stat('/srv/doomed')).toBeUndefined();
    expect(await m.host.stat('/etc/hostkit/env/doomed.env')).toBeUndefined();
    expect(await m.host.stat('/etc/systemd/system/hk-doomed.service')).toBeUndefined();
    expect(await m.host.stat('/etc/systemd/system/multi-user.target.wants/hk-doomed.service')).toBeUndefined();
    expect(await unitProperty(m, 'hk-doomed.service', 'LoadState')).toBe('not-found');
    expect(await invocationIds(m, [WEB, API])).toEqual(before);
  });

  it('a run killed after writing a unit and before restarting it: the next run restarts it', async () => {
    const m = machine();
    const idBefore = await unitProperty(m, WEB, 'InvocationID');
    const repoDir = await repo(projects('hola'));
    const child = execa(
      'node',
      [path.resolve('dist/test/support/reconcile-child.js'), repoDir, 'test-host', String(m.leaderPid), m.machine, 'before-daemon-reload'],
      {
        env: { ...env },
        reject: false,
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('stopped before daemon-reload')) resolve();
      });
      void child.then((r) => reject(new Error(`the child ended before the kill point: ${r.stdout} ${r.stderr}`)));
    });
    child.kill('SIGKILL');
    expect((await child).signal).toBe('SIGKILL');
    // Killed: the new unit is on disk, the service still runs the old process.
    expect((await m.host.readFile(`/etc/systemd/system/${WEB}`))!.toString()).not.toEqual('');
    expect(await unitProperty(m, WEB, 'InvocationID')).toBe(idBefore);
    expect((await m.host.readFile('/var/lib/hostkit/systemd-pending.json'))!.toString()).toContain(WEB);

    const plan = await reconcile(m, repoDir, { env, dryRun: true });
    expect(plan.stage).toBe('planned');
    if (plan.stage === 'planned') {
      const web = plan.planned.plan.changes.find((c) => c.id === `unit/${WEB}`)!;
      expect(web.action).toBe('update');
      expect(web.fields.map((f) => f.field)).toContain('/restart');
    }
    expect(appliedOk(await reconcile(m, repoDir, { env })).status).toBe('applied');
    expect(await unitProperty(m, WEB, 'InvocationID')).not.toBe(idBefore);
    const pid = await unitProperty(m, WEB, 'MainPID');
    expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0')).toContain('GREETING=hola');
    expect((await m.host.readFile('/var/lib/hostkit/systemd-pending.json'))!.toString()).not.toContain(WEB);
  });

  it('a service stopped by hand is drift in the next dry run, and the next apply starts it', async () => {
    const m = machine();
    await m.exec('systemctl', ['stop', API]);
    const repoDir = await repo(projects('hola'));
    const plan = await reconcile(m, repoDir, { env, dryRun: true });
    expect(plan.stage).toBe('planned');
    if (plan.stage !== 'planned') return;
    const api = plan.planned.plan.changes.find((c) => c.id === `unit/${API}`)!;
    expect(api.action).toBe('update');
    expect(api.fields).toEqual([{ field: '/state', before: 'inactive (dead)', after: 'active' }]);
    expect(appliedOk(await reconcile(m, repoDir, { env })).status).toBe('applied');
    expect(await unitProperty(m, API, 'ActiveState')).toBe('active');
  });

  it('a drop-in added by hand to an owned unit is drift, and the next apply removes it and restarts the service', async () => {
    const m = machine();
    await m.host.mkdir('/etc/systemd/system/hk-web.service.d', { uid: 0, gid: 0, mode: 0o755 });
    await m.host.writeFile('/etc/systemd/system/hk-web.service.d/override.conf', '[Service]\nEnvironment=INJECTED=by-hand\n', { uid: 0, gid: 0, mode: 0o644 });
    await m.exec('systemctl', ['daemon-reload']);
    await m.exec('systemctl', ['restart', WEB]);
    expect(await unitProperty(m, WEB, 'Environment')).toContain('INJECTED=by-hand');
    const idBefore = await unitProperty(m, WEB, 'InvocationID');
    const repoDir = await repo(projects('hola'));
    const plan = await reconcile(m, repoDir, { env, dryRun: true });
    if (plan.stage !== 'planned') throw new Error(`expected a plan, got ${plan.stage}`);
    expect(plan.planned.plan.changes.find((c) => c.id === `unit/${WEB}`)!.fields).toEqual([
      { field: '/dropIns', before: ['hk-web.service.d/override.conf'], after: [] },
    ]);
    expect(appliedOk(await reconcile(m, repoDir, { env })).status).toBe('applied');
    expect(await m.host.stat('/etc/systemd/system/hk-web.service.d/override.conf')).toBeUndefined();
    expect(await unitProperty(m, WEB, 'Environment')).not.toContain('INJECTED');
    expect(await unitProperty(m, WEB, 'DropInPaths')).toBe('');
    expect(await unitProperty(m, WEB, 'InvocationID')).not.toBe(idBefore);
    expect(await httpStatus(m, 'http://127.0.0.1:9101/')).toBe('200');
  });

  it('a timer from a cron expression fires and its service runs', async () => {
    const m = machine();
    const job = `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: job
spec:
  placement:
    hosts: [test-host]
  runtime: binary
  timers:
    - name: tick
      schedule: "* * * * *"
      command: [/usr/bin/touch, /srv/job/ran]
    - name: either
      schedule: "0 0 1 * 0-3"
      command: [/usr/bin/true]
`;
    const result = applied(await reconcile(m, await repo(projects('hola', { 'projects/job.yaml': job })), { env }));
    expect(result.status).toBe('applied');
    expect(await unitProperty(m, 'hk-job-tick.timer', 'ActiveState')).toBe('active');
    expect((await m.exec('cat', ['/etc/systemd/system/hk-job-tick.timer'])).stdout).toContain('OnCalendar=*-*-* *:*:00\n');
    // cron's day 1 OR Sunday to Wednesday: two expressions, both taken by systemd (Sun..Wed would be refused).
    expect((await m.exec('cat', ['/etc/systemd/system/hk-job-either.timer'])).stdout).toContain(
      'OnCalendar=Mon..Wed,Sun *-*-* 00:00:00\nOnCalendar=*-*-01 00:00:00\n',
    );
    expect(await unitProperty(m, 'hk-job-either.timer', 'ActiveState')).toBe('active');
    expect((await unitProperty(m, 'hk-job-either.timer', 'TimersCalendar')).match(/OnCalendar=/g)).toHaveLength(2);
    // Every minute, on the minute: wait for the next one.
    expect(await eventually(async () => (await m.host.stat('/srv/job/ran')) !== undefined, 75_000, 1000)).toBe(true);
    expect(await unitProperty(m, 'hk-job-tick.service', 'Result')).toBe('success');
    expect((await m.exec('stat', ['-c', '%U', '/srv/job/ran'])).stdout.trim()).toBe('job');
  }, 120_000);

  it('a project removed from the repository: its units are stopped, disabled and removed; its user and data are kept', async () => {
    const m = machine();
    // A unit HostKit did not create, even with HostKit's prefix, is never touched.
    const foreign = '[Service]\nExecStart=/usr/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n';
    await m.host.writeFile('/etc/systemd/system/hk-foreign.service', foreign, { uid: 0, gid: 0, mode: 0o644 });
    await m.exec('systemctl', ['daemon-reload']);
    await m.exec('systemctl', ['start', 'hk-foreign.service']);
    const outcome = await reconcile(m, await repo({ 'projects/web.yaml': projects('hola')['projects/web.yaml'] }), { env });
    const result = applied(outcome);
    expect(result.status).toBe('applied');
    if (outcome.stage !== 'applied') return;
    const byId = new Map(outcome.planned.plan.changes.map((c) => [c.id, c]));
    expect(byId.get(`unit/${API}`)!.action).toBe('delete');
    expect(byId.get('account/api')).toMatchObject({ action: 'noop', orphan: true });
    expect(byId.get('directory/srv/api')).toMatchObject({ action: 'noop', orphan: true });
    expect(await m.host.stat(`/etc/systemd/system/${API}`)).toBeUndefined();
    expect(await unitProperty(m, API, 'LoadState')).toBe('not-found');
    expect(await httpStatus(m, 'http://127.0.0.1:9102/')).not.toBe('200');
    expect((await m.exec('getent', ['passwd', 'api'])).stdout).toContain('api:');
    expect(await unitProperty(m, WEB, 'ActiveState')).toBe('active');
    expect((await m.host.readFile('/etc/systemd/system/hk-foreign.service'))!.toString()).toBe(foreign);
    expect(await unitProperty(m, 'hk-foreign.service', 'ActiveState')).toBe('active');
  });

  it('environment values, arguments and a description reach systemd and the process byte for byte', async () => {
    const m = machine();
    // $ and $$ (no expansion), % specifiers, both quotes, backslashes (one trailing), spaces and a tab.
    const value = 'p$HOME $$x ${USER} %n %% "dq" \'sq\' a\\b\\\\c\tend\\';
    const yaml = JSON.stringify(value);
    const raw =
      service('raw', 9103, `    environment:\n      RAW: ${yaml}\n`) +
      '  workers:\n' +
      '    - name: jobs\n' +
      `      command: [/usr/bin/python3, -c, "import time; time.sleep(100000)", ${yaml}]\n` +
      // Another name: the env file (RAW) would override Environment= (systemd reads EnvironmentFile= last).
      `      environment:\n        WORKER_RAW: ${yaml}\n`;
    const unit = [
      'apiVersion: hostkit.dev/v1',
      'kind: Unit',
      'metadata:',
      '  name: rawunit',
      `  description: ${JSON.stringify('Raw %n 100% of it \\')}`,
      'spec:',
      '  placement:',
      '    hosts: [test-host]',
      '  command: [/usr/bin/sleep, infinity]',
      '',
    ].join('\n');
    const result = applied(await reconcile(m, await repo({ ...projects('hello'), 'projects/raw.yaml': raw, 'hosts/rawunit.yaml': unit }), { env }));
    expect(result.status).toBe('applied');
    const environ = async (u: string) => {
      const pid = await unitProperty(m, u, 'MainPID');
      return (await m.host.readFile(`/proc/${pid}/environ`))!.toString('utf8').split('\0');
    };
    // The service reads RAW from its env file, the worker from Environment=.
    expect(await environ('hk-raw.service')).toContain(`RAW=${value}`);
    expect(await environ('hk-raw-jobs.service')).toContain(`WORKER_RAW=${value}`);
    const pid = await unitProperty(m, 'hk-raw-jobs.service', 'MainPID');
    expect((await m.host.readFile(`/proc/${pid}/cmdline`))!.toString('utf8').split('\0')).toEqual(
      expect.arrayContaining(['/usr/bin/python3', '-c', 'import time; time.sleep(100000)', value]),
    );
    // % stays literal and the trailing backslash does not swallow the next line (After= is still read).
    expect(await unitProperty(m, 'hk-rawunit.service', 'Description')).toBe('Raw %n 100% of it');
    expect(await unitProperty(m, 'hk-rawunit.service', 'After')).toContain('network-online.target');
    // And nothing changes on a second apply.
    const again = await reconcile(m, await repo({ ...projects('hello'), 'projects/raw.yaml': raw, 'hosts/rawunit.yaml': unit }), { env });
    expect(applied(again).status).toBe('no-changes');
  });
});
