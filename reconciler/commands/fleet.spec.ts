import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { gitRemote, type GitRemote } from '../../test/support/git-remote.js';
import { testHostYaml } from '../../test/support/fixtures.js';
import type { RolloutDecision } from '../fleet/gate.js';
import type { RolloutPolicy } from '../fleet/policy.js';
import { fleetRows, type FleetRow, type WaveProgress } from '../fleet/status.js';
import type { HostReport } from '../report/status.js';
import { fleetRollout, fleetStatus, renderFleetRows, renderProgress, rolloutDocument, statusDocument } from './fleet.js';

const HEAD = '1f4b58a0b98d'.padEnd(40, '0');
const OLD = '660f30951c61'.padEnd(40, '0');

function row(o: Partial<FleetRow> & { host: string }): FleetRow {
  return {
    commit: HEAD,
    result: 'applied',
    summary: '',
    wave: 1,
    held: null,
    drift: 0,
    certificateExpiry: null,
    lastReport: '2026-12-07T10:02:11.120Z',
    stale: false,
    ...o,
    host: o.host,
  };
}

// The rows of the README's example under "### Fleet status".
const README_ROWS: FleetRow[] = [
  row({ host: 'web-1', certificateExpiry: { id: 'certificate/shop', notAfter: '2027-02-01T08:00:00.000Z' } }),
  row({
    host: 'web-2',
    commit: OLD,
    wave: 2,
    lastReport: '2026-12-07T09:40:03.544Z',
    held: { commit: HEAD, state: 'waiting', wave: 1, reason: 'waiting for wave 1 (canary) to bake until 2026-12-07T10:12:11.120Z' },
  }),
  row({ host: 'web-9', commit: OLD, wave: 2, drift: 1, lastReport: '2026-12-07T05:40:03.544Z', stale: true }),
];

const wave = (o: Partial<WaveProgress> & { number: number; name: string }): WaveProgress => ({
  hosts: 0,
  applied: [],
  failed: [],
  pending: [],
  gate: null,
  ...o,
});

describe('reconciler/commands/fleet', () => {
  it('renders fleet status as aligned columns: an older commit marked, a held host and why, STALE last, never reported as dashes', () => {
    const rows = [
      ...README_ROWS,
      row({ host: 'db-1', commit: null, result: 'never reported', wave: null, lastReport: null, stale: true }),
      row({ host: 'web-10', result: 'rolled-back', wave: 1, drift: 3 }),
    ];
    expect(renderFleetRows(HEAD, rows)).toBe(
      [
        'branch head 1f4b58a0b98d',
        'HOST    COMMIT                RESULT          WAVE  DRIFT  CERT EXPIRES  LAST REPORT',
        'web-1   1f4b58a0b98d          applied         1     0      2027-02-01    2026-12-07T10:02:11.120Z',
        'web-2   660f30951c61 (older)  applied         2     0      -             2026-12-07T09:40:03.544Z',
        'web-9   660f30951c61 (older)  applied         2     1      -             2026-12-07T05:40:03.544Z  STALE',
        'db-1    -                     never reported  -     0      -             -                         STALE',
        'web-10  1f4b58a0b98d          rolled-back     1     3      -             2026-12-07T10:02:11.120Z',
        'web-2: 1f4b58a0b98d waiting for wave 1 (canary) to bake until 2026-12-07T10:12:11.120Z',
        '',
      ].join('\n'),
    );
  });

  it("the README's fleet status example is what the command prints for those hosts", () => {
    const readme = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n### Fleet status\n'));
    // Fences pair up from the top: the first block opened without a language is the example.
    const example = [...section.matchAll(/^```(\w*)\n([\s\S]*?)\n```$/gm)].find((m) => m[1] === '')![2]! + '\n';
    expect(example).toBe(renderFleetRows(HEAD, README_ROWS));
  });

  it.each([
    ['no decision', undefined, 'rollout of 1f4b58a0b98d'],
    ['a resume', { action: 'resume', commit: HEAD, at: '2026-12-07T10:00:00Z' }, 'rollout of 1f4b58a0b98d'],
    [
      'a pause (of any commit)',
      { action: 'pause', commit: OLD, at: '2026-12-07T10:00:00Z', by: 'ops@laptop' },
      'rollout of 1f4b58a0b98d (paused by ops@laptop at 2026-12-07T10:00:00Z)',
    ],
    ['an abort of this commit', { action: 'abort', commit: HEAD, at: '2026-12-07T10:00:00Z' }, 'rollout of 1f4b58a0b98d (aborted at 2026-12-07T10:00:00Z)'],
    ['an abort of an older commit', { action: 'abort', commit: OLD, at: '2026-12-07T10:00:00Z' }, 'rollout of 1f4b58a0b98d'],
  ] as const)('renders the rollout with %s: per wave applied, failed, pending, and why the next host waits', (_what, decision, header) => {
    const waves = [
      wave({ number: 1, name: 'canary', hosts: 1, applied: ['web-1'] }),
      wave({
        number: 2,
        name: 'prod',
        hosts: 4,
        applied: ['web-2'],
        failed: ['web-3'],
        pending: ['web-4', 'web-5'],
        gate: 'halted at wave 2 (prod): 1 failed, 0 allowed',
      }),
      wave({ number: 3, name: 'lab', hosts: 2, pending: ['lab-1', 'lab-2'], gate: 'waiting for wave 2 (prod)' }),
    ];
    expect(renderProgress(HEAD, waves, decision as RolloutDecision | undefined)).toBe(
      [
        header,
        'wave 1 canary: 1/1 applied, 0 failed, 0 pending',
        'wave 2 prod: 1/4 applied, 1 failed, 2 pending',
        '  failed: web-3',
        '  next: halted at wave 2 (prod): 1 failed, 0 allowed',
        'wave 3 lab: 0/2 applied, 0 failed, 2 pending',
        '  next: waiting for wave 2 (prod)',
        '',
      ].join('\n'),
    );
  });

  it('keeps the JSON documents to the same keys, whatever there is to say', () => {
    const reported: HostReport = {
      host: 'web-1',
      commit: HEAD,
      result: 'applied',
      summary: 'ok',
      trigger: [],
      startedAt: '2026-12-07T10:00:00Z',
      finishedAt: '2026-12-07T10:00:01Z',
      timings: { totalMs: 1 },
      resources: [],
      diagnostics: [],
    };
    const rows = fleetRows({ reports: new Map([['web-1', reported]]), hosts: [{ name: 'web-2', labels: {} }], now: Date.parse('2026-12-07T11:00:00Z') });
    const status = statusDocument(HEAD, { reports: new Map(), unreadable: [] }, rows);
    expect(Object.keys(status)).toEqual(['commit', 'reportCommit', 'hosts', 'unreadable']);
    expect(status.reportCommit).toBeNull();
    const rowKeys = ['host', 'commit', 'result', 'summary', 'wave', 'held', 'drift', 'certificateExpiry', 'lastReport', 'stale'];
    expect(status.hosts.map((h) => Object.keys(h))).toEqual([rowKeys, rowKeys]);
    const policy: RolloutPolicy = { name: 'default', waves: [] };
    const keys = ['commit', 'policy', 'decision', 'waves'];
    expect(Object.keys(rolloutDocument(HEAD, undefined, undefined, []))).toEqual(keys);
    expect(rolloutDocument(HEAD, undefined, undefined, [])).toEqual({ commit: HEAD, policy: null, decision: null, waves: [] });
    expect(Object.keys(rolloutDocument(HEAD, policy, { action: 'pause', at: 'now' }, [wave({ number: 1, name: 'a' })]))).toEqual(keys);
  });
});

describe('reconciler/commands/fleet against a shared repository', () => {
  let remote: GitRemote;
  let head: string;
  let out: string[];
  const now = Date.now();
  const iso = (msAgo: number) => new Date(now - msAgo).toISOString();

  function status(host: string, o: Partial<HostReport>): HostReport {
    return {
      host,
      commit: head,
      result: 'applied',
      summary: 'ok',
      trigger: [],
      startedAt: iso(60_000),
      finishedAt: iso(50_000),
      timings: { totalMs: 1 },
      resources: [],
      diagnostics: [],
      ...o,
    };
  }

  // The report branch as agents leave it: one status file per host, on a branch of its own.
  async function report(files: Record<string, string>): Promise<void> {
    const dir = path.join(path.dirname(remote.work), 'report');
    await execa('git', ['init', '-q', '-b', 'hostkit-status', dir]);
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), content);
    }
    const env = { GIT_AUTHOR_NAME: 'a', GIT_AUTHOR_EMAIL: 'a@b', GIT_COMMITTER_NAME: 'a', GIT_COMMITTER_EMAIL: 'a@b' };
    await execa('git', ['add', '-A'], { cwd: dir });
    await execa('git', ['commit', '-q', '-m', 'reports'], { cwd: dir, env });
    await execa('git', ['push', '-q', '-f', remote.bare, 'HEAD:refs/heads/hostkit-status'], { cwd: dir });
  }

  async function run(f: () => Promise<number>): Promise<string> {
    out = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
    try {
      expect(await f()).toBe(0);
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }

  const opts = (o: { output: 'text' | 'json'; staleAfter?: string }) => ({ repo: remote.bare, branch: 'main', reportBranch: 'hostkit-status', ...o });

  beforeAll(async () => {
    remote = await gitRemote();
    head = await remote.push({
      'hosts/web-1.yaml': testHostYaml({ name: 'web-1', labels: { env: 'prod' } }),
      'hosts/web-2.yaml': testHostYaml({ name: 'web-2', labels: { env: 'prod' } }),
      'hosts/web-3.yaml': testHostYaml({ name: 'web-3', labels: { env: 'prod' } }),
      'hosts/lab-1.yaml': testHostYaml({ name: 'lab-1', labels: { env: 'lab' } }),
    });
    await report({
      'status/web-1.json': JSON.stringify(status('web-1', {})),
      'status/web-2.json': JSON.stringify(
        status('web-2', {
          commit: OLD,
          finishedAt: iso(4 * 3_600_000),
          rollout: { wave: 2, held: { commit: head, state: 'waiting', wave: 1, reason: 'waiting for wave 1 (canary)', since: iso(5 * 3_600_000) } },
        }),
      ),
      'status/lab-1.json': JSON.stringify(status('lab-1', { finishedAt: iso(2 * 3_600_000) })),
      'status/broken.json': '{',
    });
  }, 60_000);
  afterAll(() => remote.cleanup());

  it('fleet status -o json: the stable document, a host per Host manifest or status file, stale flags by --stale-after', async () => {
    const doc = JSON.parse(await run(() => fleetStatus(opts({ output: 'json' })))) as ReturnType<typeof statusDocument>;
    expect(Object.keys(doc)).toEqual(['commit', 'reportCommit', 'hosts', 'unreadable']);
    expect(doc.commit).toBe(head);
    expect(doc.reportCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(doc.unreadable).toEqual(['status/broken.json']);
    expect(doc.hosts.map((h) => [h.host, h.commit, h.result, h.stale])).toEqual([
      ['lab-1', head, 'applied', false],
      ['web-1', head, 'applied', false],
      ['web-2', OLD, 'applied', true],
      ['web-3', null, 'never reported', true],
    ]);
    expect(doc.hosts[2]!.held).toMatchObject({ commit: head, state: 'waiting' });
    const strict = JSON.parse(await run(() => fleetStatus(opts({ output: 'json', staleAfter: '1h' })))) as ReturnType<typeof statusDocument>;
    expect(strict.hosts.filter((h) => h.stale).map((h) => h.host)).toEqual(['lab-1', 'web-2', 'web-3']);
  }, 60_000);

  it('fleet status as text: STALE, the held host and why, the unreadable file named', async () => {
    const text = await run(() => fleetStatus(opts({ output: 'text' })));
    expect(text.split('\n')[0]).toBe(`branch head ${head.slice(0, 12)}`);
    expect(text).toMatch(/^web-2 +660f30951c61 \(older\) +applied +2 +0 +- +\S+ +STALE$/m);
    expect(text).toMatch(/^web-3 +- +never reported +- +0 +- +- +STALE$/m);
    expect(text).toMatch(/^web-1 +[0-9a-f]{12} +applied +- +0 +- +\S+$/m);
    expect(text).toContain(`web-2: ${head.slice(0, 12)} waiting for wave 1 (canary)\n`);
    expect(text.endsWith('unreadable status file: status/broken.json\n')).toBe(true);
  }, 60_000);

  it('refuses a --stale-after that is not a duration, before reading anything', async () => {
    await expect(fleetStatus(opts({ output: 'text', staleAfter: 'soon' }))).rejects.toThrow('Expected --stale-after as a duration (30m, 3h), got soon');
  });

  it('fleet rollout without a policy: the same JSON keys as with one; the text says every host applies at once', async () => {
    expect(JSON.parse(await run(() => fleetRollout(undefined, opts({ output: 'json' }))))).toEqual({ commit: head, policy: null, decision: null, waves: [] });
    expect(await run(() => fleetRollout(undefined, opts({ output: 'text' })))).toBe(
      `no rollout policy (.hostkit/rollout.yaml) at ${head.slice(0, 12)}: every host applies a new commit at once\n`,
    );
  }, 60_000);

  it('fleet rollout with a policy: per wave who applied, who waits and why, as text and as JSON', async () => {
    const withPolicy = await remote.push({
      '.hostkit/rollout.yaml': [
        'apiVersion: hostkit.dev/v1',
        'kind: Rollout',
        'metadata: { name: default }',
        'spec:',
        '  waves:',
        '    - { name: canary, hosts: [web-1], bake: 10m }',
        '    - { name: prod, selector: { matchLabels: { env: prod } } }',
        '',
      ].join('\n'),
    });
    const doc = JSON.parse(await run(() => fleetRollout(undefined, opts({ output: 'json' })))) as ReturnType<typeof rolloutDocument>;
    expect(Object.keys(doc)).toEqual(['commit', 'policy', 'decision', 'waves']);
    expect(doc).toMatchObject({ commit: withPolicy, policy: 'default', decision: null });
    expect(doc.waves.map((w) => [w.name, w.hosts, w.applied, w.pending])).toEqual([
      ['canary', 1, [], ['web-1']],
      ['prod', 2, [], ['web-2', 'web-3']],
    ]);
    const text = await run(() => fleetRollout(undefined, opts({ output: 'text' })));
    expect(text).toBe(
      [
        `rollout of ${withPolicy.slice(0, 12)}`,
        'wave 1 canary: 0/1 applied, 0 failed, 1 pending',
        '  next: may apply now',
        'wave 2 prod: 0/2 applied, 0 failed, 2 pending',
        `  next: ${doc.waves[1]!.gate}`,
        '',
      ].join('\n'),
    );
    expect(doc.waves[1]!.gate).toMatch(/^waiting for wave 1 \(canary\)/);
  }, 60_000);
});
