import { expect, it } from 'vitest';
import type { UnitsAfterRestore } from '../../reconciler/drivers/systemd/restore.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { listRuns } from '../../reconciler/apply/journal.js';
import { isPaused, isQuarantined, resume } from '../../reconciler/apply/quarantine.js';
import { findRun, rollbackRun } from '../../reconciler/apply/rollback.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import { writeRepo } from '../support/fixtures.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_NAME, unitProperty } from './reconcile.js';

// Safe apply on a real host: health checks with rollback and quarantine, down
// plans (hostkit rollback), lifecycle commands around the service restart, and
// the deploy-loop pause.

const STATE = '/var/lib/hostkit';
const UNIT = '/etc/systemd/system/hk-web.service';
const ENV = '/etc/hostkit/env/web.env';
const SITE = '/etc/nginx/conf.d/hostkit-web.hk.test.conf';

function hostYaml(deploy = ''): string {
  return `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: ${STATE}
${deploy}`;
}

/** A project serving its working directory (or `directory`), with a version file and an HTTP health check on it. */
function web(version: string, options: { directory?: string; lifecycle?: string; name?: string; port?: number } = {}): string {
  const name = options.name ?? 'web';
  const port = options.port ?? 9201;
  // Served through nginx as NAME.hk.test (the health check goes through it too).
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: ${name}
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "${port}", --bind, 127.0.0.1, --directory, ${options.directory ?? `/srv/${name}`}]
    port: ${port}
    environment:
      VERSION: ${version}
  files:
    - name: version.txt
      content: "${version}\\n"
  domains:
    - name: ${name}.hk.test
      tls: none
  health:
    http:
      path: /version.txt
      bodyContains: ${version}
    timeout: 2s
    retries: 2
${options.lifecycle ?? ''}`;
}

let commits = 0;
function commitId(): string {
  commits++;
  return commits.toString(16).padStart(40, 'c');
}

async function apply(m: TestHost, files: Record<string, string>, commit: string, deploy = ''): Promise<ReconcileOutcome> {
  const repoDir = await writeRepo({ 'hosts/test-host.yaml': hostYaml(deploy), ...files });
  return reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {}, commit });
}

function result(outcome: ReconcileOutcome) {
  if (outcome.stage !== 'applied')
    throw new Error(
      `expected an apply, got ${outcome.stage}: ${JSON.stringify(outcome.stage === 'planned' ? outcome.planned.plan.diagnostics : outcome.stage === 'held' ? outcome.hold : outcome.repo.diagnostics).slice(0, 2000)}`,
    );
  return outcome.result;
}

/** The body nginx serves for NAME.hk.test at `p`. */
async function site(m: TestHost, name: string, p: string): Promise<string> {
  const get = async () =>
    (await m.host.exec('curl', ['-s', '--max-time', '3', '--resolve', `${name}.hk.test:80:127.0.0.1`, `http://${name}.hk.test${p}`])).stdout;
  await eventually(async () => (await get()).endsWith('\n'), 10_000);
  return get();
}

/** The body served at `p`, waiting (up to 10 s) for a just-restarted service to listen. */
async function body(m: TestHost, port: number, p: string): Promise<string> {
  const get = async () => (await m.host.exec('curl', ['-s', '--max-time', '3', `http://127.0.0.1:${port}${p}`])).stdout;
  await eventually(async () => (await get()) !== '', 10_000);
  return get();
}

async function snapshot(m: TestHost, paths: readonly string[]): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const p of paths) out[p] = (await m.host.readFile(p))?.toString('utf8');
  return out;
}

describeHost('reconciler/apply (journal, health, rollback, quarantine) on a real host', () => {
  const machine = useHost();
  const files = [UNIT, ENV, SITE, '/srv/web/version.txt'];

  it('a commit whose new service fails its health check (through nginx) is rolled back: previous unit, site, env file and files, serving the previous version; the commit is quarantined', async () => {
    const m = machine();
    const good = commitId();
    const first = result(await apply(m, { 'projects/web.yaml': web('v1') }, good));
    expect(first.status).toBe('applied');
    expect(first.health).toEqual([{ project: 'web', ok: true, url: 'http://web.hk.test/version.txt (via 127.0.0.1:80)' }]);
    expect(await body(m, 9201, '/version.txt')).toBe('v1\n');
    const before = await snapshot(m, files);
    const idBefore = await unitProperty(m, 'hk-web.service', 'InvocationID');

    // v2 serves a directory that does not exist: it starts (systemd is happy) but answers 404.
    const bad = commitId();
    expect(await site(m, 'web', '/version.txt')).toBe('v1\n');
    expect((await m.host.readFile(SITE))!.toString()).toContain('127.0.0.1:9201');
    const second = result(await apply(m, { 'projects/web.yaml': web('v2', { directory: '/srv/web/missing', port: 9204 }) }, bad));
    expect(second.status).toBe('rolled-back');
    if (second.status !== 'rolled-back') return;
    expect(second.failed.id).toBe('health/web');
    expect(second.failed.error).toContain('GET http://web.hk.test/version.txt (via 127.0.0.1:80) answered 404, expected 200');
    expect(second.quarantined).toBe(true);
    expect(second.health).toEqual([
      { project: 'web', ok: false, url: 'http://web.hk.test/version.txt (via 127.0.0.1:80)', detail: expect.stringContaining('404') },
    ]);
    // Back on the previous unit, env file and version file, and serving v1 from a restarted service.
    expect(await snapshot(m, files)).toEqual(before);
    expect(await unitProperty(m, 'hk-web.service', 'ActiveState')).toBe('active');
    expect(await unitProperty(m, 'hk-web.service', 'InvocationID')).not.toBe(idBefore);
    expect(await body(m, 9201, '/version.txt')).toBe('v1\n');
    expect(await site(m, 'web', '/version.txt')).toBe('v1\n');
    const pid = await unitProperty(m, 'hk-web.service', 'MainPID');
    expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0')).toContain('VERSION=v1');

    // The journal recorded the run, its backups and its failure.
    const run = (await listRuns(m.host, STATE)).find((r) => r.record.id === second.run)!;
    expect(run.record.commit).toBe(bad);
    expect(run.record.previousCommit).toBe(good);
    expect(run.status).toBe('rolled-back');
    expect(run.events.filter((e) => e.ev === 'backup').map((e) => (e.ev === 'backup' && e.target.type === 'file' ? e.target.path : ''))).toEqual(
      expect.arrayContaining([UNIT, ENV, SITE, '/srv/web/version.txt', `${STATE}/inventory.json`]),
    );

    // Retrying the quarantined commit applies nothing and says why.
    expect(await isQuarantined(m.host, STATE, bad)).toMatchObject({ commit: bad, projects: ['web'] });
    const again = await apply(m, { 'projects/web.yaml': web('v2', { directory: '/srv/web/missing', port: 9204 }) }, bad);
    expect(again.stage).toBe('held');
    if (again.stage === 'held') expect(again.hold.message).toMatch(/quarantined.*hostkit resume/);
    expect(await snapshot(m, files)).toEqual(before);
  });

  it('hostkit rollback --last restores the state before a good apply, and applying the commit again brings the new state back', async () => {
    const m = machine();
    await resume(m.host, STATE);
    const before = await snapshot(m, files);
    const v3 = result(await apply(m, { 'projects/web.yaml': web('v3', { port: 9205 }) }, commitId()));
    expect(v3.status).toBe('applied');
    const after = await snapshot(m, files);
    expect(await body(m, 9205, '/version.txt')).toBe('v3\n');

    const target = await findRun(m.host, STATE, { last: true });
    expect(target.record.id).toBe(v3.run);
    const dry = await rollbackRun(target, { dryRun: true, log: silentLogger() });
    expect(dry.result).toBeUndefined();
    expect(dry.plan.steps.map((s) => `${s.action} ${'path' in s ? s.path : s.resource}`)).toEqual(
      expect.arrayContaining([`restore-file ${UNIT}`, `restore-file ${ENV}`, 'restore-file /srv/web/version.txt', `restore-file ${STATE}/inventory.json`]),
    );
    const afterSteps = new Map(dry.plan.after.map((a) => [a.kind, a.plan]));
    expect((afterSteps.get('unit') as UnitsAfterRestore).restart).toEqual(['hk-web.service']);
    expect(dry.plan.steps.map((s) => ('path' in s ? s.path : ''))).toContain(SITE);
    expect(afterSteps.get('site')).toMatchObject({ reload: true, sites: [SITE] });
    expect(await snapshot(m, files)).toEqual(after); // a dry run changes nothing

    const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
    expect(done.result?.errors).toEqual([]);
    expect(await snapshot(m, files)).toEqual(before);
    expect(await body(m, 9201, '/version.txt')).toBe('v1\n');
    expect(await site(m, 'web', '/version.txt')).toBe('v1\n');
    const pid = await unitProperty(m, 'hk-web.service', 'MainPID');
    expect((await m.exec('cat', [`/proc/${pid}/environ`])).stdout.split('\0')).toContain('VERSION=v1');
    // --last now means the run before; the rollback is a run of its own.
    const runs = await listRuns(m.host, STATE);
    expect(runs.at(-1)!.record).toMatchObject({ type: 'rollback', target: v3.run });
    expect(runs.at(-1)!.status).toBe('restored');

    const again = result(await apply(m, { 'projects/web.yaml': web('v3', { port: 9205 }) }, commitId()));
    expect(again.status).toBe('applied');
    expect(await snapshot(m, files)).toEqual(after);
    expect(await body(m, 9205, '/version.txt')).toBe('v3\n');
    expect(await site(m, 'web', '/version.txt')).toBe('v3\n');
    expect(result(await apply(m, { 'projects/web.yaml': web('v3', { port: 9205 }) }, commitId())).status).toBe('no-changes');
  });

  it('lifecycle commands: before-start runs before the service restarts, after-start after; the down plan runs the down command, an irreversible one is skipped', async () => {
    const m = machine();
    const idBefore = await unitProperty(m, 'hk-web.service', 'InvocationID');
    const lifecycle = (tag: string) => `  lifecycle:
    - name: migrate
      phase: before-start
      command: [/bin/sh, -c, "systemctl show --property=InvocationID --value hk-web.service > before-start.txt; echo ${tag} >> migrations.txt"]
      down: [/bin/sh, -c, "echo down-${tag} >> migrations.txt"]
    - name: warm
      phase: after-start
      command: [/bin/sh, -c, "systemctl show --property=InvocationID --value hk-web.service > after-start.txt"]
    - name: seed
      phase: after-start
      irreversible: true
      command: [/bin/sh, -c, "echo seeded-${tag} >> seeds.txt"]
`;
    const v4 = result(await apply(m, { 'projects/web.yaml': web('v4', { lifecycle: lifecycle('m4') }) }, commitId()));
    expect(v4.status).toBe('applied');
    const order = v4.steps.map((s) => s.id);
    expect(order.indexOf('command/web-migrate')).toBeGreaterThan(order.indexOf('envfile/etc/hostkit/env/web.env'));
    expect(order.indexOf('command/web-migrate')).toBeLessThan(order.indexOf('unit/hk-web.service'));
    for (const after of ['command/web-seed', 'command/web-warm']) expect(order.indexOf(after)).toBeGreaterThan(order.indexOf('unit/hk-web.service'));
    const idAfter = await unitProperty(m, 'hk-web.service', 'InvocationID');
    expect(idAfter).not.toBe(idBefore);
    expect((await m.host.readFile('/srv/web/before-start.txt'))!.toString().trim()).toBe(idBefore);
    expect((await m.host.readFile('/srv/web/after-start.txt'))!.toString().trim()).toBe(idAfter);
    expect((await m.host.readFile('/srv/web/migrations.txt'))!.toString()).toBe('m4\n');

    // Unchanged spec and inputs: the commands do not run again.
    expect(result(await apply(m, { 'projects/web.yaml': web('v4', { lifecycle: lifecycle('m4') }) }, commitId())).status).toBe('no-changes');
    expect((await m.host.readFile('/srv/web/migrations.txt'))!.toString()).toBe('m4\n');

    const target = await findRun(m.host, STATE, { last: true });
    expect(target.record.id).toBe(v4.run);
    const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
    expect(done.plan.steps.filter((s) => s.resource.startsWith('command/') && !s.action.endsWith('-file')).map((s) => `${s.action} ${s.resource}`)).toEqual([
      'keep command/web-warm',
      'skip-irreversible command/web-seed',
      'run-down command/web-migrate',
    ]);
    expect(done.result?.errors).toEqual([]);
    expect((await m.host.readFile('/srv/web/migrations.txt'))!.toString()).toBe('m4\ndown-m4\n');
    expect((await m.host.readFile('/srv/web/seeds.txt'))!.toString()).toBe('seeded-m4\n');
    expect(await body(m, 9205, '/version.txt')).toBe('v3\n');
    expect(await site(m, 'web', '/version.txt')).toBe('v3\n');
  });

  it('a project failing repeatedly is paused after the configured number of failures, other projects still apply, and a commit that changes it un-pauses it', async () => {
    const m = machine();
    await resume(m.host, STATE);
    const deploy = '  deploy:\n    pauseAfterFailures: 2\n    failureWindow: 1h\n';
    const api = (v: string) => web(v, { name: 'api', port: 9202 });
    const flaky = (v: string) => web(v, { name: 'flaky', port: 9203, directory: '/srv/flaky/missing' });
    expect(result(await apply(m, { 'projects/api.yaml': api('a1') }, commitId(), deploy)).status).toBe('applied');

    const f1 = result(await apply(m, { 'projects/api.yaml': api('a1'), 'projects/flaky.yaml': flaky('f1') }, commitId(), deploy));
    expect(f1.status).toBe('rolled-back');
    expect(f1.status === 'rolled-back' && f1.pausedNow).toBeUndefined();
    expect(await isPaused(m.host, STATE, 'flaky')).toBeUndefined();
    const f2 = result(await apply(m, { 'projects/api.yaml': api('a1'), 'projects/flaky.yaml': flaky('f2') }, commitId(), deploy));
    expect(f2.status).toBe('rolled-back');
    if (f2.status === 'rolled-back') expect(f2.pausedNow).toEqual(['flaky']);
    expect(await isPaused(m.host, STATE, 'flaky')).toMatchObject({ project: 'flaky', failures: 2 });

    // A new commit that changes only api: flaky's changes are held back, api's apply.
    const a2 = result(await apply(m, { 'projects/api.yaml': api('a2'), 'projects/flaky.yaml': flaky('f2') }, commitId(), deploy));
    expect(a2.status).toBe('applied');
    expect(a2.paused?.map((p) => p.project)).toEqual(['flaky']);
    expect(a2.held).toEqual(expect.arrayContaining(['unit/hk-flaky.service', 'account/flaky']));
    expect(a2.steps.every((s) => !s.id.includes('flaky'))).toBe(true);
    expect(await body(m, 9202, '/version.txt')).toBe('a2\n');
    expect(await m.host.stat('/etc/systemd/system/hk-flaky.service')).toBeUndefined();

    // A commit that changes flaky (a fix) un-pauses it and applies it.
    const fixed = result(
      await apply(m, { 'projects/api.yaml': api('a2'), 'projects/flaky.yaml': web('f3', { name: 'flaky', port: 9203 }) }, commitId(), deploy),
    );
    expect(fixed.status).toBe('applied');
    expect(fixed.released).toEqual(['flaky']);
    expect(await isPaused(m.host, STATE, 'flaky')).toBeUndefined();
    expect(await body(m, 9203, '/version.txt')).toBe('f3\n');
  });
});
