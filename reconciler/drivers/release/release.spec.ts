import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import { JournaledRun } from '../../../test/support/undo.js';
import { answerRmRf } from '../../../test/support/releases.js';
import { heldRelease, holdRelease } from '../../apply/quarantine.js';
import { Redactor } from '../../core/secrets.js';
import type { Resource } from '../../core/resource.js';
import type { Change } from '../../diff/model.js';
import { FakeHost } from '../../hosts/fake.js';
import {
  buildDigest,
  historyPath,
  MARKER,
  releaseDriver,
  releaseId,
  releasesToRemove,
  type DesiredRelease,
  type ObservedRelease,
  type ReleaseMarker,
} from './index.js';
import { holdDigest } from './records.js';
import type { ReleaseSpec } from './spec.js';

const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);

function spec(name: string, ref: string, build: string[][] = []): ReleaseSpec {
  return {
    project: name,
    user: name,
    group: name,
    source: { git: { url: 'file:///srv/src', ref } },
    build: build.map((command) => ({ command, environment: {}, timeoutMs: 60_000 })),
    keep: 5,
    shared: [],
    isolation: { profile: 'web-service', writablePaths: [`/srv/${name}`], network: 'any' },
    webReadable: false,
    restarts: [`hk-${name}.service`],
  };
}

function resource(s: ReleaseSpec): Resource<ReleaseSpec> {
  return {
    id: `release/${s.project}`,
    kind: 'release',
    name: s.project,
    spec: s,
    dependsOn: [],
    origin: { file: `projects/${s.project}.yaml`, line: 5 },
    project: s.project,
  };
}

// A host with the projects' users, their directories and source caches; git (run as the user) answers ls-remote with `main` at `head`.
function host(names: string[], head = C2): FakeHost {
  const h = new FakeHost();
  const passwd = names.map((n, i) => `${n}:x:${1000 + i}:${1000 + i}::/srv/${n}:/usr/sbin/nologin`).join('\n');
  const group = names.map((n, i) => `${n}:x:${1000 + i}:`).join('\n');
  h.seedFile('/etc/passwd', `root:x:0:0:root:/root:/bin/bash\n${passwd}\n`);
  h.seedFile('/etc/group', `root:x:0:\n${group}\n`);
  for (const n of names) h.seedDir(`/srv/${n}`);
  for (const n of names) h.seedFile(`/var/lib/hostkit/sources/${n}/HEAD`, 'ref: refs/heads/main\n');
  h.onExec((call) => (call.args.includes('ls-remote') ? { exitCode: 0, stdout: `${head}\trefs/heads/main\n`, stderr: '' } : undefined));
  answerRmRf(h);
  return h;
}

// desire, observe and plan as the engine runs them (observe first, then desire), for one run.
async function plan(h: FakeHost, resources: Resource<ReleaseSpec>[], mode: 'plan' | 'apply' = 'apply', redactor?: Redactor) {
  const ctx = driverContext(h, { mode, ...(redactor ? { redactor } : {}) });
  const state = releaseDriver.createRun!(ctx);
  const observing = releaseDriver.observe(resources, ctx, state);
  const wanted = await releaseDriver.desire(resources, ctx, state);
  const observed = await observing;
  const changes = resources.map((r) => {
    const w = wanted.get(r.id)!;
    const change = releaseDriver.plan({ resource: r, desired: w.desired, observed: observed.get(r.id), orphan: false });
    change.diagnostics.push(...w.diagnostics);
    return change;
  });
  return { ctx, state, changes };
}

async function applyAll(h: FakeHost, resources: Resource<ReleaseSpec>[]): Promise<Change[]> {
  const { ctx, state, changes } = await plan(h, resources);
  for (const c of changes) if (c.action !== 'noop') await releaseDriver.apply(c as never, ctx, state);
  return changes;
}

// Processes of `file`, also as run as another user (`setpriv ... -- git ...`).
const called = (h: FakeHost, file: string, first?: string) =>
  h.calls.filter((c) => (c.file === file || (c.file === 'setpriv' && c.args.includes(file))) && (first === undefined || c.args.includes(first)));

describe('reconciler/drivers/release', () => {
  it('names a release by its time, 12 hex of the commit and 4 of the build digest', () => {
    expect(releaseId(new Date('2026-12-07T10:15:00.123Z'), '1a2b3c4d5e6f7a8b9c0d'.padEnd(40, '0'), 'b9c8'.padEnd(64, '0'))).toBe(
      '20261207T101500Z-1a2b3c4d5e6f-b9c8',
    );
  });

  const m = (id: string): { id: string; marker: ReleaseMarker } => ({ id, marker: { id } as ReleaseMarker });
  it.each<[string, ObservedRelease, number, string[]]>([
    ['nothing past keep', { current: 'r3', releases: [m('r1'), m('r2'), m('r3')], history: [] }, 5, []],
    [
      'the oldest past keep',
      {
        current: 'r4',
        releases: [m('r1'), m('r2'), m('r3'), m('r4')],
        history: [
          { id: 'r3', at: '' },
          { id: 'r4', at: '' },
        ],
      },
      2,
      ['r1', 'r2'],
    ],
    [
      'never the one before current by history, even when it is the oldest',
      {
        current: 'r4',
        releases: [m('r1'), m('r2'), m('r3'), m('r4')],
        history: [
          { id: 'r1', at: '' },
          { id: 'r4', at: '' },
        ],
      },
      2,
      ['r2', 'r3'],
    ],
    ['an interrupted build (no marker) whatever keep says', { current: 'r1', releases: [m('r1'), { id: 'r2' }], history: [] }, 5, ['r2']],
    ['never the current one, even unmarked', { current: 'r2', releases: [m('r1'), { id: 'r2' }], history: [] }, 1, ['r1']],
  ])('prune: %s', (_title, observed, keep, removed) => {
    expect(releasesToRemove(observed, keep)).toEqual(removed);
  });

  it('observe reads files only: no process for 1 project or for 20', async () => {
    for (const n of [1, 20]) {
      const names = Array.from({ length: n }, (_, i) => `p${i}`);
      const h = host(names);
      await applyAll(
        h,
        names.map((name) => resource(spec(name, C1))),
      );
      const before = h.calls.length;
      const { changes } = await plan(
        h,
        names.map((name) => resource(spec(name, C1))),
      );
      expect(changes.map((c) => c.action)).toEqual(names.map(() => 'noop'));
      expect(h.calls.slice(before)).toEqual([]);
    }
  });

  it('a branch: one `git ls-remote` for 20 projects of one URL in an apply; none in a plan, which shows the ref as written', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const resources = names.map((name) => resource(spec(name, 'main')));
    const h = host(names);
    const { changes } = await plan(h, resources, 'apply');
    expect(called(h, 'git', 'ls-remote')).toHaveLength(1);
    expect((changes[0]!.desired as DesiredRelease).commit).toBe(C2);

    const pr = host(names);
    const dry = await plan(pr, resources, 'plan');
    expect(pr.calls).toEqual([]);
    expect(dry.changes[0]).toMatchObject({ action: 'create', fields: [{ field: '/ref', after: 'main (resolved when applied)' }] });
  });

  it('builds once per (commit, build digest): switching back to a built release reuses it; a changed build step builds anew', async () => {
    const h = host(['app']);
    const v1 = resource(spec('app', C1, [['/usr/bin/make']]));
    const created = await applyAll(h, [v1]);
    expect(created[0]).toMatchObject({ action: 'create' });
    expect(called(h, 'systemd-run')).toHaveLength(1);
    const first = (await h.readlink('/srv/app/current'))!;
    expect(first).toMatch(new RegExp(`^releases/\\d{8}T\\d{6}Z-${C1.slice(0, 12)}-${buildDigest(v1.spec).slice(0, 4)}$`));
    const marker = JSON.parse(h.text(`/srv/app/${first}/${MARKER}`)!) as ReleaseMarker;
    expect(marker).toMatchObject({
      commit: C1,
      buildDigest: buildDigest(v1.spec),
      id: first.slice('releases/'.length),
      source: { git: { url: 'file:///srv/src', ref: C1 } },
    });

    // Applying again changes nothing; v2, then back to v1: one more build, not two.
    expect((await applyAll(h, [v1]))[0]!.action).toBe('noop');
    const v2 = resource(spec('app', C2, [['/usr/bin/make']]));
    const update = (await applyAll(h, [v2]))[0]!;
    expect(update).toMatchObject({ action: 'update', reason: `${C1.slice(0, 7)} -> ${C2.slice(0, 7)}`, disruptive: true });
    expect(update.fields).toContainEqual({ field: '/restarts', after: ['hk-app.service'] });
    expect(update.fields).toContainEqual({ field: '/build', after: ['/usr/bin/make'] });
    const back = (await applyAll(h, [v1]))[0]!;
    expect(back.fields).toContainEqual({ field: '/release', before: expect.stringContaining(C2.slice(0, 12)), after: first.slice('releases/'.length) });
    expect(await h.readlink('/srv/app/current')).toBe(first);
    expect(called(h, 'systemd-run')).toHaveLength(2);
    // The history records each switch, newest last.
    const history = JSON.parse(h.text(historyPath('/var/lib/hostkit', 'app'))!) as { switches: { id: string }[] };
    expect(history.switches.map((s) => s.id.slice(17, 29))).toEqual([C1, C2, C1].map((c) => c.slice(0, 12)));

    const rebuilt = resource(spec('app', C1, [['/usr/bin/make', 'all']]));
    await applyAll(h, [rebuilt]);
    expect(called(h, 'systemd-run')).toHaveLength(3);
  });

  it('blue-green: the switch of current waits for the deploy (switched with nginx), or for settle when no deploy makes it', async () => {
    const h = host(['app']);
    await applyAll(h, [resource(spec('app', C1))]);
    const first = await h.readlink('/srv/app/current');
    const v2 = resource({ ...spec('app', C2), switchWithNginx: true });
    const { ctx, state, changes } = await plan(h, [v2]);
    await releaseDriver.apply(changes[0] as never, ctx, state);
    const deferred = ctx.run.switches.of('app');
    expect(deferred?.directory).toMatch(new RegExp(`^/srv/app/releases/\\d{8}T\\d{6}Z-${C2.slice(0, 12)}-`));
    expect(await h.readlink('/srv/app/current')).toBe(first);
    // The deploy's switch (drivers/systemd/deploy) makes it; settle after it finds nothing left to do.
    await ctx.run.switches.make('app');
    expect(await h.readlink('/srv/app/current')).toBe(`releases/${deferred!.release}`);
    await releaseDriver.settle!([{ change: changes[0] as never, undo: undefined }], ctx, 'apply', state);
    expect(await releaseDriver.verify(changes[0] as never, ctx, state)).toEqual([]);

    // No deploy made it: the release's settle does, after every change applied.
    const back = await plan(h, [resource({ ...spec('app', C1), switchWithNginx: true })]);
    await releaseDriver.apply(back.changes[0] as never, back.ctx, back.state);
    expect(await h.readlink('/srv/app/current')).toBe(`releases/${deferred!.release}`);
    await releaseDriver.settle!([{ change: back.changes[0] as never, undo: undefined }], back.ctx, 'apply', back.state);
    expect(await h.readlink('/srv/app/current')).toBe(first);
  });

  it('a build step runs as the project’s user in the release, sandboxed, with the cache; its failure names the release and the tail, without secrets', async () => {
    const h = host(['app']);
    const redactor = new Redactor();
    redactor.add('hunter2-secret');
    h.onExec((call) => (call.file === 'systemd-run' ? { exitCode: 1, stdout: '', stderr: 'compiling\nerror: token hunter2-secret rejected\n' } : undefined));
    const { ctx, state, changes } = await plan(h, [resource(spec('app', C1, [['/usr/bin/make']]))], 'apply', redactor);
    const error = await releaseDriver.apply(changes[0] as never, ctx, state).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    expect(error?.code).toBe('RELEASE_BUILD_FAILED');
    expect(error?.message).toMatch(
      /project app: build step 1 \(\/usr\/bin\/make\) of release \d{8}T\d{6}Z-111111111111-[0-9a-f]{4} exited 1:\ncompiling\nerror: token \(redacted\) rejected/,
    );
    const args = called(h, 'systemd-run')[0]!.args;
    expect(args).toEqual(
      expect.arrayContaining([
        '-p',
        'User=app',
        'Group=app',
        'CacheDirectory=hostkit-build/app',
        'ProtectSystem=strict',
        '--setenv=HOME=/var/cache/hostkit-build/app',
        '--setenv=PIP_CACHE_DIR=/var/cache/hostkit-build/app/pip',
      ]),
    );
    expect(args.find((a) => a.startsWith('WorkingDirectory='))).toMatch(/^WorkingDirectory=\/srv\/app\/releases\/\d{8}T/);
    expect(args).not.toContain('IPAddressDeny=any');
    // Nothing switched, and the half-built release is gone.
    expect(await h.readlink('/srv/app/current')).toBeUndefined();
    expect(await h.readdir('/srv/app/releases')).toEqual([]);
  });

  it('rollback (a restore from the run journal) points current back where it was and restores the history', async () => {
    const h = host(['app']);
    await applyAll(h, [resource(spec('app', C1))]);
    const before = { link: await h.readlink('/srv/app/current'), history: h.text(historyPath('/var/lib/hostkit', 'app')) };
    const { ctx, state, changes } = await plan(h, [resource(spec('app', C2))]);
    const run = await JournaledRun.open(ctx, changes);
    await run.apply(releaseDriver, changes[0]!, state);
    expect(await h.readlink('/srv/app/current')).not.toBe(before.link);
    await run.rollback();
    expect({ link: await h.readlink('/srv/app/current'), history: h.text(historyPath('/var/lib/hostkit', 'app')) }).toEqual(before);
  });

  it('a hold (rollback --to) keeps the project on its release with no source contacted; a changed release spec ends it, and a rollback puts it back', async () => {
    const h = host(['app']);
    await applyAll(h, [resource(spec('app', C1))]);
    const v1 = (await h.readlink('/srv/app/current'))!.slice('releases/'.length);
    const branch = resource(spec('app', 'main')); // main is at C2
    await applyAll(h, [branch]);
    expect(await h.readlink('/srv/app/current')).toContain(C2.slice(0, 12));
    await holdRelease(h, '/var/lib/hostkit', { project: 'app', release: v1, specDigest: holdDigest(branch.spec) });

    const before = called(h, 'git', 'ls-remote').length;
    const back = (await applyAll(h, [branch]))[0]!;
    expect(called(h, 'git', 'ls-remote')).toHaveLength(before);
    expect(back).toMatchObject({ action: 'update', reason: `${C2.slice(0, 7)} -> ${C1.slice(0, 7)} (held by rollback --to)` });
    expect(await h.readlink('/srv/app/current')).toBe(`releases/${v1}`);
    expect((await applyAll(h, [branch]))[0]!.action).toBe('noop');

    // A commit that changes the release spec: back to what it says, the hold ended; a rollback of that run holds it again.
    const pinned = resource(spec('app', C2));
    const { ctx, state, changes } = await plan(h, [pinned]);
    expect(changes[0]!.fields).toContainEqual({ field: '/hold', before: v1, after: 'ended: the release spec changed' });
    const run = await JournaledRun.open(ctx, changes);
    await run.apply(releaseDriver, changes[0]!, state);
    expect(await h.readlink('/srv/app/current')).toContain(C2.slice(0, 12));
    expect(await heldRelease(h, '/var/lib/hostkit', 'app')).toBeUndefined();
    await run.rollback();
    expect(await h.readlink('/srv/app/current')).toBe(`releases/${v1}`);
    expect(await heldRelease(h, '/var/lib/hostkit', 'app')).toMatchObject({ release: v1, specDigest: holdDigest(branch.spec) });
  });

  it('a branch of a project whose user this run creates: the plan shows the ref, the apply resolves it as that user', async () => {
    const h = host([]);
    h.seedDir('/srv/app');
    const { ctx, state, changes } = await plan(h, [resource(spec('app', 'main'))]);
    expect(changes[0]).toMatchObject({ action: 'create', diagnostics: [], fields: [{ field: '/ref', after: 'main (resolved when applied)' }] });
    expect(called(h, 'git', 'ls-remote')).toEqual([]);
    // The account step of the run made the user.
    h.seedFile('/etc/passwd', `${h.text('/etc/passwd')}app:x:1000:1000::/srv/app:/usr/sbin/nologin\n`);
    h.seedFile('/etc/group', `${h.text('/etc/group')}app:x:1000:\n`);
    h.seedFile('/var/lib/hostkit/sources/app/HEAD', 'ref: refs/heads/main\n');
    await releaseDriver.apply(changes[0] as never, ctx, state);
    expect(called(h, 'git', 'ls-remote')).toHaveLength(1);
    expect(await h.readlink('/srv/app/current')).toContain(C2.slice(0, 12));
  });

  it('units take the release as an input: the digest follows the commit and build digest, and a plan that cannot resolve keeps the current one', async () => {
    const h = host(['app']);
    await applyAll(h, [resource(spec('app', C1))]);
    const digest = async (ref: string, mode: 'plan' | 'apply') => (await plan(h, [resource(spec('app', ref))], mode)).ctx.fileDigests.get('/srv/app/current');
    const current = await digest(C1, 'apply');
    expect(await digest(C2, 'apply')).not.toBe(current);
    expect(await digest('main', 'plan')).toBe(current); // the cache knows nothing of main: nothing restarts in the plan
  });
});
