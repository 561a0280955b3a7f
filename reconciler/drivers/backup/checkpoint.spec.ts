import { describe, expect, it } from 'vitest';
import { checkpointWorld } from '../../../test/support/fake-restic.js';
import { manifestYaml, type ManifestInput } from '../../../test/support/manifests.js';
import { applyPlan } from '../../apply/executor.js';
import { RunJournal } from '../../apply/journal.js';
import { rollbackRun } from '../../apply/rollback.js';
import { silentLogger } from '../../core/log.js';
import type { ResourceKind } from '../../core/resource.js';
import { planHost } from '../../diff/plan.js';
import { FakeHost } from '../../hosts/fake.js';
import { validateFiles } from '../../manifests/index.js';
import type { AnyDriver } from '../types.js';
import { forgetPrunedCheckpoints, restoreCheckpoint, takeCheckpoint } from './checkpoint.js';
import { resticAccess } from './job.js';

// The guard pass over a project's checkpoint, planned and applied on a fake host: a fake
// PostgreSQL server, restic and systemd-run (test/support/fake-restic.ts).

const ENV = { SHOP_DB: 'shop-db-secret-1', RESTIC_PW: 'restic-secret-2' };
const STATE = '/var/lib/hostkit';

function shop(command?: string): ManifestInput {
  return {
    kind: 'Project',
    name: 'shop',
    on: ['web-1'],
    spec: {
      runtime: 'static',
      files: [{ name: 'app.conf', content: 'mode=static\n' }],
      database: { password: { env: 'SHOP_DB' } },
      ...(command ? { lifecycle: [{ name: 'migrate', phase: 'before-start', command: ['/usr/bin/touch', command] }] } : {}),
    },
  };
}

function world() {
  const host = new FakeHost();
  const fake = checkpointWorld(host);
  const drivers = new Map<ResourceKind, AnyDriver>(
    fake.drivers!({ step: () => undefined, alive: () => undefined, onDeath: () => undefined }).map((d) => [d.kind, d]),
  );
  const plan = async (project: ManifestInput) => {
    const hostManifest: ManifestInput = {
      kind: 'Host',
      name: 'web-1',
      spec: { stateDirectory: STATE, secrets: { env: Object.keys(ENV) }, backup: { password: { env: 'RESTIC_PW' } } },
    };
    const files = [
      { file: 'hosts/web-1.yaml', bytes: new TextEncoder().encode(manifestYaml(hostManifest)) },
      { file: 'projects/shop.yaml', bytes: new TextEncoder().encode(manifestYaml(project)) },
    ];
    const repo = await validateFiles(files);
    expect(repo.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    return planHost({
      manifests: repo.manifests,
      hostName: 'web-1',
      host,
      mode: 'apply',
      log: silentLogger(),
      repository: 'test',
      stateDirectory: STATE,
      env: ENV,
      drivers,
    });
  };
  const checkpoint = async (project: ManifestInput) => {
    const planned = await plan(project);
    return { planned, change: planned.plan.changes.find((c) => c.id === 'checkpoint/shop')! };
  };
  return { host, restic: fake.restic, server: fake.server, drivers, plan, checkpoint };
}

describe('reconciler/drivers/backup/checkpoint: the guard pass', () => {
  it('noop when the database is created in the same run as the command: there is nothing to keep yet', async () => {
    const { host, checkpoint } = world();
    const { planned, change } = await checkpoint(shop('marker'));
    expect(planned.plan.changes.find((c) => c.id === 'pgdatabase/shop')!.action).toBe('create');
    expect(planned.plan.changes.find((c) => c.id === 'command/shop-migrate')!.action).toBe('create');
    expect(change).toMatchObject({ action: 'noop', ops: [] });
    await applyPlan(planned);
    expect(host.calls.filter((c) => c.file === 'restic' || c.file === 'bash')).toEqual([]);
  });

  it('update (op checkpoint) when a guarded command is pending on an existing database; the apply dumps it first, tagged with the run', async () => {
    const { host, restic, checkpoint } = world();
    expect((await applyPlan((await checkpoint(shop())).planned)).status).toBe('applied');
    const { planned, change } = await checkpoint(shop('marker'));
    expect(change).toMatchObject({
      action: 'update',
      ops: [{ op: 'checkpoint', database: 'shop' }],
      reason: 'database shop is dumped before command/shop-migrate',
    });
    const result = await applyPlan(planned);
    expect(result.status).toBe('applied');
    // One dump, before the command ran (systemd-run), tagged with the run that took it.
    expect(restic.tagged('kind=checkpoint', 'project=shop', `run=${result.run}`)).toHaveLength(1);
    const order = host.calls.map((c) => c.file).filter((f) => f === 'bash' || f === 'systemd-run');
    expect(order).toEqual(['bash', 'systemd-run']);
    expect(JSON.parse(host.text(`${STATE}/backups/checkpoints.json`)!)).toEqual({ runs: { [result.run!]: [restic.snapshots[0]!.id] } });
  });

  it('noop when nothing it guards is pending: a second plan spawns no restic', async () => {
    const { host, checkpoint } = world();
    await applyPlan((await checkpoint(shop())).planned);
    await applyPlan((await checkpoint(shop('marker'))).planned);
    const before = host.calls.length;
    const { planned, change } = await checkpoint(shop('marker'));
    expect(change).toMatchObject({ action: 'noop', ops: [] });
    expect(planned.plan.changes.filter((c) => c.action !== 'noop').map((c) => c.id)).toEqual([]);
    expect(host.calls.slice(before).filter((c) => c.file === 'restic' || c.file === 'bash')).toEqual([]);
  });
});

describe('reconciler/drivers/backup/checkpoint: checkpoints go with their runs', () => {
  // A host with the project's database and restic's environment, as an apply leaves them.
  async function ready() {
    const w = world();
    await applyPlan((await w.checkpoint(shop('marker'))).planned);
    return { ...w, access: await resticAccess(w.host) };
  }

  it('forgets the snapshots of runs whose journals were pruned, and keeps the others', async () => {
    const { host, restic, access } = await ready();
    const old = await takeCheckpoint(access, STATE, { database: 'shop', project: 'shop', run: 'run-old' });
    const kept = await takeCheckpoint(access, STATE, { database: 'shop', project: 'shop', run: 'run-kept' });
    expect(await forgetPrunedCheckpoints(host, STATE, new Set(['run-kept']))).toEqual([old.snapshot]);
    expect(restic.snapshots.map((s) => s.id)).toEqual([kept.snapshot]);
    expect(restic.commands.some((c) => c.includes('--prune'))).toBe(true);
    expect(JSON.parse(host.text(`${STATE}/backups/checkpoints.json`)!)).toEqual({ runs: { 'run-kept': [kept.snapshot] } });
  });

  it('a run that died after its dump, before indexing it, leaves no snapshot behind once its journal is pruned', async () => {
    const { host, restic, access } = await ready();
    const index = `${STATE}/backups/checkpoints.json`;
    const dumped = restic.snapshots.length;
    // The dump is in restic; writing the index after it fails (a kill, a full disk).
    host.onExec((call) => {
      if (call.file === 'bash') host.failOn.add(index);
      return undefined;
    });
    await expect(takeCheckpoint(access, STATE, { database: 'shop', project: 'shop', run: 'run-died' })).rejects.toThrow(/simulated failure/);
    expect(restic.snapshots).toHaveLength(dumped + 1);
    host.failOn.delete(index);
    await forgetPrunedCheckpoints(host, STATE, new Set());
    expect(restic.tagged('run=run-died')).toEqual([]);
  });
});

describe('reconciler/drivers/backup/checkpoint: restoring one', () => {
  it('replaces the live database with the dump, under its name and owner, and leaves no working database behind', async () => {
    const w = world();
    await applyPlan((await w.checkpoint(shop('marker'))).planned);
    const access = await resticAccess(w.host);
    const taken = await takeCheckpoint(access, STATE, { database: 'shop', project: 'shop', run: 'run-1' });
    // What the run being undone did to the data after the dump.
    w.server.databases.get('shop')!.extensions.add('pgcrypto');
    await restoreCheckpoint(access, STATE, { database: 'shop', project: 'shop', snapshot: taken.snapshot, units: [] });
    expect([...w.server.databases.keys()].sort()).toEqual(['postgres', 'shop']);
    expect(w.server.databases.get('shop')).toMatchObject({ owner: 'shop', extensions: new Set(['plpgsql']) });
    // The dump went into a new database first; the live one was swapped out in one transaction.
    const sql = w.host.calls.filter((c) => c.file === 'runuser').map((c) => c.args.at(-1)!);
    expect(sql.findIndex((q) => q.startsWith('CREATE DATABASE "hk_restoring_shop"'))).toBeLessThan(
      sql.findIndex((q) => q.startsWith('BEGIN; ALTER DATABASE "shop"')),
    );
  });

  it('a snapshot that cannot be read leaves the live database as it was', async () => {
    const w = world();
    await applyPlan((await w.checkpoint(shop('marker'))).planned);
    const access = await resticAccess(w.host);
    await takeCheckpoint(access, STATE, { database: 'shop', project: 'shop', run: 'run-1' });
    w.server.databases.get('shop')!.extensions.add('pgcrypto');
    await expect(restoreCheckpoint(access, STATE, { database: 'shop', project: 'shop', snapshot: 'deadbeef', units: [] })).rejects.toThrow(
      /failed to find snapshot/,
    );
    expect([...w.server.databases.keys()].sort()).toEqual(['postgres', 'shop']);
    expect(w.server.databases.get('shop')!.extensions).toEqual(new Set(['plpgsql', 'pgcrypto']));
  });

  // A run that took a checkpoint (the command changed), then `hostkit rollback --with-data` of it after `change` touched the data.
  async function rolledBackWithData(change: (w: ReturnType<typeof world>) => void) {
    const w = world();
    await applyPlan((await w.checkpoint(shop('marker'))).planned);
    const run = (await applyPlan((await w.checkpoint(shop('marker-2'))).planned)).run!;
    const [taken] = w.restic.tagged(`run=${run}`);
    change(w);
    const journal = (await RunJournal.load(w.host, STATE, run))!;
    const done = await rollbackRun(journal, { dryRun: false, log: silentLogger(), drivers: new Map([...w.drivers]), withData: true });
    return { ...w, taken: taken!, done, run };
  }

  it('hostkit rollback --with-data: the data back as the checkpoint holds it, what it replaced checkpointed in the rollback run', async () => {
    const { server, restic, done, taken } = await rolledBackWithData((w) => w.server.databases.get('shop')!.extensions.add('pgcrypto'));
    expect(done.result!.errors).toEqual([]);
    expect(server.databases.get('shop')!.extensions).toEqual(new Set(['plpgsql']));
    const undo = restic.tagged(`run=${done.run}`);
    expect(undo).toHaveLength(1);
    expect(JSON.parse(undo[0]!.content)).toMatchObject({ extensions: ['pgcrypto', 'plpgsql'] });
    expect(JSON.parse(taken.content)).toMatchObject({ extensions: ['plpgsql'] });
  });

  it('hostkit rollback --with-data of a database dropped since: created again from the checkpoint, owned by its role', async () => {
    const { server, done } = await rolledBackWithData((w) => w.server.databases.delete('shop'));
    expect(done.result!.errors).toEqual([]);
    expect(server.databases.get('shop')).toMatchObject({ owner: 'shop', extensions: new Set(['plpgsql']) });
  });
});
