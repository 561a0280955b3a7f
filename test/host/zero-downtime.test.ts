import { expect, it } from 'vitest';
import { isQuarantined } from '../../reconciler/apply/quarantine.js';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import { failures, HAMMER, parseHammer, zdtApp, type HammerEntry } from '../support/zdt-app.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { applied, appliedOk, eventually, HOST_NAME, killAfterStart, reconcile, reconcileChild, repo, unitProperty } from './reconcile.js';

// Zero-downtime deploys on a real host (drivers/systemd/deploy): a client hammers a
// site through nginx, with keep-alive connections and a long request always in
// flight, while new versions are deployed blue-green (none may fail, and after each
// switch every response comes from the new version), while a failing version is
// refused (none may fail, all from the old version), and, for comparison, while the
// same app is deployed with `strategy: restart` (its failed requests are printed).

const STATE = '/var/lib/hostkit';
const SRC = '/srv/zdt-src';
function project(name: string, ref: string, port: number, strategy: 'blue-green' | 'restart'): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  source:
    git: { url: "file://${SRC}", ref: "${ref}" }
  service:
    command: [/usr/bin/python3, app.py]
    port: ${port}
  deploy: { strategy: ${strategy} }
  workers:
    - name: jobs
      command: [/bin/sleep, infinity]
  domains:
    - name: ${name}.hk.test
      tls: none
  health:
    http: { path: /healthz, bodyContains: ok }
    timeout: 2s
    retries: 2
`;
}

// Through the engine as the agent runs it; `commit` names the config commit (a failure quarantines it).
async function apply(m: TestHost, files: Record<string, string>, commit?: string): Promise<ReconcileOutcome> {
  if (!commit) return reconcile(m, await repo(files));
  return reconcileHost({ repoDir: await repo(files), hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {}, commit });
}

/** A commit of the app at `version` on the host's repository; its id. */
async function commit(m: TestHost, version: string): Promise<string> {
  await m.host.writeFile(`${SRC}/app.py`, zdtApp(version), { uid: 0, gid: 0, mode: 0o644 });
  const git = (...args: string[]) => m.exec('git', ['-C', SRC, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', `app ${version}`);
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

async function get(m: TestHost, name: string): Promise<string> {
  return (await m.host.exec('curl', ['-s', '--max-time', '3', '--resolve', `${name}:80:127.0.0.1`, `http://${name}/`])).stdout.trim();
}

/** The load client, running inside the host until `stop()`, which returns its log. */
async function hammer(m: TestHost, site: string): Promise<{ stop: () => Promise<HammerEntry[]> }> {
  const dir = `/root/hammer-${site}`;
  await m.exec('rm', ['-rf', dir]);
  await m.host.mkdir(dir, { uid: 0, gid: 0, mode: 0o700 });
  await m.host.writeFile(`${dir}/hammer.py`, HAMMER, { uid: 0, gid: 0, mode: 0o644 });
  const unit = `zdt-hammer-${site.replace(/\./g, '-')}`;
  await m.exec('systemd-run', ['--quiet', `--unit=${unit}`, '--collect', '/usr/bin/python3', `${dir}/hammer.py`, site, `${dir}/stop`, `${dir}/log.json`]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return {
    stop: async () => {
      await m.host.writeFile(`${dir}/stop`, '', { uid: 0, gid: 0, mode: 0o644 });
      if (!(await eventually(async () => (await m.host.stat(`${dir}/log.json`)) !== undefined, 20_000))) throw new Error('the load client wrote no log');
      await new Promise((resolve) => setTimeout(resolve, 200));
      return parseHammer((await m.host.readFile(`${dir}/log.json`))!.toString('utf8'));
    },
  };
}

/** The instance nginx's upstream names for app (its state and working directory), and the other one's state. */
async function instances(m: TestHost): Promise<{ color?: string; active: string; directory: string; idle: string }> {
  const text = (await m.host.readFile('/etc/nginx/conf.d/hkdeploy-app.conf'))?.toString() ?? '';
  const color = /# HostKit deploy: (blue|green)/.exec(text)?.[1];
  const unit = (c: string) => `hk-app@${c}.service`;
  return {
    ...(color ? { color } : {}),
    active: color ? await unitProperty(m, unit(color), 'ActiveState') : 'none',
    directory: color ? await unitProperty(m, unit(color), 'WorkingDirectory') : '',
    idle: await unitProperty(m, unit(color === 'blue' ? 'green' : 'blue'), 'ActiveState'),
  };
}

const now = () => Date.now() / 1000;

/** Five deploys of `name` under load; each one's [version, started, finished] and the client's log. */
async function deployUnderLoad(
  m: TestHost,
  name: string,
  versions: { version: string; commit: string }[],
  files: (ref: string) => Record<string, string>,
): Promise<{ switches: { version: string; started: number; finished: number }[]; log: HammerEntry[] }> {
  const load = await hammer(m, `${name}.hk.test`);
  const switches = [];
  try {
    for (const v of versions) {
      const started = now();
      appliedOk(await apply(m, files(v.commit)));
      switches.push({ version: v.version, started, finished: now() });
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  } catch (cause) {
    await load.stop();
    throw cause;
  }
  const log = await load.stop();
  return { switches, log };
}

function summary(log: readonly HammerEntry[]): string {
  const failed = failures(log);
  return `${log.length} requests (${log.filter((e) => e.path === '/slow').length} long ones, ${log.filter((e) => e.retried).length} retried once on a new connection), ${failed.length} failed${failed.length > 0 ? `: ${JSON.stringify(failed.slice(0, 3).map((e) => ({ ...e, body: e.body.slice(0, 60) })))}` : ''}`;
}

describeHost('reconciler/drivers/systemd/deploy (blue-green deploys behind nginx) on a real host', () => {
  const machine = useHost();
  const commits: Record<string, string> = {};
  const VERSIONS = ['v1', 'v2', 'v3', 'v4', 'v5', 'v6'];

  it(
    'blue-green: 5 consecutive deploys under load lose no request, and after each switch every response is the new version',
    { timeout: 300_000 },
    async () => {
      const m = machine();
      await m.exec('git', ['init', '-q', '-b', 'main', SRC]);
      for (const v of [...VERSIONS, 'broken']) commits[v] = await commit(m, v);
      const files = (ref: string) => ({ 'projects/app.yaml': project('app', ref, 9401, 'blue-green') });
      appliedOk(await apply(m, files(commits.v1!)));
      expect(await get(m, 'app.hk.test')).toBe('v1');
      // The first deploy starts green, on the second port; nginx's upstream names it.
      expect(await unitProperty(m, 'hk-app@green.service', 'ActiveState')).toBe('active');
      expect((await m.host.readFile('/etc/nginx/conf.d/hkdeploy-app.conf'))?.toString()).toContain('server 127.0.0.1:9402;');

      const { switches, log } = await deployUnderLoad(
        m,
        'app',
        VERSIONS.slice(1).map((version) => ({ version, commit: commits[version]! })),
        files,
      );
      process.stdout.write(`[zero-downtime] blue-green, 5 deploys: ${summary(log)}\n`);
      expect(failures(log)).toEqual([]);
      expect(log.length).toBeGreaterThan(200);
      switches.forEach((s, i) => {
        // A long request was in flight while the deploy ran (across its switch).
        expect(log.some((e) => e.path === '/slow' && e.start < s.finished && e.end > s.started)).toBe(true);
        // Every request sent after the deploy returned (and before the next began) was answered by the new version.
        const next = switches[i + 1]?.started ?? Infinity;
        const after = log.filter((e) => e.start > s.finished && e.start < next);
        expect(after.length).toBeGreaterThan(0);
        expect(after.filter((e) => e.body !== s.version)).toEqual([]);
      });
      // The instance serving runs from its own release (not through current), the one current names; the other is stopped.
      const current = await m.host.readlink('/srv/app/current');
      expect(await instances(m)).toMatchObject({ active: 'active', directory: `/srv/app/${current}`, idle: 'inactive' });
      // The worker restarted in place (through current) after the last switch: after nginx's upstream was written.
      const switchedAt = Number((await m.exec('stat', ['-c', '%.9Y', '/etc/nginx/conf.d/hkdeploy-app.conf'])).stdout.trim());
      const entered = (
        await m.exec('systemctl', ['show', '--value', '--property=ActiveEnterTimestamp', '--timestamp=us+utc', 'hk-app-jobs.service'])
      ).stdout.trim();
      const workerStarted = Date.parse(entered.replace(/^\w+ (\S+) (\S+) UTC$/, '$1T$2Z')) / 1000;
      expect(workerStarted).toBeGreaterThan(switchedAt);
      expect(await unitProperty(m, 'hk-app-jobs.service', 'WorkingDirectory')).toBe('/srv/app/current');
      // A noop after: nothing to do.
      expect(appliedOk(await apply(m, files(commits.v6!))).status).toBe('no-changes');
    },
  );

  it(
    'blue-green: a failing new version is never switched to: no request fails, all from the old version, the commit is quarantined',
    { timeout: 300_000 },
    async () => {
      const m = machine();
      const files = (ref: string) => ({ 'projects/app.yaml': project('app', ref, 9401, 'blue-green') });
      const upstream = async () => (await m.host.readFile('/etc/nginx/conf.d/hkdeploy-app.conf'))!.toString();
      const before = await upstream();
      const load = await hammer(m, 'app.hk.test');
      const bad = 'b7'.padEnd(40, '0');
      let log: HammerEntry[];
      let outcome;
      // `current` switches with nginx: while the failing version is built and checked, it never names its release.
      const links = new Set<string>();
      let watching = true;
      const watch = (async () => {
        while (watching) links.add((await m.host.readlink('/srv/app/current')) ?? '(none)');
      })();
      try {
        outcome = applied(await apply(m, files(commits.broken!), bad));
        await new Promise((resolve) => setTimeout(resolve, 1000));
      } finally {
        watching = false;
        await watch;
        log = await load.stop();
      }
      expect([...links].filter((l) => l.includes(commits.broken!.slice(0, 12)))).toEqual([]);
      expect(links.size).toBe(1);
      process.stdout.write(`[zero-downtime] blue-green, a failing version: ${summary(log)}\n`);
      expect(outcome.status).toBe('rolled-back');
      if (outcome.status !== 'rolled-back') return;
      expect(outcome.failed.id).toBe('deploy/app');
      expect(outcome.failed.error).toContain('failed its health check');
      expect(failures(log)).toEqual([]);
      expect(log.filter((e) => e.body !== 'v6')).toEqual([]);
      expect(await upstream()).toBe(before);
      expect(await isQuarantined(m.host, STATE, bad)).toMatchObject({ commit: bad, projects: ['app'] });
      expect(await get(m, 'app.hk.test')).toBe('v6');
    },
  );

  it('restart (for comparison): the same 5 deploys under load; its failed requests are printed', { timeout: 300_000 }, async () => {
    const m = machine();
    const files = (ref: string) => ({
      'projects/app.yaml': project('app', commits.v6!, 9401, 'blue-green'),
      'projects/rs.yaml': project('rs', ref, 9411, 'restart'),
    });
    appliedOk(await apply(m, files(commits.v1!)));
    expect(await get(m, 'rs.hk.test')).toBe('v1');
    const { log } = await deployUnderLoad(
      m,
      'rs',
      VERSIONS.slice(1).map((version) => ({ version, commit: commits[version]! })),
      files,
    );
    process.stdout.write(`[zero-downtime] restart, 5 deploys: ${summary(log)}\n`);
    expect(log.length).toBeGreaterThan(0);
  });
  it(
    'kill -9 at any moment of a blue-green deploy: nginx always points at a running instance, the next run converges, and no request fails',
    { timeout: 400_000 },
    async () => {
      const m = machine();
      const files = (ref: string) => ({
        'projects/app.yaml': project('app', ref, 9401, 'blue-green'),
        'projects/rs.yaml': project('rs', commits.v6!, 9411, 'restart'),
      });
      const load = await hammer(m, 'app.hk.test');
      const seen: string[] = [];
      let log: HammerEntry[];
      try {
        let ref = commits.v5!;
        // From the start of the apply: the new instance starting, its check, the switch, the drain, the stop.
        for (const delay of [100, 400, 800, 1200, 1800, 2500, 4000, 6000]) {
          await killAfterStart(reconcileChild(m, await repo(files(ref))), delay);
          const now = await instances(m);
          seen.push(`${delay} ms: ${now.color} ${now.active}`);
          expect(now.active, `nginx's instance after a kill at ${delay} ms`).toBe('active');
          ref = ref === commits.v5 ? commits.v6! : commits.v5!;
        }
        appliedOk(await apply(m, files(commits.v6!)));
      } finally {
        log = await load.stop();
      }
      process.stdout.write(`[zero-downtime] kill -9 at 8 moments of a deploy, then a run: ${summary(log)}; serving after each kill: ${seen.join(', ')}\n`);
      expect(failures(log)).toEqual([]);
      expect(await get(m, 'app.hk.test')).toBe('v6');
      expect(await instances(m)).toMatchObject({ active: 'active', idle: 'inactive' });
      expect(appliedOk(await apply(m, files(commits.v6!))).status).toBe('no-changes');
    },
  );
  it(
    'hostkit rollback --last of a blue-green deploy serves the previous version again, from its own release, with no failed request',
    { timeout: 300_000 },
    async () => {
      const m = machine();
      const files = (ref: string) => ({
        'projects/app.yaml': project('app', ref, 9401, 'blue-green'),
        'projects/rs.yaml': project('rs', commits.v6!, 9411, 'restart'),
      });
      const v6 = await m.host.readlink('/srv/app/current');
      appliedOk(await apply(m, files(commits.v5!)));
      expect(await get(m, 'app.hk.test')).toBe('v5');
      const load = await hammer(m, 'app.hk.test');
      let log: HammerEntry[];
      try {
        const done = await rollbackRun(await findRun(m.host, STATE, { last: true }), { dryRun: false, log: silentLogger() });
        expect(done.result?.errors ?? []).toEqual([]);
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        log = await load.stop();
      }
      process.stdout.write(`[zero-downtime] rollback --last of a blue-green deploy: ${summary(log)}\n`);
      expect(failures(log)).toEqual([]);
      expect(await get(m, 'app.hk.test')).toBe('v6');
      expect(await m.host.readlink('/srv/app/current')).toBe(v6);
      expect(await instances(m)).toMatchObject({ active: 'active', directory: `/srv/app/${v6}`, idle: 'inactive' });
    },
  );
  it('a before-start command of a blue-green project runs in the release being deployed, before its instance starts', { timeout: 300_000 }, async () => {
    const m = machine();
    const v8 = await commit(m, 'v8');
    // The migration finds the new release's code in its working directory (current still names the serving one).
    const migrate = `  lifecycle:\n    - name: migrate\n      phase: before-start\n      command: [/bin/grep, -q, "v8", app.py]\n`;
    const before = await m.host.readlink('/srv/app/current');
    const result = appliedOk(
      await apply(m, {
        'projects/app.yaml': project('app', v8, 9401, 'blue-green') + migrate,
        'projects/rs.yaml': project('rs', commits.v6!, 9411, 'restart'),
      }),
    );
    const order = result.steps.map((s) => s.id);
    expect(order.indexOf('command/app-migrate')).toBeGreaterThan(-1);
    expect(order.indexOf('command/app-migrate')).toBeLessThan(order.indexOf('deploy/app'));
    expect(await get(m, 'app.hk.test')).toBe('v8');
    expect(await m.host.readlink('/srv/app/current')).not.toBe(before);
  });
});
