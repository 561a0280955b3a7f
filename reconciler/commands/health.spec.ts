import { describe, expect, it } from 'vitest';
import { declaredOn } from '../../test/support/operate.js';
import { COLOR, PLAIN } from '../diff/render/style.js';
import { FakeHost } from '../hosts/fake.js';
import { checkAll, declaredChecks, describeCheck, parseWatch, renderOutcome } from './health.js';
import { projectsOn } from './operate.js';

const HOSTS = `apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: h }
spec:
  policy: { hostLevelPaths: [/] }
---
apiVersion: hostkit.dev/v1
kind: Host
metadata: { name: other }
`;

const project = (name: string, host: string, health: string) => `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: ${name} }
spec:
  placement: { hosts: [${host}] }
  runtime: binary
  service: { command: [/srv/${name}/run], port: ${name === 'web' ? 9401 : 9402} }
  health:
${health}
`;

async function checksOn(only?: string) {
  const { manifests, resources } = await declaredOn({
    'hosts/h.yaml': HOSTS,
    'projects/web.yaml': project('web', 'h', '    http: { path: /healthz }\n    tcp: { port: 9401 }'),
    'projects/jobs.yaml': project('jobs', 'h', '    command: [/srv/jobs/check, --quick]\n    retries: 3'),
    'projects/away.yaml': project('away', 'other', '    command: [/bin/true]'),
  });
  return declaredChecks(manifests, projectsOn(resources), only);
}

describe('reconciler/commands/health', () => {
  it('the checks of the projects placed on the host, by name, each saying what it checks', async () => {
    const checks = await checksOn();
    expect(checks.map((c) => c.project)).toEqual(['jobs', 'web']);
    expect(checks.map(describeCheck)).toEqual([
      'unit hk-jobs.service active, command /srv/jobs/check --quick',
      'unit hk-web.service active, GET http://127.0.0.1:9401/healthz, TCP port 9401',
    ]);
    expect((await checksOn('web')).map((c) => c.project)).toEqual(['web']);
  });

  it('runs each check with its declared retries (or the given number), one outcome per project', async () => {
    const host = new FakeHost();
    host.onExec((c) => (c.file === 'systemctl' ? { exitCode: 0, stdout: 'active\n', stderr: '' } : undefined));
    host.onExec((c) => (c.file === 'systemd-run' ? { exitCode: 2, stdout: '', stderr: 'queue stuck\n' } : undefined));
    const [jobs] = await checksOn('jobs');
    const [outcome] = await checkAll(host, [jobs!], { intervalMs: 0 });
    expect(outcome).toMatchObject({ project: 'jobs', ok: false, detail: 'health command /srv/jobs/check --quick exited 2: queue stuck (after 4 attempt(s))' });
    expect(host.calls.filter((c) => c.file === 'systemd-run')).toHaveLength(4);
    await checkAll(host, [jobs!], { retries: 0 });
    expect(host.calls.filter((c) => c.file === 'systemd-run')).toHaveLength(5);
  });

  it('one line per check: ok with what was checked, FAIL with why', () => {
    const ok = { project: 'web', ok: true, checked: 'unit hk-web.service active', ms: 12 };
    const failed = {
      project: 'jobs',
      ok: false,
      checked: 'command /srv/jobs/check',
      detail: 'health command /srv/jobs/check exited 2 (after 4 attempt(s))',
      ms: 4000,
    };
    expect(renderOutcome(ok, 4, PLAIN)).toBe('ok    web   unit hk-web.service active (12 ms)');
    expect(renderOutcome(failed, 4, PLAIN)).toBe('FAIL  jobs  health command /srv/jobs/check exited 2 (after 4 attempt(s))');
    expect(renderOutcome(failed, 4, COLOR)).toContain(COLOR.red('FAIL'));
  });

  it.each([
    [undefined, undefined],
    ['5', 5],
    ['600', 600],
  ])('--watch %s', (text, seconds) => {
    expect(parseWatch(text)).toBe(seconds);
  });

  it.each(['0', '-1', '1.5', 'fast', ''])('--watch %j is refused', (text) => {
    expect(() => parseWatch(text)).toThrow(/--watch expects a whole number of seconds, at least 1/);
  });
});
