import { readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directoryYaml, envFileYaml, scratchRoot, TEST_HOST, TESTER_ACCOUNT_YAML, writeRepo, HOST_YAML } from '../../test/support/fixtures.js';
import { manifestYaml, type ManifestInput } from '../../test/support/manifests.js';
import { killable, KillSwitch } from '../../test/support/conformance.js';
import { planHost } from '../diff/plan.js';
import { validateRepository } from '../manifests/index.js';
import { applyPlan } from './executor.js';
import { fingerprinter } from '../core/secrets.js';
import { toJsonPlan } from '../diff/render/json.js';
import { silentLogger } from '../core/log.js';
import { reconcileHost } from '../engine.js';
import { FakeHost } from '../hosts/fake.js';
import { flockFile } from '../hosts/flock.js';
import type { LocalHost } from '../hosts/local.js';
import { listRuns, openRun, pruneRuns, RunJournal } from './journal.js';
import { isQuarantined, pausedProjects, recordFailure, resume, safetyStatus } from './quarantine.js';
import { recoverInterruptedRun } from './restore.js';
import { findRun, rollbackRun } from './rollback.js';

const STATE = '/var/lib/hostkit';
const CLI = path.resolve('dist/reconciler/cli.js');

function fileDoc(name: string, p: string, content: string): ManifestInput {
  return { kind: 'File', name, on: [TEST_HOST], spec: { path: p, mode: '0640', content } };
}

const file = (name: string, p: string, content: string) => manifestYaml(fileDoc(name, p, content));

describe('reconciler/apply (journal, down plans, crash recovery) in a scratch root', () => {
  let root: string;
  let host: LocalHost;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ root, host, cleanup } = await scratchRoot());
  });
  afterEach(async () => cleanup());

  async function apply(files: Record<string, string>, commit?: string, dryRun = false) {
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, ...files });
    return reconcileHost({ repoDir, hostName: 'test-1', host, dryRun, log: silentLogger(), env: {}, ...(commit ? { commit } : {}) });
  }
  const read = (p: string) => readFile(path.join(root, p), 'utf8').catch(() => undefined);

  it('journals every run before it changes anything, backs up what it overwrites, and rollback --last restores it', async () => {
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'one\n') }, 'a'.repeat(40));
    const second = await apply({ 'a.yaml': manifestYaml(fileDoc('a', '/srv/a.conf', 'two\n'), fileDoc('b', '/srv/b.conf', 'new\n')) }, 'b'.repeat(40));
    expect(second.stage === 'applied' && second.result.status).toBe('applied');
    // A run with nothing to do leaves no record.
    await apply({ 'a.yaml': manifestYaml(fileDoc('a', '/srv/a.conf', 'two\n'), fileDoc('b', '/srv/b.conf', 'new\n')) }, 'b'.repeat(40));
    const runs = await listRuns(host, STATE);
    expect(runs.map((r) => [r.record.commit?.[0], r.status])).toEqual([
      ['a', 'applied'],
      ['b', 'applied'],
    ]);
    expect(runs[1]!.record).toMatchObject({ host: 'test-1', previousCommit: 'a'.repeat(40) });
    expect(runs[1]!.record.planned.map((p) => `${p.action} ${p.id}`)).toEqual(['update file/srv/a.conf', 'create file/srv/b.conf']);
    // The backup event of each file precedes its begin event.
    const events = runs[1]!.events.map((e) => `${e.ev} ${'id' in e ? e.id : ''}`.trim());
    expect(events.indexOf('backup file/srv/a.conf')).toBeLessThan(events.indexOf('begin file/srv/a.conf'));
    expect(events.at(-1)).toBe('end');

    const target = await findRun(host, STATE, { last: true });
    const dry = await rollbackRun(target, { dryRun: true, log: silentLogger() });
    expect(dry.plan.steps.map((s) => `${s.action} ${'path' in s ? s.path : s.resource}`)).toEqual([
      'remove-file /srv/b.conf',
      'restore-file /srv/a.conf',
      `restore-file ${STATE}/inventory.json`,
    ]);
    expect(await read('srv/a.conf')).toBe('two\n');
    const done = await rollbackRun(target, { dryRun: false, log: silentLogger() });
    expect(done.result!.errors).toEqual([]);
    expect(await read('srv/a.conf')).toBe('one\n');
    expect(await read('srv/b.conf')).toBeUndefined();
    expect(JSON.parse((await read(`var/lib/hostkit/inventory.json`))!)).toMatchObject({ commit: 'a'.repeat(40) });
    // The next --last is the run before; applying again brings the new state back.
    expect((await findRun(host, STATE, { last: true })).record.commit).toBe('a'.repeat(40));
    await apply({ 'a.yaml': manifestYaml(fileDoc('a', '/srv/a.conf', 'two\n'), fileDoc('b', '/srv/b.conf', 'new\n')) }, 'b'.repeat(40));
    expect(await read('srv/b.conf')).toBe('new\n');

    expect(await pruneRuns(host, STATE, 2)).toHaveLength(2);
    expect((await listRuns(host, STATE)).map((r) => r.record.type)).toEqual(['rollback', 'apply']);
  });

  it('the secret fingerprint key is stored by the first apply whose plan holds no error, and shows secrets from then on', async () => {
    const files = {
      'hosts/test-1.yaml': HOST_YAML,
      'tester.yaml': TESTER_ACCOUNT_YAML,
      'dir.yaml': directoryYaml('app', '/srv/app'),
      'env.yaml': envFileYaml('HK_FP_TOKEN'),
    };
    const repoDir = await writeRepo(files);
    const run = (env: Record<string, string>, dryRun: boolean) => reconcileHost({ repoDir, hostName: 'test-1', host, dryRun, log: silentLogger(), env });
    const keyFile = path.join(root, 'var/lib/hostkit/fingerprint.key');
    const stored = () => readFile(keyFile).catch(() => undefined);
    // The secret is missing: the plan has an error, nothing is applied, and no key is written.
    const refused = await run({}, false);
    expect(refused.stage === 'planned' && refused.planned.plan.diagnostics.map((d) => d.summary)).toContain('secret unavailable');
    expect(await stored()).toBeUndefined();
    expect((await run({ HK_FP_TOKEN: 'first-token-value' }, true)).stage).toBe('planned');
    expect(await stored()).toBeUndefined();

    expect((await run({ HK_FP_TOKEN: 'first-token-value' }, false)).stage).toBe('applied');
    const key = (await stored())!;
    expect(key).toHaveLength(32);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    // A rotation, dry run: both sides are shown under the host's key.
    const rotated = await run({ HK_FP_TOKEN: 'second-token-value' }, true);
    const shown = rotated.stage === 'planned' ? JSON.stringify(toJsonPlan(rotated.planned.plan)) : '';
    expect(shown).toContain(fingerprinter(key)('first-token-value'));
    expect(shown).toContain(fingerprinter(key)('second-token-value'));
    expect(shown).not.toContain('token-value');
  });

  it('pruning with the runs a caller listed under the lock prunes the oldest of them, without listing or reading the open run again', async () => {
    const ids = ['20210101T000000000Z-bbbbbb', '20220101T000000000Z-cccccc', '20230101T000000000Z-dddddd'];
    for (const id of ids) await (await RunJournal.open(host, STATE, { id, type: 'apply', host: 'test-1', planned: [] })).close('applied');
    const asked: string[] = [];
    const counting = new Proxy(host, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'readdir' && prop !== 'readFile') return typeof value === 'function' ? value.bind(target) : value;
        return (p: string, ...rest: unknown[]) => (asked.push(`${String(prop)} ${p}`), (value as (...a: unknown[]) => unknown).call(target, p, ...rest));
      },
    });
    expect(await pruneRuns(counting, STATE, 2, { runs: ids })).toEqual(['20210101T000000000Z-bbbbbb']);
    expect(asked.filter((a) => a === `readdir ${STATE}/runs` || a.endsWith('current-run.json'))).toEqual([]);
    expect((await listRuns(host, STATE)).map((r) => r.record.id)).toEqual(ids.slice(1));
  });

  it('pruning never removes the open run, however old, and an apply prunes to --keep-runs', async () => {
    for (const id of ['20210101T000000000Z-bbbbbb', '20220101T000000000Z-cccccc']) {
      await (await RunJournal.open(host, STATE, { id, type: 'apply', host: 'test-1', planned: [] })).close('applied');
    }
    await RunJournal.open(host, STATE, { id: '20200101T000000000Z-aaaaaa', type: 'apply', host: 'test-1', planned: [] }); // left open
    expect(await pruneRuns(host, STATE, 1)).toEqual(['20210101T000000000Z-bbbbbb']);
    expect((await listRuns(host, STATE)).map((r) => r.record.id)).toEqual(['20200101T000000000Z-aaaaaa', '20220101T000000000Z-cccccc']);

    // Through the CLI: the open run is rolled back first (and closed), then the apply keeps the newest 2.
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'a.yaml': file('a', '/srv/a.conf', 'one\n') });
    const r = await execa('node', [CLI, 'reconcile', '--repo', repoDir, '--host', 'test-1', '--root', root, '--keep-runs', '2', '--no-cache'], {
      reject: false,
    });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.exitCode).toBe(0);
    const left = await listRuns(host, STATE);
    expect(left.map((x) => x.record.id)[0]).toBe('20220101T000000000Z-cccccc');
    expect(left.map((x) => [x.record.commit, x.status])[1]).toEqual([undefined, 'applied']);
    expect(await read('srv/a.conf')).toBe('one\n');
    expect((await execa('node', [CLI, 'reconcile', '--repo', '.', '--keep-runs', '0'], { reject: false })).stderr).toContain(
      '--keep-runs expects a whole number of runs, at least 1, got 0',
    );
  });

  it('an open run found at start-up is rolled back before anything is planned; a dry run only warns', async () => {
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'one\n') });
    // What a process killed mid-run leaves: an open run whose change wrote its file.
    const journal = await RunJournal.open(host, STATE, { type: 'apply', host: 'test-1', planned: [{ id: 'file/srv/a.conf', kind: 'file', action: 'update' }] });
    await journal.backupFile('(inventory)', `${STATE}/inventory.json`);
    await journal.backupFile('file/srv/a.conf', '/srv/a.conf');
    await journal.event({ ev: 'begin', id: 'file/srv/a.conf' });
    await writeFile(path.join(root, 'srv/a.conf'), 'half-way\n');

    const dry = await apply({ 'a.yaml': file('a', '/srv/a.conf', 'two\n') }, undefined, true);
    expect(dry.stage === 'planned' && dry.planned.plan.diagnostics.map((d) => d.summary)).toContain('interrupted run');
    expect(await openRun(host, STATE)).toBeDefined();

    const recovered = await recoverInterruptedRun(host, STATE, silentLogger());
    expect(recovered?.run).toBe(journal.record.id);
    expect(await read('srv/a.conf')).toBe('one\n');
    expect(await openRun(host, STATE)).toBeUndefined();
    expect((await RunJournal.load(host, STATE, journal.record.id))!.status).toBe('interrupted-rolled-back');
    expect(await recoverInterruptedRun(host, STATE, silentLogger())).toBeUndefined();
  });

  it('a failed run is rolled back from its journal: the file an earlier change overwrote is put back', async () => {
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'one\n') });
    await writeFile(path.join(root, 'srv/blocked'), 'not a directory');
    const repoDir = await writeRepo({
      'hosts/test-1.yaml': HOST_YAML,
      'a.yaml': manifestYaml(fileDoc('a', '/srv/a.conf', 'two\n'), fileDoc('b', '/srv/blocked/b.conf', 'x\n')),
    });
    const outcome = await reconcileHost({ repoDir, hostName: 'test-1', host, dryRun: false, log: silentLogger(), env: {} });
    if (outcome.stage !== 'applied' || outcome.result.status !== 'rolled-back') throw new Error('expected a rolled-back run');
    expect(outcome.result.failed.id).toBe('file/srv/blocked/b.conf');
    expect(outcome.result.rollbackErrors).toEqual([]);
    expect(await read('srv/a.conf')).toBe('one\n');
  });

  it('the CLI lists runs and prints a down plan without changing anything', async () => {
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'one\n') }, 'c'.repeat(40));
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'two\n') }, 'd'.repeat(40));
    const env = { NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(os.tmpdir(), 'hostkit-cli-cache') };
    const runs = await execa('node', [CLI, 'runs', '--root', root, '-o', 'json'], { reject: false, env });
    expect(runs.exitCode).toBe(0);
    const listed = JSON.parse(runs.stdout) as { runs: { status: string; commit: string }[] };
    expect(listed.runs.map((r) => [r.status, r.commit[0]])).toEqual([
      ['applied', 'c'],
      ['applied', 'd'],
    ]);
    const text = await execa('node', [CLI, 'rollback', '--last', '--dry-run', '--root', root], { reject: false, env });
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('restore /srv/a.conf (4 bytes, mode 0640)');
    expect(text.stdout).toContain('Dry run: nothing was changed.');
    expect(await read('srv/a.conf')).toBe('two\n');
    const both = await execa('node', [CLI, 'rollback', '--root', root], { reject: false, env });
    expect(both.exitCode).toBe(1);
    expect(both.stderr).toContain('give exactly one of --last, --run ID, or --project NAME --to ID');
  });

  it('rollback holds the run lock, first rolls back a run a killed process left open, and refuses another machine', async () => {
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'one\n') }, 'c'.repeat(40));
    await apply({ 'a.yaml': file('a', '/srv/a.conf', 'two\n') }, 'd'.repeat(40));
    // A later run that died after changing the file: open, with its backup of the file as it was (two).
    const open = await RunJournal.open(host, STATE, { type: 'apply', host: 'test-1', planned: [{ id: 'file/srv/a.conf', kind: 'file', action: 'update' }] });
    await open.backupFile('file/srv/a.conf', '/srv/a.conf');
    await open.event({ ev: 'begin', id: 'file/srv/a.conf' });
    await writeFile(path.join(root, 'srv/a.conf'), 'half\n');
    const env = { NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(os.tmpdir(), 'hostkit-cli-cache') };
    const held = await flockFile(path.join(root, STATE, 'run.lock'), 0);
    const locked = await execa('node', [CLI, 'rollback', '--last', '--root', root, '--lock-timeout', '0'], { reject: false, env });
    expect(locked.exitCode).toBe(3);
    expect(await read('srv/a.conf')).toBe('half\n');
    await held!.release();
    const r = await execa('node', [CLI, 'rollback', '--last', '--root', root], { reject: false, env });
    expect(r.stderr).toContain('an interrupted run');
    expect(r.exitCode).toBe(0);
    expect(await read('srv/a.conf')).toBe('one\n'); // the interrupted run undone (two), then the last applied one (one)
    await writeFile(path.join(root, 'etc/hostname'), 'elsewhere\n');
    const other = await execa('node', [CLI, 'rollback', '--last', '--root', root], { reject: false, env });
    expect(other.exitCode).toBe(1);
    expect(other.stderr).toContain('this machine\'s hostname is "elsewhere"');
  });
});

describe('reconciler/apply/quarantine', () => {
  const fp = (name: string, fingerprint = 'f1') => ({ name, fingerprint });

  it('quarantines the failing commit until resume', async () => {
    const host = new FakeHost();
    await recordFailure(host, STATE, { commit: 'abc', reason: 'unit/x failed', projects: [fp('shop')] });
    expect(await isQuarantined(host, STATE, 'abc')).toMatchObject({ commit: 'abc', reason: 'unit/x failed', projects: ['shop'] });
    expect(await isQuarantined(host, STATE, 'def')).toBeUndefined();
    expect((await resume(host, STATE)).quarantined.map((q) => q.commit)).toEqual(['abc']);
    expect(await isQuarantined(host, STATE, 'abc')).toBeUndefined();
  });

  it.each([
    { limit: 3, windowMs: 60_000, gapsMs: [0, 10_000, 10_000], paused: true },
    { limit: 3, windowMs: 60_000, gapsMs: [0, 10_000], paused: false },
    { limit: 3, windowMs: 60_000, gapsMs: [0, 50_000, 50_000], paused: false }, // the first one left the window
    { limit: 1, windowMs: 1_000, gapsMs: [0], paused: true },
  ])('pauses after $limit failures within $windowMs ms (gaps $gapsMs): $paused', async ({ limit, windowMs, gapsMs, paused }) => {
    const host = new FakeHost();
    let t = Date.parse('2026-11-22T00:00:00Z');
    let last: Awaited<ReturnType<typeof recordFailure>> | undefined;
    for (const [i, gap] of gapsMs.entries()) {
      t += gap;
      last = await recordFailure(
        host,
        STATE,
        { commit: `c${i}`, reason: 'health/shop failed', projects: [fp('shop')], at: new Date(t) },
        { pauseAfterFailures: limit, failureWindowMs: windowMs },
      );
    }
    expect(last!.paused.map((p) => p.project)).toEqual(paused ? ['shop'] : []);
    expect((await safetyStatus(host, STATE)).paused.length).toBe(paused ? 1 : 0);
  });

  it('a paused project stays paused while its desired state is unchanged, and is released when a commit changes it', async () => {
    const host = new FakeHost();
    await recordFailure(host, STATE, { commit: 'c1', reason: 'x', projects: [fp('shop', 'aaa')] }, { pauseAfterFailures: 1, failureWindowMs: 60_000 });
    const same = await pausedProjects(host, STATE, new Map([['shop', 'aaa']]));
    expect(same.paused.map((p) => p.project)).toEqual(['shop']);
    const changed = await pausedProjects(host, STATE, new Map([['shop', 'bbb']]));
    expect(changed).toMatchObject({ paused: [], released: [{ project: 'shop' }] });
    expect((await safetyStatus(host, STATE)).paused).toEqual([]);
  });
});

describe("reconciler/apply/restore (what a restore keeps stays HostKit's)", () => {
  const host = manifestYaml({ kind: 'Host', name: TEST_HOST, spec: { stateDirectory: STATE } });
  // A project (not host-level): it may not take over an account HostKit did not create for it.
  const project = (name: string) =>
    manifestYaml({ kind: 'Project', name, on: [TEST_HOST], spec: { runtime: 'static', files: [{ name: 'app.conf', content: 'mode=static\n' }] } });
  const shop = project('shop');

  it('a project whose first apply was rolled back (its account kept) applies again', async () => {
    const fake = new FakeHost();
    fake.machineName = 'test-1';
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': host, 'projects/shop.yaml': shop });
    const run = () => reconcileHost({ repoDir, hostName: 'test-1', host: fake, dryRun: false, log: silentLogger(), env: {} });
    expect((await run()).stage).toBe('applied');
    const done = await rollbackRun(await findRun(fake, STATE, { last: true }), { dryRun: false, log: silentLogger() });
    expect(done.result!.warnings).toContain('account/shop: accounts are kept (they may own files)');
    expect(fake.text('/etc/passwd')).toMatch(/^shop:/m);
    const again = await run();
    expect(again.stage === 'applied' ? [] : again.stage === 'invalid' ? again.repo.diagnostics : again.planned.plan.diagnostics).toEqual([]);
    expect(again.stage === 'applied' && again.planned.plan.changes.find((c) => c.id === 'account/shop')?.action).toBe('noop');
  });

  it('two projects whose accounts one step made together (systemd-sysusers), killed before the second began, apply again after recovery', async () => {
    const cart = project('cart');
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': host, 'projects/shop.yaml': shop, 'projects/cart.yaml': cart });
    const { manifests } = await validateRepository(repoDir);
    // Killed (as by SIGKILL) at step `at` of the apply: nothing after it reaches the host.
    const killedAt = async (fake: FakeHost, at?: number) => {
      const killer = new KillSwitch(at);
      const planned = await planHost({ manifests, hostName: 'test-1', host: killable(fake, killer), mode: 'apply', log: silentLogger(), repository: 'r' });
      await applyPlan(planned).catch(() => undefined);
      return killer.steps;
    };
    const batch = (await killedAt(new FakeHost())).findIndex((s) => s.startsWith('systemd-sysusers')) + 1;
    const fake = new FakeHost();
    fake.machineName = 'test-1';
    await killedAt(fake, batch + 1);
    expect(fake.text('/etc/passwd')).toMatch(/^cart:/m);
    await recoverInterruptedRun(fake, STATE, silentLogger());
    const again = await reconcileHost({ repoDir, hostName: 'test-1', host: fake, dryRun: false, log: silentLogger(), env: {} });
    expect(again.stage === 'applied' ? [] : again.stage === 'invalid' ? again.repo.diagnostics : again.planned.plan.diagnostics).toEqual([]);
  });
});
