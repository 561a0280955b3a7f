import { describe, expect, it } from 'vitest';
import { fingerprinter, Redactor, REDACTED } from '../core/secrets.js';

const secretFingerprint = fingerprinter(Buffer.alloc(32, 1));
import type { HostReport } from './status.js';
import { isReportPath, renderDriftMarkdown, renderStatusMarkdown, reportFiles, reportFromOutcome, statusDescription } from './status.js';
import type { ReconcileOutcome } from '../engine.js';

const SECRET = 'pg-pass-7c1d9e2b';

function report(overrides: Partial<HostReport> = {}): HostReport {
  return {
    host: 'web-1',
    commit: 'a'.repeat(40),
    result: 'rolled-back',
    summary: 'unit/web.service failed; 2 applied change(s) rolled back',
    trigger: ['webhook d-1'],
    startedAt: '2026-11-22T05:00:00.000Z',
    finishedAt: '2026-11-22T05:00:02.000Z',
    timings: { fetchMs: 120, reconcileMs: 1800, totalMs: 2000 },
    resources: [
      { id: 'envfile/etc/hostkit/env/web.env', kind: 'envfile', state: 'rolled back' },
      { id: 'unit/web.service', kind: 'unit', state: 'failed' },
      { id: 'file/srv/web/a', kind: 'file', state: 'unchanged' },
    ],
    failed: { id: 'unit/web.service', error: `exited with 1 (password ${SECRET} rejected)` },
    diagnostics: [
      { severity: 'error', summary: 'apply failed', detail: `DATABASE_URL=postgres://web:${SECRET}@localhost/web`, location: 'projects/web.yaml:3:1' },
    ],
    drift: {
      checkedAt: '2026-11-22T04:55:00.000Z',
      commit: 'b'.repeat(40),
      policy: 'report',
      resources: [
        {
          id: 'envfile/etc/hostkit/env/web.env',
          action: 'update',
          fields: [
            { field: '/mode', before: '0644', after: '0640' },
            { field: '/secrets/DB', before: secretFingerprint('old-secret'), after: secretFingerprint(SECRET), redacted: true },
          ],
        },
        { id: 'file/srv/web/index.html', action: 'update', fields: [{ field: '/content', diff: '@@ -1 +1 @@\n-bye\n+hello' }] },
      ],
      healed: [],
      renewed: [],
      held: [],
      backingOff: [{ id: 'file/srv/web/index.html', until: '2026-11-22T06:00:00.000Z' }],
    },
    ...overrides,
  };
}

describe('reconciler/report/status', () => {
  it('the readable status names the result, the commit, each resource and the failure', () => {
    const md = renderStatusMarkdown(report());
    expect(md).toContain('**Result:** failed and rolled back');
    expect(md).toContain(`\`${'a'.repeat(40)}\``);
    expect(md).toContain('| `unit/web.service` | failed |');
    expect(md).toContain('| `envfile/etc/hostkit/env/web.env` | rolled back |');
    expect(md).toContain('fetch 120 ms');
    expect(md).toContain('`projects/web.yaml:3:1`');
  });

  it.each([
    ['applied', 'applied'],
    ['no-changes', 'no changes'],
    ['invalid', 'invalid manifests'],
  ] as const)('result %s reads "%s"', (result, text) => {
    expect(renderStatusMarkdown(report({ result }))).toContain(`**Result:** ${text}`);
  });

  it('drift lists field-level differences, secrets as fingerprints only, and the back-off', () => {
    const md = renderDriftMarkdown(report())!;
    expect(md).toContain('2 resource(s) differ from commit');
    expect(md).toContain('- `/mode`: live `0644`, wanted `0640`');
    expect(md).toContain('(secret: fingerprints only)');
    expect(md).toContain('-bye\n+hello');
    expect(md).toContain('keeps drifting: healing paused until 2026-11-22T06:00:00.000Z');
    expect(renderDriftMarkdown(report({ drift: { ...report().drift!, resources: [] } }))).toBeUndefined();
  });

  it('drift tells renewed (owed by time) from healed, and lists what was held with the reason', () => {
    const drift = {
      ...report().drift!,
      policy: 'heal' as const,
      resources: [
        {
          id: 'certificate/web.example.com',
          action: 'update' as const,
          fields: [{ field: '/certificate', before: 'old', after: 'new' }],
          owedBy: 'time' as const,
        },
        { id: 'file/srv/web/index.html', action: 'update' as const, fields: [{ field: '/content', diff: '@@ -1 +1 @@\n-bye\n+hello' }] },
        { id: 'envfile/etc/hostkit/env/api.env', action: 'update' as const, fields: [{ field: '/mode', before: '0644', after: '0640' }] },
      ],
      renewed: ['certificate/web.example.com'],
      healed: ['file/srv/web/index.html'],
      held: [{ id: 'envfile/etc/hostkit/env/api.env', reason: 'held: project api is paused (hostkit resume, or a commit that changes it, un-pauses it)' }],
      backingOff: [],
    };
    const md = renderDriftMarkdown(report({ drift }))!;
    expect(md).toContain('Renewed (owed by time, applied whatever the policy): `certificate/web.example.com`.');
    expect(md).toContain('Healed: `file/srv/web/index.html`.');
    expect(md).toContain('- `envfile/etc/hostkit/env/api.env` held, not applied: held: project api is paused');
    expect(md).toContain('## `certificate/web.example.com` (update, owed by time)');
    expect(md).toContain('## `file/srv/web/index.html` (update)\n');
    expect(renderStatusMarkdown(report({ drift }))).toContain('(policy: heal); 1 renewed, 1 healed, 1 held');
    expect(renderStatusMarkdown(report())).toMatch(/\(policy: report\)\n/);
  });

  it('no secret value reaches any report file, and the drift file is removed when there is no drift', () => {
    const redactor = new Redactor();
    redactor.add(SECRET);
    const files = reportFiles(report(), redactor);
    expect(Object.keys(files)).toEqual(['status/web-1.json', 'status/web-1.md', 'drift/web-1.md']);
    for (const content of Object.values(files)) {
      expect(content).toBeDefined();
      expect(content).not.toContain(SECRET);
    }
    expect(files['status/web-1.md']).toContain(REDACTED);
    expect(JSON.parse(files['status/web-1.json']!)).toMatchObject({ host: 'web-1', result: 'rolled-back', commit: 'a'.repeat(40) });
    expect(reportFiles(report({ drift: undefined }), redactor)['drift/web-1.md']).toBeUndefined();
  });

  it('the health checks of the run, with the URL each asked, are in the JSON and the readable status', () => {
    const url = 'https://api.example.test/healthz (via 127.0.0.1:443)';
    const outcome = {
      stage: 'applied',
      planned: { plan: { changes: [], diagnostics: [] } },
      result: { status: 'applied', steps: [], skipped: [], warnings: [], health: [{ project: 'api', ok: true, url }] },
    } as unknown as ReconcileOutcome;
    const facts = { host: 'web-1', trigger: ['poll'], startedAt: new Date(0), finishedAt: new Date(1000), timings: {} };
    const files = reportFiles(reportFromOutcome(facts, outcome), new Redactor());
    expect(JSON.parse(files['status/web-1.json']!).health).toEqual([{ project: 'api', ok: true, url }]);
    expect(files['status/web-1.md']).toContain(`- **Health of api:** healthy (${url})`);
  });

  it('names the release each project with a source serves, in the JSON and the readable status', () => {
    const id = '20261207T101500Z-1a2b3c4d5e6f-b9c8';
    const releases = [
      { project: 'api', id, commit: '1a2b3c4d5e6f'.padEnd(40, '0') },
      { project: 'docs', id: '20261207T101600Z-9f8e7d6c5b4a-0a0a', archiveSha256: '9f8e7d6c5b4a'.padEnd(64, '1') },
      { project: 'new' },
    ];
    const files = reportFiles(report({ releases }), new Redactor());
    expect(JSON.parse(files['status/web-1.json']!).releases).toEqual(releases);
    const md = files['status/web-1.md']!;
    expect(md).toContain(`- **Release of api:** \`${id}\` (commit \`${'1a2b3c4d5e6f'.padEnd(40, '0')}\`)`);
    expect(md).toContain(`- **Release of docs:** \`20261207T101600Z-9f8e7d6c5b4a-0a0a\` (archive sha256 \`${'9f8e7d6c5b4a'.padEnd(64, '1')}\`)`);
    expect(md).toContain('- **Release of new:** none yet');
  });

  it.each<[string, { project: string; id?: string }[], string]>([
    ['no project with a source: the summary alone', [], '3 change(s) applied'],
    ['one release', [{ project: 'api', id: 'ID-API' }], '3 change(s) applied; release: api ID-API'],
    ['several, and one not deployed yet', [{ project: 'api', id: 'ID-API' }, { project: 'web' }], '3 change(s) applied; releases: api ID-API, web (none yet)'],
  ])('a commit status names the current releases: %s', (_, releases, expected) => {
    expect(statusDescription({ summary: '3 change(s) applied', releases })).toBe(expected);
  });

  it('a commit status keeps to 140 characters, naming the releases that fit and how many more there are', () => {
    const releases = Array.from({ length: 6 }, (_, i) => ({ project: `app-${i + 1}`, id: `20261207T10150${i}Z-1a2b3c4d5e6f-b9c8` }));
    const text = statusDescription({ summary: '6 change(s) applied', releases });
    expect(text.length).toBeLessThanOrEqual(140);
    expect(text).toBe(`6 change(s) applied; releases: app-1 ${releases[0]!.id}, app-2 ${releases[1]!.id} (+4 more)`);
    // A summary too long for even one: the summary alone.
    expect(statusDescription({ summary: 'x'.repeat(120), releases })).toBe('x'.repeat(120));
  });

  it.each([
    ['status/web-1.json', true],
    ['status/web-1.md', true],
    ['drift/web-1.md', true],
    ['status/nested/x.md', false],
    ['projects/web.yaml', false],
    ['drift/web-1.yaml', false],
  ])('isReportPath(%s) = %s', (file, expected) => {
    expect(isReportPath(file)).toBe(expected);
  });
});
