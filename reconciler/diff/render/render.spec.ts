import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { schemaDir } from '../../manifests/schemas.js';
import { summarize, type Change, type Plan } from '../model.js';
import { toJsonPlan } from './json.js';
import { renderMarkdown } from './markdown.js';
import { COLOR, useColor } from './style.js';
import { renderText } from './text.js';

const changes: Change[] = [
  {
    id: 'account/api',
    kind: 'account',
    action: 'create',
    fields: [
      { field: '/home', after: '/srv/api' },
      { field: '/groups', after: [] },
    ],
    ops: [{ op: 'create' }],
    disruptive: false,
    diagnostics: [],
  },
  {
    id: 'file/srv/api/config.json',
    kind: 'file',
    action: 'update',
    fields: [
      { field: '/content', before: '1 line', after: '1 line', diff: '@@ -1 +1 @@\n-{"a":1}\n+{"a":2}' },
      { field: '/mode', before: '0644', after: '0640' },
    ],
    ops: [{ op: 'write' }],
    disruptive: false,
    diagnostics: [],
    origin: { file: 'projects/api.yaml', line: 40, pointer: '/spec/files/0' },
  },
  {
    id: 'certificate/api.example.com',
    kind: 'certificate',
    action: 'update',
    fields: [
      { field: '/certificate', before: 'issued by CN=R1, api.example.com, valid until 2026-04-01T00:00:00.000Z', after: 'issued by ACME (acme.example.net)' },
    ],
    ops: [{ op: 'issue', issuer: 'acme' }],
    disruptive: true,
    reason: 'renewal due since 2026-03-02T00:00:00.000Z',
    owedBy: 'time',
    diagnostics: [],
  },
  {
    id: 'file/srv/old.conf',
    kind: 'file',
    action: 'delete',
    fields: [],
    ops: [{ op: 'remove' }],
    disruptive: false,
    reason: 'no manifest declares it any more',
    diagnostics: [],
  },
  {
    id: 'directory/srv/gone',
    kind: 'directory',
    action: 'noop',
    orphan: true,
    reason: 'kept (it may hold data)',
    fields: [],
    ops: [],
    disruptive: false,
    diagnostics: [],
  },
  { id: 'directory/srv/same', kind: 'directory', action: 'noop', fields: [], ops: [], disruptive: false, diagnostics: [] },
  {
    id: 'unit/hk-api.service',
    kind: 'unit',
    action: 'unsupported',
    reason: 'not yet supported: systemd driver',
    fields: [],
    ops: [],
    disruptive: false,
    diagnostics: [],
  },
];
const plan: Plan = { host: 'web-1', commit: 'a'.repeat(40), repository: 'example-repo', changes, diagnostics: [], summary: summarize(changes) };

describe('reconciler/diff/render', () => {
  it('JSON output is valid against schema/plan.schema.json and carries no internals', () => {
    const schema = JSON.parse(readFileSync(path.join(schemaDir(), 'plan.schema.json'), 'utf8'));
    const validate = new Ajv2020({ strict: false }).compile(schema);
    const json = toJsonPlan({
      ...plan,
      changes: plan.changes.map((c) => ({
        ...c,
        resource: { id: c.id, kind: c.kind, name: c.id, spec: { secret: 'x' }, dependsOn: [], origin: { file: 'f' } },
        desired: { content: 'x' },
      })),
    });
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(JSON.stringify(json)).not.toContain('"desired"');
    expect(json.changes.find((c) => c.id === 'certificate/api.example.com')?.owedBy).toBe('time');
    expect(json.changes.filter((c) => c.owedBy !== undefined)).toHaveLength(1);
    expect(json.summary).toEqual({ create: 1, update: 2, replace: 0, delete: 1, noop: 2, unsupported: 1, errors: 0, warnings: 0 });
  });

  it('text shows one line per change with its symbol, details indented, unchanged hidden, counts last', () => {
    const text = renderText(plan);
    const lines = text.split('\n');
    expect(lines[0]).toBe(`HostKit plan for host web-1 at commit ${'a'.repeat(12)} (example-repo)`);
    expect(text).toContain('  + account/api\n      home: /srv/api\n');
    expect(text).not.toContain('groups: []');
    expect(text).toContain('  ~ file/srv/api/config.json\n      content:\n        @@ -1 +1 @@\n        -{"a":1}\n        +{"a":2}\n      mode: 0644 -> 0640\n');
    expect(text).toContain('  ~ certificate/api.example.com  (owed by time: renewal due since 2026-03-02T00:00:00.000Z)');
    expect(text).toContain('  - file/srv/old.conf  (no manifest declares it any more)');
    expect(text).toContain('  ! directory/srv/gone  (orphan: kept (it may hold data))');
    expect(text).toContain('  ? unit/hk-api.service  (not yet supported: systemd driver)');
    expect(text).not.toContain('directory/srv/same');
    expect(lines.at(-3)).toBe('Plan: 1 to create, 2 to update, 0 to replace, 1 to delete, 2 unchanged. 1 not yet supported (no driver yet; not applied).');
    expect(lines.at(-2)).toBe('0 errors, 0 warnings.');
    expect(text).not.toContain('\u001b[');
    expect(renderText(plan, { verbose: true })).toContain('directory/srv/same');
  });

  describe('a plan with errors', () => {
    const schedule = { file: 'projects/api.yaml', line: 31, column: 19, pointer: '/spec/timers/0/schedule' };
    const failing: Change = {
      id: 'timer/hk-api-report.timer',
      kind: 'timer',
      action: 'create',
      fields: [{ field: '/content', after: 'unit file' }],
      ops: [{ op: 'write' }, { op: 'enable' }, { op: 'restart' }],
      disruptive: false,
      diagnostics: [{ severity: 'error', summary: 'invalid schedule', detail: 'systemd does not accept OnCalendar=0 30 2 * * *', location: schedule }],
    };
    const planWide = [
      {
        severity: 'warning' as const,
        summary: 'plain credential in environment',
        detail: 'spec.service.environment.API_TOKEN ...',
        location: { file: 'projects/api.yaml', line: 12, column: 18 },
      },
    ];
    const withErrors: Plan = {
      ...plan,
      changes: [...changes, failing],
      diagnostics: [...failing.diagnostics, ...planWide],
      summary: summarize([...changes, failing]),
    };

    it('text: says so in the summary line, counts nothing as to create, gives each diagnostic its FILE:LINE, ends with the counts', () => {
      const text = renderText(withErrors);
      const lines = text.split('\n');
      expect(lines.at(-3)).toBe('Plan has errors: nothing will be applied until they are fixed.');
      expect(lines.at(-2)).toBe('1 error, 1 warning.');
      expect(text).not.toMatch(/to create/);
      expect(text).toContain('      projects/api.yaml:31:19: error: invalid schedule (at /spec/timers/0/schedule)\n          systemd does not accept');
      expect(text).toContain('projects/api.yaml:12:18: warning: plain credential in environment');
    });

    it('markdown and JSON: the same', () => {
      const md = renderMarkdown(withErrors);
      expect(md).toContain('**Plan has errors: nothing will be applied until they are fixed.** 1 error, 1 warning.');
      expect(md).not.toMatch(/to create/);
      expect(md).toContain('- **error** `projects/api.yaml:31:19`: invalid schedule');
      expect(toJsonPlan(withErrors).summary).toMatchObject({ errors: 1, warnings: 1 });
    });

    it('a problem found twice (by validation and by the plan) is counted once', () => {
      expect(
        renderText({ ...withErrors, diagnostics: [...withErrors.diagnostics, { ...planWide[0]! }] })
          .split('\n')
          .at(-2),
      ).toBe('1 error, 1 warning.');
    });
  });

  it('colour only on a terminal, and never with NO_COLOR', () => {
    expect(renderText(plan, { style: COLOR })).toContain('\u001b[32m');
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColor({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });

  it('markdown has a summary, a table row per visible change, and fenced diffs', () => {
    const md = renderMarkdown(plan);
    expect(md).toContain('### HostKit plan for `web-1`');
    expect(md).toContain('| ✏️ | `certificate/api.example.com` | update | owed by time; renewal due since 2026-03-02T00:00:00.000Z; restarts or reloads |');
    expect(md).toContain('**1** to create, **2** to update, **0** to replace, **1** to delete, 2 unchanged, 1 not yet supported.');
    expect(md).toContain('| ✏️ | `file/srv/api/config.json` | update |');
    expect(md).toContain('```diff\n@@ -1 +1 @@\n-{"a":1}\n+{"a":2}\n```');
    expect(md).not.toContain('directory/srv/same');
  });
});
