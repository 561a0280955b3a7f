import { createHash } from 'node:crypto';
import path from 'node:path';
import zlib from 'node:zlib';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { heldRelease, isQuarantined, resume } from '../../reconciler/apply/quarantine.js';
import { collectReleases, renderReleasesText, switchToRelease } from '../../reconciler/commands/releases.js';
import { renderStatusText } from '../../reconciler/commands/status-render.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { reconcileHost, type ReconcileOutcome } from '../../reconciler/engine.js';
import { currentReleases, sourceProjects } from '../../reconciler/report/releases.js';
import { reportFromOutcome, statusDescription } from '../../reconciler/report/status.js';
import { tarOf } from '../support/archives.js';
import { releaseApp } from '../support/release-app.js';
import { writeRepo } from '../support/fixtures.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_NAME, hostStatus, killAfterStart, unitProperty } from './reconcile.js';

// Releases on a real host: a git repository on the host (file:///srv/app-src)
// holding a small Python web app with a build step, deployed, switched by ref,
// health-gated, served through nginx, and killed mid-build and mid-switch.

const STATE = '/var/lib/hostkit';
const SRC = '/srv/app-src';
const MARKER = '.hostkit-release.json';

const HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: ${STATE}
`;

// The build step: records what it built, counts builds in the persistent cache, and sleeps while /srv/slow-build exists.
const BUILD = `import os, time
while os.path.exists("/srv/slow-build"):
    time.sleep(0.2)
cache = os.environ["HOME"]
n = int(open(os.path.join(cache, "count")).read()) + 1 if os.path.exists(os.path.join(cache, "count")) else 1
open(os.path.join(cache, "count"), "w").write(str(n))
open("build-info.txt", "w").write("built " + open("VERSION").read().strip())
`;

function app(ref: string, extra = ''): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: app }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  source:
    git: { url: "file://${SRC}", ref: "${ref}" }
  build:
    - command: [/usr/bin/python3, build.py]
  shared: [uploads]
  service:
    command: [/usr/bin/python3, app.py]
    port: 9301
  domains:
    - name: app.hk.test
      tls: none
  health:
    http: { path: /healthz, bodyContains: ok }
    timeout: 2s
    retries: 1
${extra}`;
}

// Another project on the host: a new release of app must leave it alone.
const OTHER = `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: other }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9302", --bind, 127.0.0.1, --directory, /srv/other]
    port: 9302
`;

// A static site of `name` at NAME.hk.test, from `source` (the YAML of spec.source), serving its site/ directory.
function staticSite(name: string, source: string): string {
  return `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [${HOST_NAME}] }
  runtime: static
  source:
    ${source}
  static: { root: site }
  domains:
    - name: ${name}.hk.test
      tls: none
`;
}

const docs = (ref: string) => staticSite('docs', `git: { url: "file://${SRC}", ref: "${ref}" }`);

async function apply(m: TestHost, files: Record<string, string>, commit?: string): Promise<ReconcileOutcome> {
  const repoDir = await writeRepo({ 'hosts/test-host.yaml': HOST, ...files });
  return reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: false, log: silentLogger(), env: {}, ...(commit ? { commit } : {}) });
}

/** A dry run of these manifests (a plan, as `hostkit plan` makes it). */
async function plan(m: TestHost, files: Record<string, string>) {
  const repoDir = await writeRepo({ 'hosts/test-host.yaml': HOST, ...files });
  const dry = await reconcileHost({ repoDir, hostName: HOST_NAME, host: m.host, dryRun: true, log: silentLogger(), env: {} });
  if (dry.stage !== 'planned') throw new Error(`expected a plan, got ${dry.stage}`);
  return dry;
}

function result(outcome: ReconcileOutcome) {
  if (outcome.stage !== 'applied')
    throw new Error(
      `expected an apply, got ${outcome.stage}: ${JSON.stringify(outcome.stage === 'planned' ? outcome.planned.plan.diagnostics : outcome.stage === 'held' ? outcome.hold : outcome.repo.diagnostics).slice(0, 3000)}`,
    );
  return outcome.result;
}

function ok(outcome: ReconcileOutcome) {
  const r = result(outcome);
  if (r.status === 'rolled-back') throw new Error(`rolled back at ${r.failed.id}: ${r.failed.error}`);
  return r;
}

/** A commit of the app at `version` on the host's repository; its id. */
async function commit(m: TestHost, version: string): Promise<string> {
  const write = (name: string, text: string) => m.host.writeFile(`${SRC}/${name}`, text, { uid: 0, gid: 0, mode: 0o644 });
  await m.host.mkdir(`${SRC}/site`, { uid: 0, gid: 0, mode: 0o755 });
  await write('VERSION', `${version}\n`);
  await write('app.py', releaseApp(version));
  await write('build.py', BUILD);
  await write('site/index.html', `docs ${version}\n`);
  const git = (...args: string[]) => m.exec('git', ['-C', SRC, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await git('add', '-A');
  await git('commit', '-q', '-m', `app ${version}`);
  return (await git('rev-parse', 'HEAD')).stdout.trim();
}

async function get(m: TestHost, name: string, p = '/'): Promise<string> {
  const r = await m.host.exec('curl', ['-s', '--max-time', '3', '--resolve', `${name}:80:127.0.0.1`, `http://${name}${p}`]);
  return r.stdout;
}

async function served(m: TestHost, name: string, want: string): Promise<string> {
  await eventually(async () => (await get(m, name)) === want, 10_000);
  return get(m, name);
}

const current = async (m: TestHost, project: string) => m.host.readlink(`/srv/${project}/current`);
const releases = async (m: TestHost, project: string) => ((await m.host.readdir(`/srv/${project}/releases`)) ?? []).sort();
const marker = async (m: TestHost, project: string, id: string) => m.host.readFile(`/srv/${project}/releases/${id}/${MARKER}`);
const builds = async (m: TestHost) => Number((await m.host.readFile('/var/cache/hostkit-build/app/count'))?.toString() ?? '0');

async function nginxWorkers(m: TestHost): Promise<string> {
  const master = await unitProperty(m, 'nginx.service', 'MainPID');
  return `${master}:${(await m.host.exec('pgrep', ['-P', master])).stdout.trim().split('\n').sort().join(',')}`;
}

describeHost('reconciler/drivers/release (git releases, builds, switches) on a real host', () => {
  const machine = useHost();
  const commits = {} as Record<'v1' | 'v2' | 'v3' | 'v4' | 'v5' | 'v6', string>;

  it(
    'v1 from a pinned commit is built once (build step in the sandbox, cache kept), linked as current and served through nginx',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      await m.exec('git', ['init', '-q', '-b', 'main', SRC]);
      commits.v1 = await commit(m, 'v1');
      await m.exec('mkdir', ['-p', '/srv/other']);
      const first = ok(await apply(m, { 'projects/app.yaml': app(commits.v1), 'projects/other.yaml': OTHER }, 'c1'.padEnd(40, '0')));
      expect(first.status).toBe('applied');
      const ids = await releases(m, 'app');
      expect(ids).toHaveLength(1);
      expect(ids[0]).toMatch(new RegExp(`^\\d{8}T\\d{6}Z-${commits.v1.slice(0, 12)}-[0-9a-f]{4}$`));
      expect(await current(m, 'app')).toBe(`releases/${ids[0]}`);
      expect(JSON.parse((await marker(m, 'app', ids[0]!))!.toString())).toMatchObject({
        commit: commits.v1,
        id: ids[0],
        source: { git: { url: `file://${SRC}` } },
      });
      expect(await served(m, 'app.hk.test', 'v1 built v1\n')).toBe('v1 built v1\n');
      expect(await builds(m)).toBe(1);
      // The shared path is a link into /srv/app/shared; the service runs in current.
      expect(await m.host.readlink(`/srv/app/releases/${ids[0]}/uploads`)).toBe('/srv/app/shared/uploads');
      expect(await unitProperty(m, 'hk-app.service', 'WorkingDirectory')).toBe('/srv/app/current');
    },
  );

  it(
    'v2 by a new ref restarts exactly that service, once; the noop after it makes no change, contacts no source and builds nothing',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      commits.v2 = await commit(m, 'v2');
      const before = { app: await unitProperty(m, 'hk-app.service', 'InvocationID'), other: await unitProperty(m, 'hk-other.service', 'InvocationID') };
      const files = { 'projects/app.yaml': app(commits.v2), 'projects/other.yaml': OTHER };
      const dry = await plan(m, files);
      const pending = dry.planned.plan.changes.filter((c) => c.action !== 'noop');
      expect(pending.map((c) => c.id)).toEqual(['release/app', 'unit/hk-app.service']);
      expect(pending[0]).toMatchObject({ reason: `${commits.v1.slice(0, 7)} -> ${commits.v2.slice(0, 7)}` });
      expect(pending[0]!.fields).toContainEqual({ field: '/commit', before: commits.v1, after: commits.v2 });
      expect(pending[0]!.fields).toContainEqual({ field: '/restarts', after: ['hk-app.service'] });

      const second = ok(await apply(m, files, 'c2'.padEnd(40, '0')));
      expect(second.steps.map((s) => s.id)).toEqual(['release/app', 'unit/hk-app.service']);
      expect(await served(m, 'app.hk.test', 'v2 built v2\n')).toBe('v2 built v2\n');
      expect(await unitProperty(m, 'hk-app.service', 'InvocationID')).not.toBe(before.app);
      expect(await unitProperty(m, 'hk-other.service', 'InvocationID')).toBe(before.other);
      expect(await builds(m)).toBe(2);
      const after = { app: await unitProperty(m, 'hk-app.service', 'InvocationID'), ids: await releases(m, 'app') };

      // The repository gone: a pinned ref needs no source, so the noop still succeeds and builds nothing.
      await m.exec('mv', [SRC, `${SRC}.away`]);
      try {
        const noop = ok(await apply(m, files, 'c2'.padEnd(40, '0')));
        expect(noop.status).toBe('no-changes');
      } finally {
        await m.exec('mv', [`${SRC}.away`, SRC]);
      }
      expect(await unitProperty(m, 'hk-app.service', 'InvocationID')).toBe(after.app);
      expect(await releases(m, 'app')).toEqual(after.ids);
      expect(await builds(m)).toBe(2);
    },
  );

  it(
    'v3 fails its health check: current goes back to v2, which serves, the commit is quarantined, and status and the run report name v2',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      commits.v3 = await commit(m, 'v3');
      const v2 = await current(m, 'app');
      const bad = 'c3'.padEnd(40, '0');
      const files = { 'projects/app.yaml': app(commits.v3), 'projects/other.yaml': OTHER };
      const outcome = await apply(m, files, bad);
      const third = result(outcome);
      expect(third.status).toBe('rolled-back');
      if (third.status !== 'rolled-back') return;
      expect(third.failed.id).toBe('health/app');
      expect(await current(m, 'app')).toBe(v2);
      expect(await served(m, 'app.hk.test', 'v2 built v2\n')).toBe('v2 built v2\n');
      expect(await isQuarantined(m.host, STATE, bad)).toMatchObject({ commit: bad, projects: ['app'] });

      // The agent's report and commit status of this run name the release serving again (v2), read from the host.
      const releasesNow = await currentReleases(m.host, STATE, sourceProjects(outcome));
      const v2id = v2!.slice('releases/'.length);
      expect(releasesNow).toEqual([{ project: 'app', id: v2id, commit: commits.v2 }]);
      const facts = { host: HOST_NAME, trigger: ['test'], startedAt: new Date(), finishedAt: new Date(), timings: {} };
      const report = { ...reportFromOutcome(facts, outcome), releases: releasesNow };
      expect(statusDescription(report)).toBe(`health/app failed; 2 applied change(s) rolled back; release: app ${v2id}`);
      // hostkit status names it too: its id and commit, and the run that switched to it.
      const dry = await plan(m, files);
      const status = await hostStatus(m, dry, STATE);
      const app2 = status.projects.find((p) => p.name === 'app')!;
      expect(app2.release).toMatchObject({ id: v2id, commit: commits.v2, run: expect.any(String) });
      expect(status.projects.find((p) => p.name === 'other')).not.toHaveProperty('release');
      expect(renderStatusText(status)).toMatch(new RegExp(`\\n {4}release +${v2id} +commit ${commits.v2.slice(0, 12)}, switched at `));
    },
  );

  it('a branch ref picks up a new push on the next reconcile', { timeout: 120_000 }, async () => {
    const m = machine();
    const files = { 'projects/app.yaml': app('main'), 'projects/other.yaml': OTHER };
    // main is at v3 (unhealthy): put v4 on it first.
    commits.v4 = await commit(m, 'v4');
    ok(await apply(m, files, 'c4'.padEnd(40, '0')));
    expect(await served(m, 'app.hk.test', 'v4 built v4\n')).toBe('v4 built v4\n');
    commits.v5 = await commit(m, 'v5');
    ok(await apply(m, files, 'c5'.padEnd(40, '0')));
    expect(await served(m, 'app.hk.test', 'v5 built v5\n')).toBe('v5 built v5\n');
    expect((await current(m, 'app'))!).toContain(commits.v5.slice(0, 12));
    // keep: 5 by default; the current and the one before are kept.
    expect((await releases(m, 'app')).length).toBeLessThanOrEqual(5);
  });

  it(
    'rollback --project app --to v1 switches in a run of its own and holds it there until hostkit resume; keep: 2 then leaves the current release and the one before it',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      const files = { 'projects/app.yaml': app('main'), 'projects/other.yaml': OTHER };
      const v1 = (await releases(m, 'app')).find((id) => id.includes(commits.v1.slice(0, 12)))!;
      const v5 = (await current(m, 'app'))!.slice('releases/'.length);
      const other = await unitProperty(m, 'hk-other.service', 'InvocationID');
      const input = {
        repoDir: await writeRepo({ 'hosts/test-host.yaml': HOST, ...files }),
        hostName: HOST_NAME,
        host: m.host,
        dryRun: false,
        log: silentLogger(),
        redactor: new Redactor(),
        env: {},
      };
      const switched = await switchToRelease(input, { project: 'app', to: v1 });
      expect(switched).toMatchObject({ status: 'switched', project: 'app', release: v1 });
      expect(await current(m, 'app')).toBe(`releases/${v1}`);
      expect(await served(m, 'app.hk.test', 'v1 built v1\n')).toBe('v1 built v1\n');
      expect(await unitProperty(m, 'hk-other.service', 'InvocationID')).toBe(other);
      expect(await heldRelease(m.host, STATE, 'app')).toMatchObject({ release: v1, run: switched.status === 'switched' ? switched.run : '' });
      const listed = await collectReleases(m.host, STATE, 'app');
      expect(listed.projects[0]).toMatchObject({ current: v1, held: { release: v1 } });
      expect(renderReleasesText(listed)).toContain(`* ${v1}`);

      // Held: the same manifests (main is at v5) change nothing; `hostkit resume` lets the next run deploy main again.
      expect(ok(await apply(m, files)).status).toBe('no-changes');
      expect(await current(m, 'app')).toBe(`releases/${v1}`);
      await resume(m.host, STATE, { project: 'app' });
      ok(await apply(m, files));
      expect(await current(m, 'app')).toBe(`releases/${v5}`);
      expect(await served(m, 'app.hk.test', 'v5 built v5\n')).toBe('v5 built v5\n');

      // keep: 2 removes every release but the current one and the one before it by switch history (v1, the oldest).
      expect((await releases(m, 'app')).length).toBeGreaterThan(2);
      ok(await apply(m, { ...files, 'projects/app.yaml': app('main', '  releases: { keep: 2 }\n') }));
      expect(await releases(m, 'app')).toEqual([v1, v5].sort());
      expect(await builds(m)).toBe(5);
    },
  );

  it('a static site switches releases without an nginx reload', { timeout: 120_000 }, async () => {
    const m = machine();
    ok(await apply(m, { 'projects/app.yaml': app('main'), 'projects/other.yaml': OTHER, 'projects/docs.yaml': docs(commits.v4) }, 'c6'.padEnd(40, '0')));
    expect(await served(m, 'docs.hk.test', 'docs v4\n')).toBe('docs v4\n');
    const workers = await nginxWorkers(m);
    const second = ok(
      await apply(m, { 'projects/app.yaml': app('main'), 'projects/other.yaml': OTHER, 'projects/docs.yaml': docs(commits.v5) }, 'c7'.padEnd(40, '0')),
    );
    expect(second.steps.map((s) => s.id)).toEqual(['release/docs']);
    expect(await served(m, 'docs.hk.test', 'docs v5\n')).toBe('docs v5\n');
    expect(await nginxWorkers(m)).toBe(workers);
  });

  it('kill -9 mid-build and mid-switch: current is the old or the new release, never neither, and the next run converges', { timeout: 300_000 }, async () => {
    const m = machine();
    const files = (ref: string) => ({ 'projects/app.yaml': app(ref), 'projects/other.yaml': OTHER });
    const repoFor = (ref: string) => writeRepo({ 'hosts/test-host.yaml': HOST, ...files(ref) });
    const child = (repoDir: string) =>
      execa('node', [path.resolve('dist/test/support/reconcile-child.js'), repoDir, HOST_NAME, String(m.leaderPid), m.machine], { env: {}, reject: false });
    const complete = async () => {
      const link = await current(m, 'app');
      return link !== undefined && (await marker(m, 'app', link.slice('releases/'.length))) !== undefined;
    };

    // Mid-build: the build step waits on /srv/slow-build; the child is killed while it waits.
    const old = await current(m, 'app');
    commits.v6 = await commit(m, 'v6');
    await m.exec('touch', ['/srv/slow-build']);
    const proc = child(await repoFor(commits.v6));
    expect(await eventually(async () => (await releases(m, 'app')).some((id) => id.includes(commits.v6.slice(0, 12))), 60_000)).toBe(true);
    proc.kill('SIGKILL');
    await proc;
    await m.exec('rm', ['-f', '/srv/slow-build']);
    await new Promise((r) => setTimeout(r, 1000)); // the orphaned build unit finishes writing into its directory
    expect(await current(m, 'app')).toBe(old);
    ok(await apply(m, files(commits.v6)));
    expect(await served(m, 'app.hk.test', 'v6 built v6\n')).toBe('v6 built v6\n');
    // The interrupted build's directory is gone: one release of v6, complete.
    const v6 = (await releases(m, 'app')).filter((id) => id.includes(commits.v6.slice(0, 12)));
    expect(v6).toHaveLength(1);
    expect(await marker(m, 'app', v6[0]!)).toBeDefined();

    // Mid-switch: kills at growing delays between two built releases; after each, current is complete.
    let ref = commits.v5;
    for (const delay of [0, 20, 50, 100, 200, 400]) {
      await killAfterStart(child(await repoFor(ref)), delay);
      expect(await complete(), `current after a kill at ${delay} ms`).toBe(true);
      ref = ref === commits.v5 ? commits.v6 : commits.v5;
    }
    ok(await apply(m, files(commits.v6)));
    expect(await complete()).toBe(true);
    expect(await served(m, 'app.hk.test', 'v6 built v6\n')).toBe('v6 built v6\n');
    const again = ok(await apply(m, files(commits.v6)));
    expect(again.status).toBe('no-changes');
  });

  it(
    'an archive source: a wrong sha256 and a tarball holding ../ fail the run before anything is unpacked, the release serving stays; a good one switches',
    { timeout: 120_000 },
    async () => {
      const m = machine();
      await m.exec('mkdir', ['-p', '/srv/archives']);
      const put = async (name: string, items: Parameters<typeof tarOf>[0]) => {
        const bytes = zlib.gzipSync(await tarOf(items));
        await m.host.writeFile(`/srv/archives/${name}`, bytes, { uid: 0, gid: 0, mode: 0o644 });
        return { url: `file:///srv/archives/${name}`, sha256: createHash('sha256').update(bytes).digest('hex') };
      };
      const site = (text: string) => [
        { name: 'site', type: 'directory' as const },
        { name: 'site/index.html', body: text },
      ];
      const project = (archive: { url: string; sha256: string }) => ({
        'projects/files.yaml': staticSite('files', `archive: { url: "${archive.url}", sha256: "${archive.sha256}" }`),
      });
      ok(await apply(m, project(await put('one.tar.gz', site('files 1\n')))));
      expect(await served(m, 'files.hk.test', 'files 1\n')).toBe('files 1\n');
      const before = { current: await current(m, 'files'), releases: await releases(m, 'files') };

      const refused = async (archive: { url: string; sha256: string }, cause: string) => {
        const r = result(await apply(m, project(archive)));
        expect(r.status).toBe('rolled-back');
        if (r.status !== 'rolled-back') return;
        expect(r.failed).toMatchObject({ id: 'release/files' });
        expect(r.failed.error).toContain(`project files: archive ${archive.url} `);
        expect(r.failed.error).toContain(cause);
        expect(r.failed.error).toContain('nothing was unpacked');
        expect({ current: await current(m, 'files'), releases: await releases(m, 'files') }).toEqual(before);
        expect(await get(m, 'files.hk.test')).toBe('files 1\n');
      };
      const two = await put('two.tar.gz', site('files 2\n'));
      await refused({ ...two, sha256: 'f'.repeat(64) }, `has sha256 ${two.sha256}, expected ${'f'.repeat(64)}`);
      await refused(await put('evil.tar.gz', [...site('evil\n'), { name: '../escaped', body: 'x\n' }]), 'is refused: entry "../escaped"');
      expect(await m.host.stat('/srv/files/escaped')).toBeUndefined();
      expect(await m.host.stat('/srv/files/releases/escaped')).toBeUndefined();

      ok(await apply(m, project(two)));
      expect(await served(m, 'files.hk.test', 'files 2\n')).toBe('files 2\n');
      const id = (await current(m, 'files'))!.slice('releases/'.length);
      expect(id).toMatch(new RegExp(`^\\d{8}T\\d{6}Z-${two.sha256.slice(0, 12)}-[0-9a-f]{4}$`));
      expect(JSON.parse((await marker(m, 'files', id))!.toString())).toMatchObject({ archiveSha256: two.sha256, source: { archive: two } });
    },
  );
  it(
    'a build step that fails or times out fails the run naming the project, the step and the output; an unknown ref is a plan error at its line; the release serving stays and no unfinished build is left',
    { timeout: 180_000 },
    async () => {
      const m = machine();
      const site = (ref: string, build: string) => ({
        'projects/app.yaml': app('main'),
        'projects/other.yaml': OTHER,
        'projects/docs.yaml': `${docs(ref)}  build:\n${build}`,
      });
      ok(await apply(m, site(commits.v4, '    - command: [/usr/bin/true]\n')));
      expect(await served(m, 'docs.hk.test', 'docs v4\n')).toBe('docs v4\n');
      const before = { current: await current(m, 'docs'), releases: await releases(m, 'docs') };
      const failed = async (files: Record<string, string>) => {
        const r = result(await apply(m, files));
        expect(r.status).toBe('rolled-back');
        if (r.status !== 'rolled-back') throw new Error('not rolled back');
        expect(r.failed.id).toBe('release/docs');
        expect({ current: await current(m, 'docs'), releases: await releases(m, 'docs') }).toEqual(before);
        expect(await get(m, 'docs.hk.test')).toBe('docs v4\n');
        return r.failed.error;
      };
      // The build's output tail is in the failure (what an operator reads first).
      const exited = await failed(site(commits.v5, '    - command: [/bin/sh, -c, "echo compiling; echo missing module left-pad >&2; exit 3"]\n'));
      expect(exited).toContain('project docs: build step 1 (/bin/sh -c');
      expect(exited).toContain('exited 3');
      expect(exited).toContain('missing module left-pad');
      const slow = await failed(site(commits.v5, '    - command: [/bin/sleep, "30"]\n      timeout: 2s\n'));
      expect(slow).toContain('project docs: build step 1 (/bin/sleep 30)');
      expect(slow).toMatch(/timed out|timeout/i);
      // An unknown ref is found by the plan (one ls-remote): an error at the manifest's line, and nothing applied.
      const unknown = await apply(m, site('no-such-branch', '    - command: [/usr/bin/true]\n'));
      expect(unknown.stage).toBe('planned');
      if (unknown.stage !== 'planned') return;
      expect(unknown.planned.plan.diagnostics).toContainEqual(
        expect.objectContaining({
          severity: 'error',
          detail: `project docs: ref no-such-branch of file://${SRC} is neither a tag nor a branch there`,
          location: expect.objectContaining({ file: 'projects/docs.yaml', line: 8, pointer: '/spec/source' }),
        }),
      );
      expect({ current: await current(m, 'docs'), releases: await releases(m, 'docs') }).toEqual(before);
    },
  );
});
