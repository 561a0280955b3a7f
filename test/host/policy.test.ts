// Who may change what, on a real host (issue #16): a project's manifest that
// asks for a unit running as root is refused before anything is planned, with
// file:line and the rule; the same manifest from a host-level path (hosts/) is
// applied, and the unit really runs as root.
import { expect, it } from 'vitest';
import { describeHost, useHost } from './harness.js';
import { appliedOk, HOST_NAME, reconcile, repo, unitProperty } from './reconcile.js';

const ROOT_UNIT = `apiVersion: hostkit.dev/v1
kind: Unit
metadata:
  name: ops
  project: ops
spec:
  placement:
    hosts: [${HOST_NAME}]
  command: [/usr/bin/sleep, infinity]
  user: root
`;

describeHost('host policy on a real host: a Unit as root from a project path and from a host-level path', () => {
  const machine = useHost();

  it('from projects/ it is refused with file, line and rule, and nothing changes on the host', async () => {
    const m = machine();
    const outcome = await reconcile(m, await repo({ 'projects/ops.yaml': ROOT_UNIT }));
    expect(outcome.stage).toBe('invalid');
    if (outcome.stage !== 'invalid') return;
    const refusal = outcome.repo.diagnostics.find((d) => d.severity === 'error');
    expect(refusal).toMatchObject({ summary: 'not allowed in a project manifest', location: { file: 'projects/ops.yaml', line: 10, pointer: '/spec/user' } });
    expect(refusal?.detail).toContain('rule run-as:');
    expect(refusal?.detail).toContain('hosts/');
    expect(await m.host.stat('/etc/systemd/system/hk-ops.service')).toBeUndefined();
    expect(await m.host.stat('/var/lib/hostkit/runs')).toBeUndefined();
  });

  it('from hosts/ it is applied, and the service runs as root', async () => {
    const m = machine();
    appliedOk(await reconcile(m, await repo({ 'hosts/ops.yaml': ROOT_UNIT })));
    expect(await unitProperty(m, 'hk-ops.service', 'ActiveState')).toBe('active');
    const pid = await unitProperty(m, 'hk-ops.service', 'MainPID');
    const status = (await m.host.readFile(`/proc/${pid}/status`))!.toString();
    expect(status).toMatch(/^Uid:\s+0\s/m);
  });
});
