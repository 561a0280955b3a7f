import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { declaredOn, OPERATE_HOST, PLAIN_SETTING, SHOP } from '../../test/support/operate.js';
import { manifestYaml } from '../../test/support/manifests.js';
import { C1, C2, V1, V2 } from '../../test/support/releases.js';
import { RunJournal } from '../apply/journal.js';
import { holdRelease, recordFailure } from '../apply/quarantine.js';
import type { Resource } from '../core/resource.js';
import { summarize, type Change, type Plan } from '../diff/model.js';
import { COLOR } from '../diff/render/style.js';
import { selfSignedArgs } from '../drivers/certificate/selfsigned.js';
import { appendSwitch, currentLink, MARKER, releaseDir, type ReleaseMarker } from '../drivers/release/records.js';
import { FakeHost } from '../hosts/fake.js';
import { schemaDir } from '../manifests/schemas.js';
import { collectStatus, type UnitStatus } from './status.js';
import { renderStatusMarkdown, renderStatusText, unitRow } from './status-render.js';

const STATE = '/var/lib/hostkit';
const CERT = '/etc/hostkit/tls/shop.example.test/fullchain.pem';
const APPLIED = 'a'.repeat(40);
const FAILED = 'b'.repeat(40);
const NOW = new Date('2026-11-22T06:00:00Z');

// What systemctl show prints for each unit, in the order asked.
const SHOWN: Record<string, string> = {
  'hk-shop.service':
    'Id=hk-shop.service\nLoadState=loaded\nActiveState=active\nSubState=running\nActiveEnterTimestamp=@1795321800\nNRestarts=2\nMemoryCurrent=12897484',
  'hk-shop-mailer.service':
    'Id=hk-shop-mailer.service\nLoadState=loaded\nActiveState=failed\nSubState=failed\nActiveEnterTimestamp=\nNRestarts=5\nMemoryCurrent=[not set]',
  'hk-shop-cleanup.timer':
    'Id=hk-shop-cleanup.timer\nLoadState=loaded\nActiveState=active\nSubState=waiting\nActiveEnterTimestamp=@1795255200\nNRestarts=\nMemoryCurrent=[not set]',
  'hk-shop-cleanup.service':
    'Id=hk-shop-cleanup.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nActiveEnterTimestamp=\nNRestarts=0\nMemoryCurrent=[not set]',
  'hk-bad.service':
    'Id=hk-bad.service\nLoadState=loaded\nActiveState=active\nSubState=running\nActiveEnterTimestamp=@1795255200\nNRestarts=0\nMemoryCurrent=18446744073709551615',
};

/** A certificate made the way the certificate driver makes a self-signed one. */
function certificate(domains: string[]): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hk-status-'));
  execFileSync('openssl', selfSignedArgs(path.join(dir, 'k.pem'), path.join(dir, 'c.pem'), domains, 'self-signed'), { stdio: 'ignore' });
  return readFileSync(path.join(dir, 'c.pem'), 'utf8');
}

/** The plan of a dry run that finds everything as declared except what `pending` names. */
function planOf(resources: readonly Resource[], pending: Record<string, Change['action']>): Plan {
  const changes: Change[] = resources.map((r) => ({
    id: r.id,
    kind: r.kind,
    action: pending[r.id] ?? 'noop',
    fields: [],
    ops: [],
    disruptive: false,
    diagnostics: [],
    ...(r.project ? { project: r.project } : {}),
    ...(pending[r.id] ? { reason: 'changed by hand' } : {}),
  }));
  return { host: 'h', repository: 'config', changes, diagnostics: [], summary: summarize(changes) };
}

// Two projects with a source beside the fixture's: docs serves a release, api has none yet.
const WITH_SOURCES = manifestYaml(
  {
    kind: 'Project',
    name: 'docs',
    on: ['h'],
    spec: {
      runtime: 'static',
      source: { git: { url: 'https://git.example.test/docs.git', ref: C2 } },
      static: { root: 'site' },
      domains: [{ name: 'docs.example.test', tls: 'none' }],
    },
  },
  {
    kind: 'Project',
    name: 'api',
    on: ['h'],
    spec: {
      runtime: 'python',
      source: { git: { url: 'https://git.example.test/api.git', ref: 'main' } },
      service: { command: ['/usr/bin/python3', 'app.py'], port: 9402 },
    },
  },
);

function releaseMarker(id: string, commit: string): ReleaseMarker {
  return {
    source: { git: { url: 'https://git.example.test/docs.git', ref: commit } },
    commit,
    buildDigest: 'b9c8'.padEnd(64, '0'),
    builtAt: '2026-11-22T04:00:00.000Z',
    buildSeconds: 1.5,
    id,
  };
}

async function fixture(files?: Record<string, string>) {
  const { manifests, resources } = await declaredOn(files);
  const host = new FakeHost();
  host.seedFile(CERT, certificate(['shop.example.test', 'www.shop.example.test']));
  host.onExec((c) => {
    if (c.file === 'systemctl' && c.args[0] === 'show' && c.args.includes('--timestamp=unix')) {
      const units = c.args.slice(c.args.indexOf('--') + 1);
      return {
        exitCode: 0,
        stdout: units.map((u) => SHOWN[u] ?? `Id=${u}\nLoadState=not-found\nActiveState=inactive\nSubState=dead`).join('\n\n') + '\n',
        stderr: '',
      };
    }
    if (c.file === 'systemctl' && c.args.includes('--property=ActiveState')) return { exitCode: 0, stdout: 'active\n', stderr: '' };
    if (c.file === 'systemd-run')
      return c.args.at(-1) === '/usr/bin/false' ? { exitCode: 1, stdout: '', stderr: 'not today\n' } : { exitCode: 0, stdout: '', stderr: '' };
    return undefined;
  });
  // The last run failed at bad's health check; its commit is quarantined.
  const run = await RunJournal.open(host, STATE, { type: 'apply', host: 'h', commit: FAILED, planned: [] });
  await run.event({ ev: 'failed', id: 'health/bad', error: 'bad: health command /usr/bin/false exited 1' });
  await run.close('rolled-back');
  await recordFailure(host, STATE, { commit: FAILED, run: run.record.id, reason: 'health/bad failed', projects: [{ name: 'bad', fingerprint: 'f' }] });
  const plan = planOf(resources, { 'unit/hk-bad.service': 'update' });
  const inventory = { version: 1 as const, host: 'h', commit: APPLIED, appliedAt: '2026-11-22T05:00:00.000Z', resources: {} };
  const input = {
    host,
    hostName: 'h',
    repository: 'config',
    commit: APPLIED,
    stateDirectory: STATE,
    manifests,
    planned: { plan, resources, inventory },
    now: NOW,
  };
  return { host, input, runId: run.record.id };
}

function validator() {
  const ajv = new Ajv2020({ strict: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv.compile(JSON.parse(readFileSync(path.join(schemaDir(), 'status.schema.json'), 'utf8')) as object);
}

describe('reconciler/commands/status', () => {
  it('collects a status document that schema/status.schema.json describes, from one systemctl show and the checks', async () => {
    const { host, input, runId } = await fixture();
    const doc = await collectStatus(input);
    const validate = validator();
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(doc).toMatchObject({
      host: 'h',
      checkedAt: NOW.toISOString(),
      commit: APPLIED,
      applied: { commit: APPLIED, at: '2026-11-22T05:00:00.000Z' },
      lastRun: { id: runId, type: 'apply', status: 'rolled-back', commit: FAILED, failed: { id: 'health/bad' } },
      quarantined: [{ commit: FAILED, reason: 'health/bad failed', projects: ['bad'], run: runId }],
      paused: [],
      drift: { state: 'pending', pending: 1, host: [] },
    });
    expect(doc.projects.map((p) => p.name)).toEqual(['bad', 'blog', 'shop']);
    const [bad, blog, shop] = doc.projects;
    const unit = (u: string, role: string, choice: string, load: string, active: string, sub: string) => ({ unit: u, role, choice, load, active, sub });
    expect(shop!.units).toEqual([
      {
        ...unit('hk-shop.service', 'service', 'service', 'loaded', 'active', 'running'),
        since: '2026-11-22T04:30:00.000Z',
        restarts: 2,
        memoryBytes: 12897484,
      },
      { ...unit('hk-shop-mailer.service', 'worker', 'worker/mailer', 'loaded', 'failed', 'failed'), restarts: 5 },
      { ...unit('hk-shop-cleanup.timer', 'timer', 'timer/cleanup', 'loaded', 'active', 'waiting'), since: '2026-11-21T10:00:00.000Z' },
      { ...unit('hk-shop-cleanup.service', 'timer', 'timer/cleanup', 'loaded', 'inactive', 'dead'), restarts: 0 },
      unit('hk-shop-export.service', 'unit', 'unit/shop-export', 'not-found', 'inactive', 'dead'),
      unit('hk-shop-export.timer', 'unit', 'unit/shop-export', 'not-found', 'inactive', 'dead'),
    ]);
    expect(shop!.sites).toEqual([
      {
        domain: 'shop.example.test',
        aliases: ['www.shop.example.test'],
        tls: 'self-signed',
        certificate: expect.objectContaining({ file: CERT, state: 'valid', selfSigned: true, placeholder: false }),
      },
    ]);
    expect(shop!.database).toEqual({ name: 'shop', owner: 'shop', extensions: [], state: 'present' });
    expect(shop!.firewall).toEqual([{ port: 8443, protocol: 'tcp', from: ['10.0.0.0/8'], state: 'applied' }]);
    expect(shop!.health).toEqual({ state: 'passing', checked: 'unit hk-shop.service active, command /usr/bin/true' });
    // One attempt each, whatever `retries` says: status stays quick.
    expect(bad!.health).toEqual({
      state: 'failing',
      checked: 'unit hk-bad.service active, command /usr/bin/false',
      detail: 'health command /usr/bin/false exited 1: not today (after 1 attempt(s))',
    });
    expect(host.calls.filter((c) => c.file === 'systemd-run')).toHaveLength(2);
    expect(bad!.units[0]).not.toHaveProperty('memoryBytes');
    expect(bad!.drift).toEqual({ pending: 1, changes: [{ id: 'unit/hk-bad.service', action: 'update', reason: 'changed by hand' }] });
    // A static site: no unit, a site without TLS, no health check.
    expect(blog).toMatchObject({ units: [], sites: [{ domain: 'blog.example.test', tls: 'none' }], health: { state: 'none' } });
    // Every unit in one systemctl call.
    expect(host.calls.filter((c) => c.file === 'systemctl' && c.args.includes('--timestamp=unix')).map((c) => c.args.slice(c.args.indexOf('--') + 1))).toEqual([
      ['hk-bad.service', ...shop!.units.map((u) => u.unit)],
    ]);
    // No environment value, in any form.
    for (const text of [JSON.stringify(doc), renderStatusText(doc), renderStatusMarkdown(doc)]) expect(text).not.toContain(PLAIN_SETTING);
  });

  it('names the last backup of each part a project backs up, and the last good one when the last failed', async () => {
    const host = manifestYaml({
      kind: 'Host',
      name: 'h',
      spec: { secrets: { env: ['SHOP_DB_PASSWORD'] }, backup: { password: { file: '/etc/hostkit/secrets/restic' } } },
    });
    const shop = manifestYaml({
      kind: 'Project',
      name: 'crm',
      on: ['h'],
      spec: {
        runtime: 'binary',
        service: { command: ['/srv/crm/bin/crm'], port: 9402 },
        database: { password: { env: 'SHOP_DB_PASSWORD' }, backup: { schedule: 'daily' } },
        backup: { paths: ['data'], schedule: 'hourly' },
      },
    });
    const { host: fake, input } = await fixture({ 'hosts/h.yaml': host, 'projects/crm.yaml': shop });
    const record = (at: string, ok: boolean, extra: object) => ({ part: 'database', at, ok, seconds: 2.5, trigger: 'scheduled', ...extra });
    fake.seedFile(
      `${STATE}/backups/crm.json`,
      JSON.stringify({
        project: 'crm',
        records: [
          record('2026-11-21T03:00:00.000Z', true, { snapshot: 'dcfffefc', bytes: 2048, added: 512 }),
          record('2026-11-22T03:00:00.000Z', false, { error: 'project crm: backup of database crm: restic exited 1: unable to open repository' }),
        ],
      }),
    );
    const doc = await collectStatus(input);
    const validate = validator();
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const crm = doc.projects.find((p) => p.name === 'crm')!;
    expect(crm.backups).toEqual({
      database: {
        last: expect.objectContaining({ ok: false, at: '2026-11-22T03:00:00.000Z' }),
        lastGood: expect.objectContaining({ ok: true, snapshot: 'dcfffefc' }),
      },
      files: {},
    });
    const text = renderStatusText(doc);
    expect(text).toMatch(/backup +database +FAILED at 2026-11-22T03:00:00Z: project crm: backup of database crm: .*; last good at 2026-11-21T03:00:00Z/);
    expect(text).toMatch(/backup +files +none yet: its timer has not run/);
  });

  it('names the release each project with a source serves (id, commit, the switch that put it there, a hold), and none yet before the first', async () => {
    const { host, input } = await fixture({ 'hosts/h.yaml': OPERATE_HOST, 'projects/shop.yaml': SHOP, 'projects/docs.yaml': WITH_SOURCES });
    for (const [id, commit] of [
      [V1, C1],
      [V2, C2],
    ] as const)
      host.seedFile(`${releaseDir('docs', id)}/${MARKER}`, JSON.stringify(releaseMarker(id, commit)));
    await host.symlink(`releases/${V2}`, currentLink('docs'));
    await appendSwitch(host, STATE, 'docs', { id: V2, at: '2026-11-22T04:30:00.000Z', run: 'run-2' });
    const doc = await collectStatus(input);
    const validate = validator();
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const byName = new Map(doc.projects.map((p) => [p.name, p]));
    expect(byName.get('docs')!.release).toEqual({
      id: V2,
      commit: C2,
      builtAt: '2026-11-22T04:00:00.000Z',
      switchedAt: '2026-11-22T04:30:00.000Z',
      run: 'run-2',
    });
    expect(byName.get('api')!.release).toEqual({});
    expect(byName.get('shop')).not.toHaveProperty('release');
    const text = renderStatusText(doc);
    const block = (name: string) =>
      text
        .split('\n\n')
        .find((b) => b.startsWith(`● ${name} `))!
        .split('\n');
    expect(block('docs')[1]).toBe(`    release  ${V2}  commit ${C2.slice(0, 12)}, switched at 2026-11-22T04:30:00Z; 90min ago by run run-2`);
    expect(block('api')[1]).toMatch(/^ {4}release {2}none yet +the next apply builds one and switches to it$/);
    expect(renderStatusMarkdown(doc)).toContain(`| release | ${V2} | commit ${C2.slice(0, 12)}, switched at 2026-11-22T04:30:00Z; 90min ago by run run-2 |`);

    // Rolled back to v1 and held there: the release row says so, and how the hold ends.
    await host.symlink(`releases/${V1}`, currentLink('docs'));
    await appendSwitch(host, STATE, 'docs', { id: V1, at: '2026-11-22T05:30:00.000Z', run: 'run-3' });
    await holdRelease(host, STATE, { project: 'docs', release: V1, specDigest: 'd', run: 'run-3', at: new Date('2026-11-22T05:30:00Z') });
    const held = await collectStatus({ ...input, project: 'docs' });
    expect(validate(held), JSON.stringify(validate.errors)).toBe(true);
    expect(held.projects[0]!.release).toMatchObject({ id: V1, commit: C1, run: 'run-3', held: { at: '2026-11-22T05:30:00.000Z', run: 'run-3' } });
    expect(renderStatusText(held)).toContain(
      `    release  ${V1}  commit ${C1.slice(0, 12)}, switched at 2026-11-22T05:30:00Z; 30min ago by run run-3, held there by \`hostkit rollback --to\` since 2026-11-22T05:30:00Z; \`hostkit resume --project docs\` ends it`,
    );
  });

  it('--project: that project only; its drift and the host-level drift are counted', async () => {
    const { input } = await fixture();
    const doc = await collectStatus({ ...input, project: 'shop' });
    expect(doc.projects.map((p) => p.name)).toEqual(['shop']);
    expect(doc.drift).toEqual({ state: 'in-sync', pending: 0, host: [] });
    await expect(collectStatus({ ...input, project: 'elsewhere' })).rejects.toMatchObject({ code: 'UNKNOWN_PROJECT' });
  });

  it('a dry run with errors makes the drift unknown (not in sync), naming the first error', async () => {
    const { input } = await fixture();
    const plan = { ...input.planned.plan, diagnostics: [{ severity: 'error' as const, summary: 'secret unavailable', detail: 'SHOP_DB_PASSWORD is not set' }] };
    const doc = await collectStatus({ ...input, planned: { ...input.planned, plan } });
    expect(doc.drift).toEqual({ state: 'unknown', pending: 0, errors: ['secret unavailable: SHOP_DB_PASSWORD is not set'], host: [] });
    expect(renderStatusText(doc)).toMatch(/drift +unknown +the dry run has errors: secret unavailable: SHOP_DB_PASSWORD is not set/);
  });

  it('text: the host lines, then one block per project whose bullet is its worst state; colour only when asked', async () => {
    const { input } = await fixture();
    const doc = await collectStatus(input);
    const text = renderStatusText(doc);
    const [head, bad, blog, shop] = text.trimEnd().split('\n\n');
    expect(head!.split('\n')).toEqual([
      'HostKit status of h (config at aaaaaaaaaaaa, 2026-11-22T06:00:00Z)',
      '  applied      commit aaaaaaaaaaaa         at 2026-11-22T05:00:00Z; 60min ago',
      expect.stringMatching(
        /^ {2}last run {5}\S+ {2}apply rolled-back, commit bbbbbbbbbbbb, 0 change\(s\); failed at health\/bad: bad: health command \/usr\/bin\/false exited 1$/,
      ),
      expect.stringMatching(/^ {2}quarantined {2}commit bbbbbbbbbbbb {9}since \S+ \(health\/bad failed\); `hostkit resume` retries it$/),
      '  drift        1 change(s) pending         `hostkit plan` shows them',
    ]);
    expect(bad!.split('\n')).toEqual([
      '● bad  unhealthy, 1 change(s) pending',
      '    service  hk-bad.service         active (running) since 2026-11-21T10:00:00Z; 20h ago, 0 restarts',
      '    health   FAILING                health command /usr/bin/false exited 1: not today (after 1 attempt(s))',
      '    drift    ~ unit/hk-bad.service  changed by hand',
    ]);
    expect(blog!.split('\n')).toEqual(['● blog  no health check, in sync', '    site    blog.example.test  no TLS', '    health  none declared']);
    expect(shop!.split('\n')).toEqual([
      '● shop  healthy, 1 unit(s) failed, in sync',
      '    service   hk-shop.service                          active (running) since 2026-11-22T04:30:00Z; 90min ago, 2 restarts, 12.3M',
      '    worker    hk-shop-mailer.service                   failed (failed), 5 restarts',
      '    timer     hk-shop-cleanup.timer                    active (waiting) since 2026-11-21T10:00:00Z; 20h ago',
      '    timer     hk-shop-cleanup.service                  inactive (dead)',
      '    unit      hk-shop-export.service                   inactive (dead), load state not-found',
      '    unit      hk-shop-export.timer                     inactive (dead), load state not-found',
      expect.stringMatching(/^ {4}site {6}shop\.example\.test www\.shop\.example\.test {2}self-signed certificate valid until \S+ \(\d+ days\)$/),
      '    database  shop                                     present',
      '    firewall  tcp/8443                                 from 10.0.0.0/8, applied',
      '    health    passing                                  unit hk-shop.service active, command /usr/bin/true',
    ]);
    expect(text).not.toContain('\u001b[');
    const coloured = renderStatusText(doc, COLOR);
    expect(coloured).toContain(`${COLOR.red('●')} ${COLOR.bold('shop')}`);
    expect(coloured).toContain('\u001b[31mFAILING');
  });

  it('markdown: the same rows as tables, cells escaped', async () => {
    const { input } = await fixture();
    const md = renderStatusMarkdown(await collectStatus(input));
    expect(md).toContain('### HostKit status of `h`');
    expect(md).toContain('#### bad: unhealthy, 1 change(s) pending');
    expect(md).toContain('| worker | hk-shop-mailer.service | failed (failed), 5 restarts |');
  });

  it.each<[string, Partial<UnitStatus>, 'ok' | 'warn' | 'bad']>([
    ['an active service', { active: 'active', sub: 'running' }, 'ok'],
    ['a failed worker', { active: 'failed', sub: 'failed', role: 'worker', choice: 'worker/w' }, 'bad'],
    ['a unit that is not found', { load: 'not-found', active: 'inactive', sub: 'dead' }, 'bad'],
    ['an activating service', { active: 'activating', sub: 'auto-restart' }, 'warn'],
    ["a timer's service between runs", { unit: 'hk-x-t.service', role: 'timer', choice: 'timer/t', active: 'inactive', sub: 'dead' }, 'ok'],
    ['a stopped timer', { unit: 'hk-x-t.timer', role: 'timer', choice: 'timer/t', active: 'inactive', sub: 'dead' }, 'warn'],
  ])('a unit row: %s', (_, unit, tone) => {
    const base: UnitStatus = { unit: 'hk-x.service', role: 'service', choice: 'service', load: 'loaded', active: 'active', sub: 'running' };
    expect(unitRow({ ...base, ...unit }, NOW.toISOString()).tone).toBe(tone);
  });
});
