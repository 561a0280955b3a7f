import { readdir, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { directoryManifest, envFileManifest, fileManifest, HOST_YAML, scratchRoot, TESTER_ACCOUNT, writeRepo } from '../test/support/fixtures.js';
import { manifestYaml } from '../test/support/manifests.js';
import { silentLogger } from './core/log.js';
import type { ResourceKind } from './core/resource.js';
import { drivers } from './drivers/registry.js';
import type { AnyDriver } from './drivers/types.js';
import { reconcileHost, type ReconcileOutcome } from './engine.js';
import type { LocalHost } from './hosts/local.js';

const ACCOUNT = TESTER_ACCOUNT;
const dir = directoryManifest;
const file = fileManifest;
const ENVFILE = envFileManifest('HK_TEST_TOKEN');

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string) {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      const st = await stat(full);
      const rel = '/' + path.relative(root, full);
      if (e.isDirectory()) {
        out[rel] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(full);
      } else out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${(await readFile(full)).toString('base64')}`;
    }
  }
  await walk(root);
  return out;
}

describe('reconciler/engine (apply into a scratch root)', () => {
  let root: string;
  let host: LocalHost;
  let cleanup: () => Promise<void>;
  const env = { HK_TEST_TOKEN: 'tok-abcdef-123456' };

  beforeEach(async () => {
    ({ root, host, cleanup } = await scratchRoot());
  });
  afterEach(async () => cleanup());

  async function run(files: Record<string, string>, dryRun = false): Promise<ReconcileOutcome> {
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, ...files });
    return reconcileHost({ repoDir, hostName: 'test-1', host, dryRun, log: silentLogger(), env });
  }

  const repo = {
    'projects/a.yaml': manifestYaml(ACCOUNT, dir('app', '/srv/app'), file('conf', '/srv/app/app.conf', 'x=1\n'), ENVFILE),
  };

  it('applies, then a second apply of the same manifests changes nothing', async () => {
    const first = await run(repo);
    expect(first.stage).toBe('applied');
    if (first.stage !== 'applied') return;
    expect(first.result.status === 'rolled-back' ? first.result.failed : 'ok').toBe('ok');
    expect(first.result.steps.map((s) => s.id)).toEqual(['directory/srv/app', 'envfile/srv/app/app.env', 'file/srv/app/app.conf']);
    expect(await readFile(path.join(root, 'srv/app/app.env'), 'utf8')).toContain('TOKEN="tok-abcdef-123456"');
    const before = await tree(root);

    const second = await run(repo);
    expect(second.stage).toBe('applied');
    if (second.stage !== 'applied') return;
    expect(second.result.status).toBe('no-changes');
    expect(second.planned.plan.summary).toMatchObject({ create: 0, update: 0, delete: 0, replace: 0 });
    const after = await tree(root);
    delete before['/var/lib/hostkit/inventory.json'];
    delete after['/var/lib/hostkit/inventory.json'];
    expect(after).toEqual(before);
  });

  it('a dry run of another machine warns naming it, unless the mismatch is meant (--host-mismatch-ok): then the plan names no machine', async () => {
    await writeFile(path.join(root, 'etc/hostname'), 'laptop-7\n');
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, ...repo });
    const plan = async (hostMismatchOk: boolean) => {
      const outcome = await reconcileHost({
        repoDir,
        hostName: 'test-1',
        host,
        dryRun: true,
        log: silentLogger(),
        env,
        ...(hostMismatchOk ? { hostMismatchOk } : {}),
      });
      if (outcome.stage !== 'planned') throw new Error(`expected a plan, got ${outcome.stage}`);
      return JSON.stringify(outcome.planned.plan.diagnostics);
    };
    expect(await plan(false)).toContain('reports the hostname \\"laptop-7\\"');
    expect(await plan(true)).not.toContain('laptop-7');
  });

  it('a dry run changes nothing on the host', async () => {
    const before = await tree(root);
    const outcome = await run(repo, true);
    expect(outcome.stage).toBe('planned');
    if (outcome.stage === 'planned') expect(outcome.planned.plan.summary.create).toBe(3);
    expect(await tree(root)).toEqual(before);
  });

  it('a failure part-way rolls back everything this run applied and records nothing but the run journal', async () => {
    // /srv/blocked is a file, so writing /srv/blocked/b.conf fails after the directory and the first file were written.
    await mkdir(path.join(root, 'srv'), { recursive: true });
    await writeFile(path.join(root, 'srv/blocked'), 'not a directory');
    const before = await tree(root);
    const outcome = await run({
      'projects/a.yaml': manifestYaml(
        ACCOUNT,
        dir('app', '/srv/app'),
        file('conf', '/srv/app/app.conf', 'x=1\n'),
        file('blocked', '/srv/blocked/b.conf', 'y\n'),
      ),
    });
    expect(outcome.stage).toBe('applied');
    if (outcome.stage !== 'applied') return;
    expect(outcome.result.status).toBe('rolled-back');
    if (outcome.result.status !== 'rolled-back') return;
    expect(outcome.result.failed.id).toBe('file/srv/blocked/b.conf');
    expect(outcome.result.failed.error).toMatch(/ENOTDIR|not a directory/);
    expect(outcome.result.rollbackErrors).toEqual([]);
    const after = await tree(root);
    const state = Object.keys(after).filter((k) => k === '/var' || k === '/var/lib' || k.startsWith('/var/lib/hostkit'));
    for (const k of state) delete after[k];
    expect(after).toEqual(before);
    // The journal says what happened; the inventory was never written.
    expect(state).toContain(`/var/lib/hostkit/runs/${outcome.result.run}/events.jsonl`);
    expect(state).not.toContain('/var/lib/hostkit/inventory.json');
    const events = await readFile(path.join(root, `var/lib/hostkit/runs/${outcome.result.run}/events.jsonl`), 'utf8');
    expect(events.trim().split('\n').at(-1)).toContain('"status":"rolled-back"');
  });

  it('prunes a file HostKit wrote once its manifest is gone, and leaves foreign files alone', async () => {
    await run({ ...repo, 'projects/extra.yaml': manifestYaml(file('extra', '/srv/app/extra.conf', 'e\n')) });
    await writeFile(path.join(root, 'srv/app/foreign.conf'), 'not ours');
    const outcome = await run(repo, true);
    expect(outcome.stage).toBe('planned');
    if (outcome.stage !== 'planned') return;
    const del = outcome.planned.plan.changes.find((c) => c.id === 'file/srv/app/extra.conf');
    expect(del).toMatchObject({ action: 'delete', reason: 'no manifest declares it any more' });
    const applied = await run(repo);
    expect(applied.stage === 'applied' && applied.result.status).toBe('applied');
    await expect(stat(path.join(root, 'srv/app/extra.conf'))).rejects.toThrow();
    expect(await readFile(path.join(root, 'srv/app/foreign.conf'), 'utf8')).toBe('not ours');
  });

  it('keeps a directory whose manifest is gone and reports it as an orphan on every run', async () => {
    await run({ ...repo, 'projects/data.yaml': manifestYaml(dir('data', '/srv/data')) });
    for (let i = 0; i < 2; i++) {
      const outcome = await run(repo);
      expect(outcome.stage).toBe('applied');
      if (outcome.stage !== 'applied') return;
      expect(outcome.planned.plan.changes.find((c) => c.id === 'directory/srv/data')).toMatchObject({ action: 'noop', orphan: true });
      expect((await stat(path.join(root, 'srv/data'))).isDirectory()).toBe(true);
    }
  });

  it('drift made by hand is planned as an update and healed by the next apply', async () => {
    await run(repo);
    await writeFile(path.join(root, 'srv/app/app.conf'), 'x=2\n');
    const plan = await run(repo, true);
    expect(plan.stage === 'planned' && plan.planned.plan.changes.find((c) => c.id === 'file/srv/app/app.conf')?.action).toBe('update');
    await run(repo);
    expect(await readFile(path.join(root, 'srv/app/app.conf'), 'utf8')).toBe('x=1\n');
  });

  it("makes each driver's state once per run, hands that one to every call of the run, from desire to rollback, and closes the run at its end", async () => {
    const file = drivers.get('file')!;
    const made: object[] = [];
    const closes: MockInstance[] = [];
    const calls: [string, unknown][] = [];
    const tracked: AnyDriver = {
      ...file,
      createRun: (ctx) => {
        closes.push(vi.spyOn(ctx.run, 'close'));
        made.push({ run: made.length + 1 });
        return made.at(-1);
      },
      desire: (resources, ctx, state) => (calls.push(['desire', state]), file.desire(resources, ctx, undefined)),
      observe: (resources, ctx, state) => (calls.push(['observe', state]), file.observe(resources, ctx, undefined)),
      apply: (change, ctx, state) => (calls.push(['apply', state]), file.apply(change, ctx, undefined)),
      settle: async (_items, _ctx, phase, state) => void calls.push([`settle ${phase}`, state]),
      // The first run fails here, so it rolls back.
      verify: async (change, _ctx, state) => (
        calls.push(['verify', state]),
        [{ severity: 'error' as const, summary: 'verification failed', detail: change.id }]
      ),
    };
    const repoDir = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, ...repo });
    const input = { repoDir, hostName: 'test-1', host, log: silentLogger(), env, drivers: new Map<ResourceKind, AnyDriver>([...drivers, ['file', tracked]]) };
    const applied = await reconcileHost({ ...input, dryRun: false });
    expect(applied.stage === 'applied' && applied.result.status).toBe('rolled-back');
    expect(made).toHaveLength(1);
    // Observing starts first (drivers observe concurrently), then desire; after them, the apply in its phases. The rollback
    // is a restore from the run journal, which needs no run state (crash recovery has none).
    expect(calls.map(([call]) => call)).toEqual(['observe', 'desire', 'apply', 'settle apply', 'verify']);
    for (const [, state] of calls) expect(state).toBe(made[0]);
    expect(closes[0]).toHaveBeenCalledTimes(1);

    calls.length = 0;
    expect((await reconcileHost({ ...input, dryRun: true })).stage).toBe('planned');
    expect(made).toHaveLength(2);
    expect(calls.map(([call]) => call)).toEqual(['observe', 'desire']);
    for (const [, state] of calls) expect(state).toBe(made[1]);
    expect(closes[1]).toHaveBeenCalledTimes(1);
  });

  it('refuses to run commands against a re-rooted host (they would act on this machine)', async () => {
    await expect(host.exec('useradd', ['x'])).rejects.toThrow(/re-rooted/);
  });
});
