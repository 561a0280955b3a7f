import { describe, expect, it } from 'vitest';
import { driverContext } from '../../../test/support/context.js';
import type { Resource } from '../../core/resource.js';
import type { FirewallSpec } from '../../core/specs.js';
import type { Change } from '../../diff/model.js';
import { HostKitError } from '../../core/errors.js';
import { FakeHost } from '../../hosts/fake.js';
import { FakeFirewall } from '../../../test/support/fake-nft.js';
import type { DriverContext } from '../types.js';
import { RunJournal } from '../../apply/journal.js';
import { backupChange } from '../../apply/backups.js';
import { applyRestore, planRestore } from '../../apply/restore.js';
import { JournaledRun } from '../../../test/support/undo.js';
import { BOOT_LINK, BOOT_UNIT_PATH, NO_BOOT, readBoot, renderBootFile, renderBootUnit, type BootState } from './boot.js';
import { desiredTable } from './desired.js';
import {
  createNftablesDriver,
  nftablesDriver,
  restoreTransaction,
  type ConfirmCheck,
  type DesiredFirewall,
  type FirewallOp,
  type ObservedFirewall,
} from './index.js';
import { tableLines, type Statement, type Table } from './model.js';
import { DELETE_TRANSACTION, renderTable, renderTransaction } from './render.js';

const REVERT_FILE = '/var/lib/hostkit/nftables-revert.nft';
const BOOT_FILE = '/var/lib/hostkit/firewall/confirmed.nft';
type FirewallChange = Change<DesiredFirewall, ObservedFirewall, FirewallSpec, FirewallOp>;

const SPEC: FirewallSpec = {
  input: 'drop',
  ssh: { port: 22, from: [] },
  openings: [{ port: 8080, protocol: 'tcp', from: ['10.0.0.0/8'], for: 'Project/api' }],
};

function resource(spec: FirewallSpec = SPEC): Resource<FirewallSpec> {
  return { id: 'firewall/hostkit', kind: 'firewall', name: 'hostkit', spec, dependsOn: [], origin: { file: 'hosts/web-1.yaml', pointer: '/spec/firewall' } };
}

function table(spec: FirewallSpec): Table {
  return desiredTable(spec).table;
}

function withRule(t: Table, statements: Statement[], at?: number): Table {
  const chain = t.chains[0]!;
  const rules = [...chain.rules];
  rules.splice(at ?? rules.length, 0, { statements });
  return { ...t, chains: [{ ...chain, rules }] };
}

function withoutRule(t: Table, index: number): Table {
  const chain = t.chains[0]!;
  return { ...t, chains: [{ ...chain, rules: chain.rules.filter((_, i) => i !== index) }] };
}

// The boot copy of SPEC's table, as a confirmed apply leaves it.
const BOOT: BootState = { file: renderBootFile(renderTransaction(table(SPEC))), unit: renderBootUnit(BOOT_FILE), enabled: true };

function observed(t: Table, boot: BootState = BOOT): ObservedFirewall {
  return { live: { table: t, lines: tableLines(t) }, boot };
}

async function desire(spec: FirewallSpec, ctx: DriverContext, driver = nftablesDriver) {
  const r = resource(spec);
  const w = (await driver.desire([r], ctx)).get(r.id)!;
  return { r, ...w };
}

// Plan, the way the engine does it: desire, observe (one process), plan.
async function planWith(fw: FakeFirewall, ctx: DriverContext, spec: FirewallSpec = SPEC, driver = nftablesDriver) {
  const { r, desired } = await desire(spec, ctx, driver);
  fw.know(desired.table);
  const o = (await driver.observe([r], ctx)).get(r.id);
  return driver.plan({ resource: r, desired, observed: o, orphan: false }) as FirewallChange;
}

const commands = (host: FakeHost) => host.calls.map((c) => [c.file, ...c.args].join(' '));
const readBootState = (host: FakeHost) => readBoot(host, BOOT_FILE);

describe('reconciler/drivers/nftables', () => {
  const desired: DesiredFirewall = {
    table: table(SPEC),
    lines: tableLines(table(SPEC)),
    transaction: 'unused in plan',
    confirmTimeoutMs: 60_000,
    boot: BOOT,
  };
  const live = table(SPEC);

  it.each<[string, ObservedFirewall | undefined, { orphan?: boolean; desired?: DesiredFirewall | undefined }, Partial<FirewallChange>, RegExp[]]>([
    [
      'table missing',
      undefined,
      {},
      { action: 'create', reason: 'table missing' },
      [/^\+chain input \{ type filter hook input priority 0; policy drop; \}$/m, /^\+ {2}iif "lo" accept$/m],
    ],
    ['table as desired', observed(live), {}, { action: 'noop' }, []],
    [
      'a rule deleted by hand',
      observed(withoutRule(live, 5)),
      {},
      { action: 'update', reason: '1 line(s) to add, 0 to remove' },
      [/^\+ {2}ip saddr 10\.0\.0\.0\/8 tcp dport 8080 accept comment "Project\/api"$/m],
    ],
    [
      'a rule added by hand',
      observed(
        withRule(live, [
          { kind: 'dport', protocol: 'tcp', port: 3306 },
          { kind: 'verdict', verdict: 'accept' },
        ]),
      ),
      {},
      { action: 'update', reason: '0 line(s) to add, 1 to remove' },
      [/^- {2}tcp dport 3306 accept$/m],
    ],
    [
      'the same rules in another order (order matters to a firewall)',
      observed({ ...live, chains: [{ ...live.chains[0]!, rules: [...live.chains[0]!.rules].reverse() }] }),
      {},
      { action: 'update' },
      [/^- {2}\S/m, /^\+ {2}\S/m],
    ],
    [
      'policy accept on the host, drop desired',
      observed(table({ ...SPEC, input: 'accept' })),
      {},
      { action: 'update' },
      [/^-chain input \{ type filter hook input priority 0; policy accept; \}$/m, /^\+chain input .*policy drop; \}$/m],
    ],
    ['orphan whose table exists', observed(live), { orphan: true, desired: undefined }, { action: 'delete' }, [/^- {2}iif "lo" accept$/m]],
    ['orphan already gone', undefined, { orphan: true, desired: undefined }, { action: 'noop', reason: 'already removed' }, []],
  ])('plan: %s', (_title, obs, opts, expected, diffs) => {
    const change = nftablesDriver.plan({
      resource: resource(),
      desired: 'desired' in opts ? opts.desired : desired,
      observed: obs,
      orphan: opts.orphan ?? false,
    }) as FirewallChange;
    expect(change).toMatchObject(expected);
    const diff = change.fields.map((f) => f.diff ?? '').join('\n');
    for (const d of diffs) expect(diff).toMatch(d);
    expect(change.disruptive).toBe(false);
  });

  it('plan: reports the policy change as its own field', () => {
    const change = nftablesDriver.plan({ resource: resource(), desired, observed: observed(table({ ...SPEC, input: 'accept' })), orphan: false });
    expect(change.fields[0]).toEqual({ field: '/input', before: 'accept', after: 'drop' });
  });

  it.each<[string, ObservedFirewall | undefined, { orphan?: boolean }, Partial<FirewallChange>, FirewallChange['fields']]>([
    [
      'table as desired, no boot copy (a host from before boot copies, or the files removed)',
      observed(live, NO_BOOT),
      {},
      { action: 'update', reason: 'the table is live; its boot copy is not' },
      [
        {
          field: '/boot',
          before: 'table file missing, hostkit-firewall.service missing, hostkit-firewall.service not enabled',
          after: 'hostkit-firewall.service loads this table at boot',
          diff: expect.stringMatching(/^\+After=nftables\.service$/m) as unknown as string,
        },
      ],
    ],
    [
      'table as desired, unit disabled by hand',
      observed(live, { ...BOOT, enabled: false }),
      {},
      { action: 'update' },
      [{ field: '/boot', before: 'hostkit-firewall.service not enabled', after: 'hostkit-firewall.service loads this table at boot' }],
    ],
    [
      'table missing: the boot copy is part of the create',
      undefined,
      {},
      { action: 'create' },
      [
        expect.objectContaining({ field: '/table' }) as never,
        expect.objectContaining({ field: '/boot', before: expect.stringMatching(/^table file missing/) }) as never,
      ],
    ],
    [
      'table missing, boot copy current (after a reboot without the unit running)',
      { boot: BOOT },
      {},
      { action: 'create', reason: 'table missing' },
      [expect.objectContaining({ field: '/table' }) as never],
    ],
    [
      'orphan with table and boot copy',
      observed(live),
      { orphan: true },
      { action: 'delete', reason: 'no manifest declares a firewall any more: the table is removed' },
      [expect.objectContaining({ field: '/table' }) as never, { field: '/boot', before: 'table file, hostkit-firewall.service (enabled)', after: 'absent' }],
    ],
    [
      'orphan whose table is gone but whose boot copy would bring it back at the next boot',
      { boot: BOOT },
      { orphan: true },
      { action: 'delete', reason: 'no manifest declares a firewall any more: its boot copy is removed' },
      [{ field: '/boot', before: 'table file, hostkit-firewall.service (enabled)', after: 'absent' }],
    ],
  ])('plan (boot copy): %s', (_title, obs, opts, expected, fields) => {
    const change = nftablesDriver.plan({ resource: resource(), desired: opts.orphan ? undefined : desired, observed: obs, orphan: opts.orphan ?? false });
    expect(change).toMatchObject(expected);
    expect(change.fields).toEqual(fields);
  });

  it('plan: a table nft could not read (dry run) is an update with a warning, not an error', () => {
    const change = nftablesDriver.plan({ resource: resource(), desired, observed: { unreadable: 'spawn nft ENOENT' }, orphan: false });
    expect(change).toMatchObject({ action: 'update', reason: 'the live table could not be read' });
    expect(change.diagnostics).toEqual([expect.objectContaining({ severity: 'warning', summary: 'firewall not observed' })]);
  });

  it('observes with one `nft -j list table` and nothing else (the boot copy is read as files)', async () => {
    const host = new FakeHost();
    new FakeFirewall(host, live);
    const o = await nftablesDriver.observe([resource()], driverContext(host, { mode: 'plan' }));
    expect(commands(host)).toEqual(['nft -j list table inet hostkit']);
    expect(o.get('firewall/hostkit')).toEqual(observed(live, NO_BOOT));
    host.seedFile(BOOT_FILE, BOOT.file!);
    host.seedFile(BOOT_UNIT_PATH, BOOT.unit!);
    host.seedFile(BOOT_LINK, '');
    expect((await nftablesDriver.observe([resource()], driverContext(host, { mode: 'plan' }))).get('firewall/hostkit')).toEqual(observed(live));
  });

  it('observe: nft missing fails an apply run but lets a dry run plan', async () => {
    const host = new FakeHost();
    host.onExec((call) => {
      if (call.file === 'nft') throw new Error('spawn nft ENOENT');
      return undefined;
    });
    await expect(nftablesDriver.observe([resource()], driverContext(host))).rejects.toThrow(/ENOENT/);
    const o = await nftablesDriver.observe([resource()], driverContext(host, { mode: 'plan' }));
    expect(o.get('firewall/hostkit')).toEqual({ unreadable: 'spawn nft ENOENT' });
  });

  it('observe: nft not installed (the host cannot run it: a package of the run installs it first) is no table, in an apply too', async () => {
    const host = new FakeHost();
    host.onExec((call) => {
      if (call.file === 'nft')
        throw new HostKitError('EXEC_FAILED', 'Could not run nft on nspawn:web-1: nsenter: failed to execute nft: No such file or directory');
      return undefined;
    });
    expect((await nftablesDriver.observe([resource()], driverContext(host))).get('firewall/hostkit')).toBeUndefined();
  });

  it('desire: confirmTimeout from the Host manifest, 60 s by default; an unsafe spec is an error, never rendered', async () => {
    const ctx = driverContext(new FakeHost());
    expect((await desire(SPEC, ctx)).desired.confirmTimeoutMs).toBe(60_000);
    ctx.hostManifest = { ...ctx.hostManifest, spec: { firewall: { confirmTimeout: '3s' } } };
    expect((await desire(SPEC, ctx)).desired.confirmTimeoutMs).toBe(3_000);
    ctx.hostManifest = { ...ctx.hostManifest, spec: { firewall: { confirmTimeout: '500ms' } } };
    expect((await desire(SPEC, ctx)).diagnostics).toEqual([expect.objectContaining({ severity: 'warning', summary: 'confirm timeout short' })]);
    ctx.hostManifest = { ...ctx.hostManifest, spec: {} };
    const bad = await desire({ ...SPEC, openings: [{ port: 8080, protocol: 'tcp', from: ['10.0.0.0/8 accept; flush ruleset'], for: 'Project/api' }] }, ctx);
    expect(bad.diagnostics).toEqual([expect.objectContaining({ severity: 'error', summary: 'firewall not rendered' })]);
    expect(bad.desired.transaction).toBe('');
    expect(nftablesDriver.plan({ resource: bad.r, desired: bad.desired, observed: undefined, orphan: false }).action).toBe('noop');
  });

  it('create: checks, saves "absent", arms the revert, loads once; settle confirms and disarms; verify reads back', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    expect(change.action).toBe('create');
    host.calls.length = 0;

    const undo = await nftablesDriver.apply(change, ctx);
    expect(commands(host)).toEqual([
      expect.stringMatching(/^systemd-analyze verify --no-pager \/run\/hostkit\/verify-[0-9a-f]+\/hostkit-firewall\.service$/),
      'nft -c -f -',
      'systemctl is-active hostkit-nft-revert.timer',
      'nft list table inet hostkit',
      'systemd-run --unit=hostkit-nft-revert --description=HostKit: restore the previous firewall table (commit-confirmed) --on-active=60000ms --timer-property=AccuracySec=100ms --collect --quiet -- nft -f /var/lib/hostkit/nftables-revert.nft',
      'nft -f -',
    ]);
    expect(host.calls[1]!.input).toBe(change.desired!.transaction);
    expect(host.calls[5]!.input).toBe(change.desired!.transaction);
    expect(host.text(REVERT_FILE)).toBe(restoreTransaction(undefined));
    expect(host.text(REVERT_FILE)).toContain(DELETE_TRANSACTION);
    expect((await host.stat(REVERT_FILE))?.mode).toBe(0o600);
    expect(undo).toEqual({ restore: restoreTransaction(undefined), armed: true, boot: { before: NO_BOOT, changed: false } });
    expect(fw.armed).toBeDefined();
    // Not confirmed yet: nothing for the next boot.
    expect([host.text(BOOT_FILE), host.text(BOOT_UNIT_PATH), host.text(BOOT_LINK)]).toEqual([undefined, undefined, undefined]);

    host.calls.length = 0;
    await nftablesDriver.settle!([{ change, undo }], ctx, 'apply');
    expect(commands(host)).toEqual([
      'nft -j list table inet hostkit',
      `nft -c -f ${REVERT_FILE}`,
      'systemctl stop hostkit-nft-revert.timer hostkit-nft-revert.service',
      'systemctl enable --no-reload -- hostkit-firewall.service',
      'systemctl daemon-reload',
    ]);
    expect(fw.armed).toBeUndefined();
    expect(host.text(BOOT_FILE)).toBe(renderBootFile(change.desired!.transaction));
    expect(await host.stat(BOOT_FILE)).toMatchObject({ mode: 0o600, uid: 0, gid: 0 });
    expect(await host.stat('/var/lib/hostkit/firewall')).toMatchObject({ type: 'directory', mode: 0o700, uid: 0 });
    expect(host.text(BOOT_UNIT_PATH)).toBe(renderBootUnit(BOOT_FILE));
    expect(await host.stat(BOOT_UNIT_PATH)).toMatchObject({ mode: 0o644, uid: 0 });
    expect(host.text(BOOT_LINK)).toBeDefined();
    expect(undo.boot.changed).toBe(true);
    expect(await nftablesDriver.verify(change, ctx)).toEqual([]);
    expect(tableLines(fw.live!)).toEqual(change.desired!.lines);
    // The file the unit loads at boot restores exactly the confirmed table on a host that has none.
    fw.live = undefined;
    expect((await host.exec('nft', ['-f', BOOT_FILE])).exitCode).toBe(0);
    expect(tableLines(fw.live!)).toEqual(change.desired!.lines);
  });

  it('apply twice: the second plan is a noop, so no second transaction, no write and no daemon-reload', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx);
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    host.calls.length = 0;
    host.writes.length = 0;
    const second = await planWith(fw, ctx);
    expect(second).toMatchObject({ action: 'noop', fields: [] });
    expect(commands(host)).toEqual(['nft -j list table inet hostkit']);
    expect(host.writes).toEqual([]);
  });

  it('a table change with the boot unit in place rewrites the boot file only: no unit check, no enable, no daemon-reload', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx, { ...SPEC, openings: [] });
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    host.calls.length = 0;
    host.writes.length = 0;
    const change = await planWith(fw, ctx);
    expect(change.fields.map((f) => f.field)).toEqual(['/rules', '/boot']);
    expect(change.fields[1]).toEqual({ field: '/boot', before: 'table file holds another table', after: 'hostkit-firewall.service loads this table at boot' });
    const undo = await nftablesDriver.apply(change, ctx);
    await nftablesDriver.settle!([{ change, undo }], ctx, 'apply');
    expect(commands(host).filter((c) => !c.startsWith('nft ') && !c.includes('hostkit-nft-revert'))).toEqual([]);
    expect(host.writes).toEqual([REVERT_FILE, BOOT_FILE]);
    expect(host.text(BOOT_FILE)).toBe(renderBootFile(change.desired!.transaction));
  });

  it('update: the revert file holds the previous table text, restorable in one transaction', async () => {
    const host = new FakeHost();
    const before = table({ ...SPEC, openings: [] });
    const fw = new FakeFirewall(host, before);
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    expect(change.action).toBe('update');
    const undo = await nftablesDriver.apply(change, ctx);
    expect(host.text(REVERT_FILE)).toBe(restoreTransaction(renderTable(before)));
    expect(undo.restore).toBe(host.text(REVERT_FILE));
    expect(tableLines(fw.live!)).toEqual(change.desired!.lines);
  });

  it('a table nft -c rejects is never loaded: no revert armed, nothing saved, nft message reported', async () => {
    const host = new FakeHost();
    const before = table({ ...SPEC, openings: [] });
    const fw = new FakeFirewall(host, before);
    const ctx = driverContext(host);
    const driver = createNftablesDriver({ rewriteTransaction: (t) => t.replace('tcp dport 8080', 'tcp dport 99999') });
    const change = await planWith(fw, ctx, SPEC, driver);
    expect(change.action).toBe('update');
    host.calls.length = 0;
    await expect(driver.apply(change, ctx)).rejects.toThrow(
      /nft rejected the rendered table; nothing was changed: nft -c -f - exited 1: .*Error: Service out of range/,
    );
    expect(commands(host)).toEqual([expect.stringMatching(/^systemd-analyze verify /), 'nft -c -f -']);
    expect(fw.live).toBe(before);
    expect(fw.armed).toBeUndefined();
    expect(host.text(REVERT_FILE)).toBeUndefined();
    expect(host.text(BOOT_FILE)).toBeUndefined();
  });

  it('a boot unit systemd-analyze rejects fails apply before anything changes', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    host.onExec((call) =>
      call.file === 'systemd-analyze' ? { exitCode: 1, stdout: '', stderr: `${call.args[2]}: Failed to load: Invalid argument\n` } : undefined,
    );
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    host.writes.length = 0;
    await expect(nftablesDriver.apply(change, ctx)).rejects.toMatchObject({
      code: 'UNIT_INVALID',
      message: expect.stringMatching(/hostkit-firewall\.service/),
    });
    expect(fw.live).toBeUndefined();
    expect(host.writes.filter((w) => !w.startsWith('/run/hostkit'))).toEqual([]);
  });

  it('a failed confirm check leaves the revert armed and fails settle; rollback restores the previous table and disarms', async () => {
    const host = new FakeHost();
    const before = table({ ...SPEC, openings: [] });
    const fw = new FakeFirewall(host, before);
    const ctx = driverContext(host);
    const refuse: ConfirmCheck = async () => ['probe to 192.0.2.1:22 timed out'];
    const driver = createNftablesDriver({ confirm: refuse });
    const change = await planWith(fw, ctx, SPEC, driver);
    const run = await JournaledRun.open(ctx, [change], [driver]);
    const undo = await run.apply(driver, change);
    await expect(driver.settle!([{ change, undo }], ctx, 'apply')).rejects.toMatchObject({
      code: 'FIREWALL_NOT_CONFIRMED',
      data: { resourceId: 'firewall/hostkit' },
      message: expect.stringMatching(/probe to 192\.0\.2\.1:22 timed out.*hostkit-nft-revert\.timer restores the previous table within 60000 ms/),
    });
    expect(fw.armed).toBeDefined(); // still armed: if this agent is cut off, systemd puts the old table back
    expect(host.text(BOOT_FILE)).toBeUndefined(); // never confirmed: never written for the next boot

    host.calls.length = 0;
    await run.rollback();
    expect(commands(host)).toEqual([
      'nft list table inet hostkit',
      'nft -f -',
      'systemctl is-active hostkit-nft-revert.timer',
      'systemctl stop hostkit-nft-revert.timer hostkit-nft-revert.service',
    ]);
    expect(host.calls[1]!.input).toBe(restoreTransaction(renderTable(before)));
    expect(tableLines(fw.live!)).toEqual(tableLines(before));
    expect(fw.armed).toBeUndefined();
  });

  it('a confirm check that throws (host unreachable) counts as failed', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const driver = createNftablesDriver({
      confirm: async () => {
        throw new Error('ssh: connection timed out');
      },
    });
    const change = await planWith(fw, ctx, SPEC, driver);
    const undo = await driver.apply(change, ctx);
    await expect(driver.settle!([{ change, undo }], ctx, 'apply')).rejects.toThrow(/ssh: connection timed out/);
    // The agent never comes back: the timer fires and the table is gone again, as it was.
    fw.fire();
    expect(fw.live).toBeUndefined();
  });

  it('the default check fails when the live table is not the one just loaded (e.g. the revert already fired)', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    const undo = await nftablesDriver.apply(change, ctx);
    fw.fire();
    await expect(nftablesDriver.settle!([{ change, undo }], ctx, 'apply')).rejects.toThrow(/table inet hostkit is missing/);
  });

  it('a failed load disarms the revert it armed and reports nft', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host, live);
    fw.failLoad = true;
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx, { ...SPEC, input: 'accept' });
    await expect(nftablesDriver.apply(change, ctx)).rejects.toThrow(/nft -f failed; the transaction was not applied: .*No buffer space available/);
    expect(fw.armed).toBeUndefined();
    expect(fw.live).toBe(live);
  });

  it('a revert left armed by a run that died keeps its saved table (the last confirmed one) and is re-armed', async () => {
    const host = new FakeHost();
    const confirmed = table({ ...SPEC, openings: [] });
    const fw = new FakeFirewall(host, confirmed);
    const ctx = driverContext(host);
    // The run that died: applied SPEC, never confirmed.
    const died = await planWith(fw, ctx);
    await nftablesDriver.apply(died, ctx);
    expect(fw.armed).toBeDefined();

    const next = { ...SPEC, input: 'accept' as const };
    const change = await planWith(fw, ctx, next);
    host.calls.length = 0;
    const undo = await nftablesDriver.apply(change, ctx);
    expect(commands(host)).toEqual([
      expect.stringMatching(/^systemd-analyze verify /),
      'nft -c -f -',
      'systemctl is-active hostkit-nft-revert.timer',
      'systemctl stop hostkit-nft-revert.timer hostkit-nft-revert.service',
      expect.stringMatching(/^systemd-run --unit=hostkit-nft-revert /),
      'nft -f -',
    ]);
    expect(undo.restore).toBe(restoreTransaction(renderTable(confirmed)));
    fw.fire();
    expect(tableLines(fw.live!)).toEqual(tableLines(confirmed));
  });

  it('an orphan table is deleted in one transaction (no other table named); rollback puts it back', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host, live);
    const ctx = driverContext(host);
    const o = (await nftablesDriver.observe([resource()], ctx)).get('firewall/hostkit');
    const change = nftablesDriver.plan({ resource: resource(), desired: undefined, observed: o, orphan: true }) as FirewallChange;
    expect(change.action).toBe('delete');
    const run = await JournaledRun.open(ctx, [change]);
    host.calls.length = 0;
    await run.apply(nftablesDriver, change);
    expect(commands(host).slice(1)).toEqual(['nft list table inet hostkit', 'nft -f -']); // after the journal's own read of the table
    expect(host.calls.at(-1)!.input).toBe(DELETE_TRANSACTION);
    expect(fw.live).toBeUndefined();
    expect(await nftablesDriver.verify(change, ctx)).toEqual([]);
    await run.rollback();
    expect(tableLines(fw.live!)).toEqual(tableLines(live));
  });

  it('verify reports a live table that differs from the applied one', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    await nftablesDriver.settle!([{ change, undo: await nftablesDriver.apply(change, ctx) }], ctx, 'apply');
    fw.live = withoutRule(fw.live!, 2);
    expect(await nftablesDriver.verify(change, ctx)).toEqual([
      expect.objectContaining({
        severity: 'error',
        summary: 'firewall not as desired',
        detail: expect.stringMatching(/^- {2}tcp dport 22 accept comment "ssh"$/m),
      }),
    ]);
  });

  it('boot copy missing, table live: apply loads no table, settle writes the boot copy; apply again is a noop', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host, live);
    const ctx = driverContext(host);
    const change = await planWith(fw, ctx);
    expect(change.fields.map((f) => f.field)).toEqual(['/boot']);
    const run = await JournaledRun.open(ctx, [change]);
    const undo = await run.apply(nftablesDriver, change);
    host.calls.length = 0;
    await nftablesDriver.apply(change, ctx); // again, to see its commands alone
    expect(commands(host)).toEqual([expect.stringMatching(/^systemd-analyze verify /), 'systemctl is-active hostkit-nft-revert.timer']);
    expect(undo).toEqual({ armed: false, boot: { before: NO_BOOT, changed: false } });
    host.calls.length = 0;
    await nftablesDriver.settle!([{ change, undo }], ctx, 'apply');
    expect(commands(host)).toEqual(['systemctl enable --no-reload -- hostkit-firewall.service', 'systemctl daemon-reload']);
    expect(host.text(BOOT_FILE)).toBe(BOOT.file);
    expect(await nftablesDriver.verify(change, ctx)).toEqual([]);
    expect((await planWith(fw, ctx)).action).toBe('noop');
    // Rolled back (a later step failed): the boot copy goes, the table stays as it was.
    host.calls.length = 0;
    await run.rollback();
    expect(commands(host)).toEqual(expect.arrayContaining(['systemctl disable --now hostkit-firewall.service', 'systemctl daemon-reload']));
    expect(commands(host).filter((c) => c === 'nft -f -')).toEqual([]);
    expect(await readBootState(host)).toEqual(NO_BOOT);
    expect(fw.live).toBe(live);
  });

  it('boot copy missing while a revert is armed (a run died before confirming): the live table is confirmed before it is written for boot', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host, table({ ...SPEC, openings: [] }));
    const ctx = driverContext(host);
    await nftablesDriver.apply(await planWith(fw, ctx), ctx); // died here: SPEC live, unconfirmed
    const change = await planWith(fw, ctx);
    expect(change.fields.map((f) => f.field)).toEqual(['/boot']);
    const undo = await nftablesDriver.apply(change, ctx);
    expect(undo.armed).toBe(true);
    const refuse: ConfirmCheck = async () => ['forced'];
    await expect(createNftablesDriver({ confirm: refuse }).settle!([{ change, undo }], ctx, 'apply')).rejects.toThrow(/forced/);
    expect(host.text(BOOT_FILE)).toBeUndefined();
    fw.fire();
    expect(tableLines(fw.live!)).toEqual(tableLines(table({ ...SPEC, openings: [] })));
  });

  it('a later step fails after the change was confirmed: rollback puts back the previous table and its boot copy', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx, { ...SPEC, openings: [] });
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    const previous = host.text(BOOT_FILE);
    const change = await planWith(fw, ctx);
    const run = await JournaledRun.open(ctx, [change]);
    const undo = await run.apply(nftablesDriver, change);
    await nftablesDriver.settle!([{ change, undo }], ctx, 'apply');
    expect(host.text(BOOT_FILE)).toBe(BOOT.file);
    host.calls.length = 0;
    host.writes.length = 0;
    await run.rollback();
    // The unit was left alone: no enable, no daemon-reload.
    expect(commands(host).filter((c) => !c.startsWith('nft list'))).toEqual(['nft -f -', 'systemctl is-active hostkit-nft-revert.timer']);
    expect(host.writes).toEqual([BOOT_FILE]);
    expect(host.text(BOOT_FILE)).toBe(previous);
    expect(tableLines(fw.live!)).toEqual(tableLines(table({ ...SPEC, openings: [] })));
  });

  it('a firewall removed: the boot copy goes (disabled, unit and file removed), then the table; rollback brings both back, enabled', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx);
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    const installed = await readBootState(host);
    const o = (await nftablesDriver.observe([resource()], ctx)).get('firewall/hostkit');
    const change = nftablesDriver.plan({ resource: resource(), desired: undefined, observed: o, orphan: true }) as FirewallChange;
    const run = await JournaledRun.open(ctx, [change]);
    host.calls.length = 0;
    await run.apply(nftablesDriver, change);
    expect(commands(host).slice(1)).toEqual([
      // after the journal's own read of the table
      'nft list table inet hostkit',
      'systemctl disable --now --no-reload -- hostkit-firewall.service',
      'systemctl daemon-reload',
      'nft -f -',
    ]);
    expect(await readBootState(host)).toEqual(NO_BOOT);
    expect(fw.live).toBeUndefined();
    expect(await nftablesDriver.verify(change, ctx)).toEqual([]);
    await run.rollback();
    expect(await readBootState(host)).toEqual(installed);
    expect(tableLines(fw.live!)).toEqual(first.desired!.lines);
  });

  it('a firewall removal whose table cannot be removed puts the boot copy back before it fails', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx);
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    const installed = await readBootState(host);
    const o = (await nftablesDriver.observe([resource()], ctx)).get('firewall/hostkit');
    const change = nftablesDriver.plan({ resource: resource(), desired: undefined, observed: o, orphan: true }) as FirewallChange;
    fw.failLoad = true;
    await expect(nftablesDriver.apply(change, ctx)).rejects.toThrow(/No buffer space available/);
    expect(await readBootState(host)).toEqual(installed);
    expect(tableLines(fw.live!)).toEqual(first.desired!.lines);
  });

  it('the run journal backs up the boot copy with the table; a restore from it puts back the file and the unit, enabled again', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = driverContext(host);
    const first = await planWith(fw, ctx);
    await nftablesDriver.settle!([{ change: first, undo: await nftablesDriver.apply(first, ctx) }], ctx, 'apply');
    const installed = await readBootState(host);
    // A run that removes the firewall, journalled as the executor does it.
    const o = (await nftablesDriver.observe([resource()], ctx)).get('firewall/hostkit');
    const change = nftablesDriver.plan({ resource: resource(), desired: undefined, observed: o, orphan: true }) as FirewallChange;
    const journal = await RunJournal.open(host, ctx.stateDirectory, { type: 'apply', host: 'test-1', planned: [] });
    await backupChange(journal, change, nftablesDriver, ctx);
    await journal.event({ ev: 'begin', id: change.id });
    await nftablesDriver.apply(change, ctx);
    await journal.close('applied');
    expect(await readBootState(host)).toEqual(NO_BOOT);

    const plan = await planRestore(journal);
    expect(plan.steps.map((st) => `${st.action} ${'path' in st ? st.path : ''}`)).toEqual([
      `restore-file ${BOOT_FILE}`,
      `restore-file ${BOOT_UNIT_PATH}`,
      'restore-firewall ',
    ]);
    expect(plan.after.flatMap((a) => a.lines)).toEqual(expect.arrayContaining([expect.stringMatching(/enable.*hostkit-firewall\.service/)]));
    host.calls.length = 0;
    const result = await applyRestore(plan, journal, { log: ctx.log });
    expect(result.errors).toEqual([]);
    expect(commands(host)).toContain('systemctl enable --no-reload -- hostkit-firewall.service');
    expect(await readBootState(host)).toEqual(installed);
    expect(tableLines(fw.live!)).toEqual(first.desired!.lines);
  });

  it('refuses a state directory that could not be passed safely to systemd-run or a unit: an error in the plan, and apply refuses it too', async () => {
    const host = new FakeHost();
    const fw = new FakeFirewall(host);
    const ctx = { ...driverContext(host), stateDirectory: '/var/lib/host kit%n' };
    const { diagnostics } = await desire(SPEC, ctx);
    expect(diagnostics).toEqual([
      expect.objectContaining({ severity: 'error', detail: expect.stringMatching(/Refusing state directory .* for the firewall boot file/) }),
    ]);
    await expect(nftablesDriver.observe([resource()], ctx)).rejects.toThrow(/Refusing state directory/);
    const change = await planWith(fw, driverContext(host));
    await expect(nftablesDriver.apply(change, ctx)).rejects.toThrow(/Refusing state directory/);
    expect(fw.live).toBeUndefined();
    expect(fw.armed).toBeUndefined();
  });
});

describe('reconciler/drivers/nftables operations', () => {
  const desired: DesiredFirewall = { table: table(SPEC), lines: tableLines(table(SPEC)), transaction: 'unused in plan', confirmTimeoutMs: 60_000, boot: BOOT };
  const live = table(SPEC);
  it.each<[string, DesiredFirewall | undefined, ObservedFirewall | undefined, FirewallOp[]]>([
    ['table missing: loaded, and its boot copy written once confirmed', desired, undefined, [{ op: 'load' }, { op: 'write-boot' }]],
    ['table missing, boot copy current: loaded only', desired, { boot: BOOT }, [{ op: 'load' }]],
    ['a rule deleted by hand: loaded again', desired, observed(withoutRule(live, 5)), [{ op: 'load' }]],
    ['table live, no boot copy: the boot copy only', desired, observed(live, NO_BOOT), [{ op: 'write-boot' }]],
    ['as desired: nothing', desired, observed(live), []],
    ['not rendered: refused, nothing', { ...desired, refused: 'bad address' }, observed(live), []],
    ['orphan: removed', undefined, observed(live), [{ op: 'remove' }]],
    ['a table nft could not read: loaded and its boot copy written', desired, { unreadable: 'spawn nft ENOENT' }, [{ op: 'load' }, { op: 'write-boot' }]],
  ])('%s', (_title, d, o, ops) => {
    expect(nftablesDriver.plan({ resource: resource(), desired: d, observed: o, orphan: d === undefined }).ops).toEqual(ops);
  });
});
