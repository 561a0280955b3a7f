import { describe, expect, it } from 'vitest';
import { driverContext } from '../../test/support/context.js';
import type { Resource, ResourceKind } from '../core/resource.js';
import { Redactor } from '../core/secrets.js';
import { summarize, type Change } from '../diff/model.js';
import type { PlannedHost } from '../diff/plan.js';
import { DriverRuns } from '../drivers/run.js';
import type { AnyDriver, DriverRestoreStep, Restore, RestoreContext, RestoreStep } from '../drivers/types.js';
import { FakeHost } from '../hosts/fake.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HelperChannel } from '../hosts/ssh-channel.js';
import { helperCommand, helperEndError, SshHost } from '../hosts/ssh.js';
import { applyPlan } from './executor.js';
import type { HealthCheck } from './health.js';
import { readInventory } from './inventory.js';
import { RunJournal } from './journal.js';
import { planRestore } from './restore.js';
import type { ApplyEvent } from './progress.js';

// A driver that records what happens to it, and fails verification where told. Its undo
// goes through the run journal as every driver's does: a record before it applies, a
// restore step for each change that began (none once its undo ran), and, when it
// settles, the same once-per-restore work after the steps.
function recorder(kind: ResourceKind, events: string[], failVerify = new Set<string>(), settles = false): AnyDriver {
  const restore: Restore<Change> = {
    backup: async (c, journal) => journal.backupState('applied', { id: c.id }),
    plan: async (c) => (c.begun && !c.ran ? [{ action: 'undo', resource: c.id }] : []),
    apply: async (step: DriverRestoreStep) => void events.push(`rollback ${step.resource}`),
    describe: (step: DriverRestoreStep) => `undo ${step.resource}`,
    ...(settles
      ? {
          after: {
            plan: async (steps: readonly RestoreStep[]) => (steps.some((s) => 'kind' in s && s.kind === kind) ? {} : undefined),
            describe: () => ['settle'],
            apply: async () => void events.push('settle'),
          },
        }
      : {}),
  };
  return {
    kind,
    rank: 0,
    orphans: 'delete',
    desire: async () => new Map(),
    observe: async () => new Map(),
    plan: () => {
      throw new Error('not used');
    },
    apply: async (c: Change) => void events.push(`apply ${c.id}`),
    verify: async (c: Change) => (failVerify.has(c.id) ? [{ severity: 'error' as const, summary: 'verification failed', detail: `${c.id} is wrong` }] : []),
    restore,
    ...(settles ? { settle: async () => void events.push('settle') } : {}),
  };
}

function change(id: string, action: Change['action'], irreversible = false, project?: string): Change {
  const kind = id.split('/')[0] as ResourceKind;
  const resource: Resource = { id, kind, name: id, spec: {}, dependsOn: [], origin: { file: 'x' } };
  return {
    id,
    kind,
    action,
    fields: [],
    ops: [],
    disruptive: false,
    diagnostics: [],
    resource,
    ...(irreversible ? { irreversible: true } : {}),
    ...(project ? { project } : {}),
  };
}

// A step's start and end as told() words, around what the driver was asked to do meanwhile.
const step = (what: string, meanwhile: string[] = [], failed = false) => [`step-start ${what}`, ...meanwhile, `step-end ${what}${failed ? ' failed' : ''}`];

// The events as "type id action" words (plus "rollback" and "failed" where so): their order is what is asserted.
function told(events: ApplyEvent[]): string[] {
  return events.map((e) => {
    if (e.type === 'rollback-start') return `rollback-start ${e.failed} ${e.changes}`;
    if (e.type === 'rollback-end') return `rollback-end ${e.ok ? 'ok' : 'failed'}`;
    const end = e.type === 'step-end' && !e.ok ? ' failed' : '';
    return `${e.type} ${e.rollback ? 'rollback ' : ''}${e.action} ${e.id}${end}`;
  });
}

function planned(changes: Change[], drivers: Map<ResourceKind, AnyDriver>): PlannedHost {
  const context = driverContext(new FakeHost());
  return {
    plan: { host: 'h', repository: 'r', changes, diagnostics: [], summary: summarize(changes) },
    resources: [],
    inventory: { version: 1, host: 'h', resources: {} },
    context,
    runs: new DriverRuns(context),
    drivers,
    redactor: new Redactor(),
    states: new Map(),
  };
}

describe('reconciler/apply/executor', () => {
  it('applies an irreversible change only after every other change applied and verified', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['pgdatabase', recorder('pgdatabase', events)],
      ['pgrole', recorder('pgrole', events)],
      ['file', recorder('file', events)],
    ]);
    const result = await applyPlan(planned([change('file/a', 'create'), change('pgdatabase/old', 'delete', true), change('pgrole/old', 'delete')], drivers));
    expect(result.status).toBe('applied');
    // The role's drop stays after the database's (it owned it), even though only the database's is irreversible.
    expect(events).toEqual(['apply file/a', 'apply pgdatabase/old', 'apply pgrole/old']);
  });

  it('never applies the irreversible change when another change fails verification', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['pgdatabase', recorder('pgdatabase', events)],
      ['file', recorder('file', events, new Set(['file/b']))],
    ]);
    const result = await applyPlan(planned([change('file/a', 'create'), change('file/b', 'create'), change('pgdatabase/old', 'delete', true)], drivers));
    expect(result.status).toBe('rolled-back');
    expect(events).toEqual(['apply file/a', 'apply file/b', 'rollback file/b', 'rollback file/a']);
  });

  it('verifies run side by side (16 at a time), and the first failure in plan order is the one reported', async () => {
    const events: string[] = [];
    let running = 0;
    let most = 0;
    const failing = new Set(['file/f07', 'file/f03', 'file/f30']);
    const base = recorder('file', events, failing);
    const slow: AnyDriver = {
      ...base,
      verify: async (c: Change, ctx, run) => {
        running++;
        most = Math.max(most, running);
        // The later failure answers first: the report must not depend on timing.
        await new Promise((r) => setTimeout(r, c.id === 'file/f07' ? 1 : 20));
        running--;
        return base.verify(c, ctx, run);
      },
    };
    const changes = Array.from({ length: 40 }, (_, i) => change(`file/f${String(i).padStart(2, '0')}`, 'create'));
    const result = await applyPlan(planned(changes, new Map([['file', slow]])));
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed.id).toBe('file/f03');
    expect(most).toBe(16);
  });

  it('with `only`, applies just those changes; the others are neither applied nor held, and keep their inventory entries as last applied', async () => {
    const events: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([['file', recorder('file', events)]]);
    const changes = [change('file/a', 'update'), change('file/b', 'update'), change('file/c', 'create'), change('file/old', 'delete')];
    const p = planned(changes, drivers);
    p.resources = changes.filter((c) => c.resource && c.action !== 'delete').map((c) => ({ ...c.resource!, spec: { version: 2 } }));
    const entry = (id: string) => ({ id, kind: 'file' as const, name: id, spec: { version: 1 }, dependsOn: [], origin: { file: 'x' } });
    p.inventory = { version: 1, host: 'h', resources: { 'file/a': entry('file/a'), 'file/b': entry('file/b'), 'file/old': entry('file/old') } };
    const result = await applyPlan(p, { only: new Set(['file/a']) });
    expect(result.status).toBe('applied');
    expect(result.held).toBeUndefined();
    expect(events).toEqual(['apply file/a']);
    const inventory = await readInventory(p.context.host, p.context.stateDirectory, 'h');
    expect(Object.keys(inventory.resources).sort()).toEqual(['file/a', 'file/b', 'file/old']); // file/c not created, file/old not deleted
    expect(inventory.resources['file/a']!.spec).toEqual({ version: 2 });
    expect(inventory.resources['file/b']!.spec).toEqual({ version: 1 });
  });

  it('tells progress as each step starts and ends, around its work: a failing step, then the rollback of what applied, newest first, and its settle', async () => {
    const seen: string[] = [];
    const unit = recorder('unit', seen, new Set(), true);
    const file = {
      ...recorder('file', seen),
      apply: async (c: Change) => (c.id === 'file/c' ? Promise.reject(new Error('disk full')) : void seen.push(`apply ${c.id}`)),
    };
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['file', file],
      ['unit', unit],
    ]);
    const events: ApplyEvent[] = [];
    const result = await applyPlan(planned([change('file/a', 'create'), change('unit/b', 'update'), change('file/c', 'create')], drivers), {
      progress: (e) => {
        events.push(e);
        seen.push(...told([e]));
      },
    });
    expect(result.status).toBe('rolled-back');
    expect(seen).toEqual([
      ...step('create file/a', ['apply file/a']),
      ...step('update unit/b', ['apply unit/b']),
      ...step('create file/c', [], true),
      'rollback-start file/c 2',
      // The failing change began: it may be half made, so its restore runs first.
      ...step('rollback create file/c', ['rollback file/c']),
      ...step('rollback update unit/b', ['rollback unit/b']),
      ...step('rollback create file/a', ['rollback file/a']),
      ...step('rollback settle unit', ['settle']),
      'rollback-end ok',
    ]);
    for (const e of events) expect(typeof e.at).toBe('number');
    for (const e of events) if (e.type === 'step-end') expect(e.ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(events)).not.toContain('disk full'); // ids and actions only
  });

  it('tells the settle and the health check of an apply; a failing health check ends failed and the run rolls back', async () => {
    const log: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([['unit', recorder('unit', log, new Set(), true)]]);
    const p = planned([change('unit/app', 'create', false, 'app')], drivers);
    (p.context.host as FakeHost).onExec((call) => (call.file === 'systemctl' ? { exitCode: 0, stdout: 'failed\n', stderr: '' } : undefined));
    const check: HealthCheck = { project: 'app', unit: 'hostkit-app.service', timeoutMs: 1_000, retries: 0 };
    const events: ApplyEvent[] = [];
    const result = await applyPlan(p, { health: new Map([['app', check]]), progress: (e) => events.push(e) });
    expect(result.status).toBe('rolled-back');
    expect(told(events)).toEqual([
      ...step('create unit/app'),
      ...step('settle unit'),
      ...step('health health/app', [], true),
      'rollback-start health/app 1',
      ...step('rollback create unit/app'),
      ...step('rollback settle unit'),
      'rollback-end ok',
    ]);
  });

  it('before a change whose driver asks to settle first (WithSettleFirst), the drivers applied so far settle; the others wait for the end', async () => {
    const log: string[] = [];
    const unit = { ...recorder('unit', log), settle: async () => void log.push('settle unit') };
    // As an after-start lifecycle command: only the changes it names settle first.
    const command = { ...recorder('command', log), settleFirst: (c: Change) => c.id === 'command/after' };
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['unit', unit],
      ['command', command],
    ]);
    const result = await applyPlan(planned([change('command/before', 'create'), change('unit/app', 'update'), change('command/after', 'create')], drivers));
    expect(result.status).toBe('applied');
    expect(log).toEqual(['apply command/before', 'apply unit/app', 'settle unit', 'apply command/after']);
  });

  it('records in the journal that a restore step ran its undo (RestoreContext.ran), for that change only, and a later restore of the run does not run it again', async () => {
    const log: string[] = [];
    const declares = recorder('unit', log);
    const undo = declares.restore.apply!;
    declares.restore.apply = async (step: DriverRestoreStep, ctx: RestoreContext) => {
      await undo(step, ctx);
      await ctx.ran(true);
    };
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['unit', declares],
      ['command', recorder('command', log)],
      ['file', recorder('file', log, new Set(['file/b']))],
    ]);
    const p = planned([change('command/migrate', 'create'), change('unit/app', 'create'), change('file/b', 'create')], drivers);
    const result = await applyPlan(p);
    expect(result.status).toBe('rolled-back');
    expect(log).toEqual(['apply command/migrate', 'apply unit/app', 'apply file/b', 'rollback file/b', 'rollback unit/app', 'rollback command/migrate']);
    const journal = await RunJournal.load(p.context.host, p.context.stateDirectory, result.run!);
    expect(journal!.events.filter((e) => e.ev === 'down')).toEqual([expect.objectContaining({ ev: 'down', id: 'unit/app', ok: true })]);
    const again = await planRestore(journal!, drivers);
    expect(again.steps.map((s) => s.resource).filter((id) => id !== '(inventory)')).toEqual(['file/b', 'command/migrate']);
  });

  it('a host that pipelines writes (flush) is flushed at the end of each change, settle and verify, and before success is reported', async () => {
    const log: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([
      ['file', recorder('file', log)],
      ['unit', recorder('unit', log, new Set(), true)],
    ]);
    const p = planned([change('file/a', 'create'), change('unit/b', 'update')], drivers);
    const host = p.context.host as FakeHost & { flush?: () => Promise<void> };
    host.flush = async () => void log.push('flush');
    const result = await applyPlan(p);
    expect(result.status).toBe('applied');
    // apply, apply, settle, verify (no write of its own), then the inventory and the journal's end before 'applied' is returned.
    expect(log).toEqual(['apply file/a', 'flush', 'apply unit/b', 'flush', 'settle', 'flush', 'flush', 'flush']);

    const none = planned([], new Map());
    const flushed: string[] = [];
    (none.context.host as FakeHost & { flush?: () => Promise<void> }).flush = async () => void flushed.push('flush');
    expect((await applyPlan(none)).status).toBe('no-changes');
    expect(flushed).toEqual(['flush']);
  });

  it('a write that fails on the host (told by flush) is the failure of the change that sent it: the run rolls back from it', async () => {
    const log: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([['file', recorder('file', log)]]);
    const p = planned([change('file/a', 'create'), change('file/b', 'create'), change('file/c', 'create')], drivers);
    let calls = 0;
    (p.context.host as FakeHost & { flush?: () => Promise<void> }).flush = async () => {
      calls++;
      if (calls === 2) throw Object.assign(new Error("ENOSPC: No space left on device, write '/etc/b' on ssh:h (write sent earlier)"), { code: 'ENOSPC' });
    };
    const result = await applyPlan(p);
    expect(result.status).toBe('rolled-back');
    if (result.status !== 'rolled-back') return;
    expect(result.failed).toMatchObject({ id: 'file/b', error: expect.stringContaining("ENOSPC: No space left on device, write '/etc/b'") });
    expect(result.rollbackErrors).toEqual([]);
    // file/b applied as far as its driver knew: it is restored with file/a; file/c never started.
    expect(log).toEqual(['apply file/a', 'apply file/b', 'rollback file/b', 'rollback file/a']);
  });

  it('a progress listener that throws costs nothing but its own events', async () => {
    const log: string[] = [];
    const drivers = new Map<ResourceKind, AnyDriver>([['file', recorder('file', log)]]);
    let calls = 0;
    const result = await applyPlan(planned([change('file/a', 'create'), change('file/b', 'create')], drivers), {
      progress: () => {
        calls++;
        throw new Error('stderr closed');
      },
    });
    expect(result.status).toBe('applied');
    expect(log).toEqual(['apply file/a', 'apply file/b']);
    expect(calls).toBe(1);
  });
});

// The engine over SshHost's helper, run by this machine's python3 (no SSH): what pipelined writes do to an apply.
describe.skipIf(!existsSync('/usr/bin/python3'))('reconciler/apply/executor over a host that pipelines writes', () => {
  it('a write that fails on the host fails the change that sent it, even when a read after it swallowed the error; nothing after it runs; the run rolls back and its journal says so', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-pipelined-apply-'));
    const child = spawn('/bin/sh', ['-c', helperCommand(false)], { stdio: 'pipe' });
    const host = new SshHost({
      name: 'ssh:spec',
      target: { host: 'spec' },
      channel: await HelperChannel.start(child, 'ssh:spec', (end) => helperEndError('ssh:spec', end)),
    });
    try {
      const log: string[] = [];
      const own = { uid: 0, gid: 0, mode: 0o644 };
      const writer: AnyDriver = {
        ...recorder('file', log),
        apply: async (c: Change) => {
          log.push(`apply ${c.id}`);
          const name = c.id.split('/')[1]!;
          await host.writeFile(name === 'b' ? `${dir}/missing/${name}` : `${dir}/${name}`, `${name}\n`, own);
          await new Promise((resolve) => setTimeout(resolve, 100)); // work here meanwhile: the failure is back before the read
          // A best-effort read, as drivers do: the failure must not vanish with its error.
          await host.readFile(`${dir}/${name}.optional`).catch(() => undefined);
          await host.writeFile(`${dir}/${name}-after`, 'after\n', own);
        },
      };
      const p = planned([change('file/a', 'create'), change('file/b', 'create'), change('file/c', 'create')], new Map([['file', writer]]));
      const context = { ...driverContext(host), stateDirectory: path.join(dir, 'state') };
      await host.mkdir(context.stateDirectory, { uid: 0, gid: 0, mode: 0o700 });
      const result = await applyPlan({ ...p, context, runs: new DriverRuns(context) });
      expect(result).toMatchObject({
        status: 'rolled-back',
        failed: { id: 'file/b', error: expect.stringContaining(`write '${dir}/missing/b'`) },
        rollbackErrors: [],
      });
      expect(log).toEqual(['apply file/a', 'apply file/b', 'rollback file/b', 'rollback file/a']);
      expect(existsSync(`${dir}/a-after`)).toBe(true);
      expect(existsSync(`${dir}/b-after`)).toBe(false);
      expect(existsSync(`${dir}/c`)).toBe(false);
      // The notes after the failure were written: the journal says which change failed, and that the run rolled back.
      const [run] = await readdir(path.join(dir, 'state', 'runs'));
      const events = (await readFile(path.join(dir, 'state', 'runs', run!, 'events.jsonl'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { ev: string; id?: string; status?: string });
      expect(events.find((e) => e.ev === 'failed')).toMatchObject({ id: 'file/b' });
      expect(events.at(-1)).toMatchObject({ ev: 'end', status: 'rolled-back' });
    } finally {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
