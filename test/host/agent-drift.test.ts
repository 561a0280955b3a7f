// The agent's drift interval on a real host: a certificate past its renewal
// point is renewed whatever the drift policy, and a heal goes through the same
// safe apply as any run, so a paused project's drift is held, not restarted.
// The agent runs in-process against the booted host (machine().host), with a
// bare git repository on this machine as its source and report branch; the
// real drivers act inside the host.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { Agent } from '../../reconciler/agent/agent.js';
import type { AgentConfig } from '../../reconciler/agent/config.js';
import { AgentMetrics } from '../../reconciler/agent/metrics.js';
import { isPaused, resume } from '../../reconciler/apply/quarantine.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import type { DriftSection } from '../../reconciler/report/status.js';
import { ReportWriter } from '../../reconciler/report/writeback.js';
import { GitSource } from '../../reconciler/sources/git.js';
import { gitRemote, testAgentConfig, type GitRemote } from '../support/git-remote.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { ACME_HOST, pebbleLines, served, startPebble } from './pebble.js';
import { eventually, HOST_NAME, service, unitProperty } from './reconcile.js';

const STATE = '/var/lib/hostkit';

interface Running {
  agent: Agent;
  remote: GitRemote;
  cleanup(): Promise<void>;
}

let running: Running | undefined;
afterEach(async () => {
  await running?.cleanup();
  running = undefined;
});

/** An agent for the booted host, fetching from (and reporting to) a fresh bare repository. */
async function agentFor(m: TestHost, policy: 'report' | 'heal', intervalMs: number): Promise<Running> {
  const remote = await gitRemote();
  const state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-agent-drift-'));
  const log = process.env.AGENT_DEBUG ? (await import('pino')).pino({ level: 'debug' }) : silentLogger();
  const config: AgentConfig = testAgentConfig({ url: remote.bare, host: HOST_NAME, stateDirectory: state, drift: { policy, intervalMs } });
  const agent = new Agent({
    config,
    host: m.host,
    source: new GitSource({ ...config.repository, stateDirectory: state, log }),
    log,
    metrics: new AgentMetrics(HOST_NAME),
    redactor: new Redactor(),
    reports: new ReportWriter({ url: remote.bare, branch: 'hostkit-status', dir: path.join(state, 'reports'), author: { name: 'a', email: 'a@b.c' }, log }),
    env: {},
    runSpacingMs: 0,
  });
  return {
    agent,
    remote,
    async cleanup() {
      await agent.stop();
      await remote.cleanup();
      await rm(state, { recursive: true, force: true });
    },
  };
}

/** The drift section of the status report `back` commits before the tip of the report branch. */
async function reportedDrift(remote: GitRemote, back = 0): Promise<DriftSection | undefined> {
  const text = await remote.show(`hostkit-status~${back}`, `status/${HOST_NAME}.json`);
  return text ? (JSON.parse(text) as { drift?: DriftSection }).drift : undefined;
}

// Pebble logs serials in lower-case hex, openssl in upper case with leading zeros.
const serialOf = (line: string) => (/serial ([0-9a-f]+)/i.exec(line)?.[1] ?? '').toUpperCase().replace(/^0+/, '');

describeHost('reconciler/agent: a certificate past its renewal point is renewed on the drift interval under drift.policy report (real host, pebble)', () => {
  const machine = useHost();
  beforeAll(() => startPebble(machine()));

  it('the agent renews the certificate on its interval, nginx serves the new one, and the report says renewed', async () => {
    const m = machine();
    running = await agentFor(m, 'report', 2_000);
    const { agent, remote } = running;
    // With a millionth of its lifetime left to renew in, every certificate is past its renewal point once issued.
    const renewing = ACME_HOST.replace('    email: ops@hk.test\n', '    email: ops@hk.test\n    renewBefore: 0.999999\n');
    const commit = await remote.push({
      'hosts/test-host.yaml': renewing,
      'projects/app.yaml': service('app', 9401, '  domains:\n    - name: app.hk.test\n      tls: acme\n'),
    });
    await agent.start({ poll: false });
    // The start-up run applies the commit (the first order); the drift interval then renews.
    if (!(await eventually(async () => agent.lastApplied === commit, 120_000, 250))) throw new Error(`not applied: ${JSON.stringify(agent.report)}`);
    const invocation = await unitProperty(m, 'hk-app.service', 'InvocationID');
    const renewedReport = async () => (await remote.log('hostkit-status')).findIndex((message) => message.includes('renewed'));
    const seen = await eventually(async () => (await renewedReport()) >= 0, 120_000, 500);
    await agent.stop();
    if (!seen) throw new Error(`no renewal reported; report commits: ${(await remote.log('hostkit-status')).join(' | ')}`);

    const issued = (await pebbleLines(m, 'Issued certificate serial')).map(serialOf);
    expect(issued.length).toBeGreaterThanOrEqual(2);
    const now = await served(m, 'app.hk.test');
    expect(now.verify).toBe('0 (ok)');
    expect(now.serial.replace(/^0+/, '')).toBe(issued.at(-1));
    expect(now.serial.replace(/^0+/, '')).not.toBe(issued[0]);
    // A renewal reloads nginx; it restarts no service.
    expect(await unitProperty(m, 'hk-app.service', 'InvocationID')).toBe(invocation);

    const back = await renewedReport();
    const log = await remote.log('hostkit-status');
    expect(log[back]).toBe(`${HOST_NAME}: 1 renewed against ${commit}`);
    const drift = await reportedDrift(remote, back);
    expect(drift).toMatchObject({ commit, policy: 'report', renewed: ['certificate/app.hk.test'], healed: [], held: [] });
    expect(drift!.resources).toEqual([expect.objectContaining({ id: 'certificate/app.hk.test', action: 'update', owedBy: 'time' })]);
    expect(await remote.show(`hostkit-status~${back}`, `drift/${HOST_NAME}.md`)).toContain(
      'Renewed (owed by time, applied whatever the policy): `certificate/app.hk.test`.',
    );
    expect(await remote.show(`hostkit-status~${back}`, `status/${HOST_NAME}.md`)).toContain('(policy: report); 1 renewed');
  });
});

const UNIT = '/etc/systemd/system/hk-web.service';
const PAUSING_HOST = `apiVersion: hostkit.dev/v1
kind: Host
metadata:
  name: ${HOST_NAME}
spec:
  stateDirectory: ${STATE}
  deploy:
    pauseAfterFailures: 2
    failureWindow: 1h
`;

/** A service with a health check on the version it serves; `directory` elsewhere makes it answer 404. */
function web(version: string, directory = '/srv/web'): Record<string, string> {
  return {
    'hosts/test-host.yaml': PAUSING_HOST,
    'projects/web.yaml': `apiVersion: hostkit.dev/v1
kind: Project
metadata:
  name: web
spec:
  placement:
    hosts: [${HOST_NAME}]
  runtime: python
  service:
    command: [/usr/bin/python3, -m, http.server, "9301", --bind, 127.0.0.1, --directory, ${directory}]
    port: 9301
    environment:
      VERSION: ${version}
  files:
    - name: version.txt
      content: "${version}\\n"
  health:
    http:
      path: /version.txt
      bodyContains: ${version}
    timeout: 2s
    retries: 2
`,
  };
}

describeHost('reconciler/agent: drift of a paused project under drift.policy heal (real host)', () => {
  const machine = useHost();

  it('is not healed and its service not restarted; the report says held; once resumed, the next check heals it', async () => {
    const m = machine();
    running = await agentFor(m, 'heal', 3_600_000);
    const { agent, remote } = running;
    const good = await remote.push(web('v1'), 'web v1');
    await agent.trigger('push');
    expect(agent.lastApplied).toBe(good);
    expect(agent.report?.result).toBe('applied');
    // Two commits whose service fails its health check: each rolled back, and the second pauses the project.
    for (const version of ['v2', 'v3']) {
      await remote.push(web(version, '/srv/web/missing'), `web ${version}, broken`);
      await agent.trigger('push');
      expect(agent.report?.result).toBe('rolled-back');
    }
    expect(await isPaused(m.host, STATE, 'web')).toMatchObject({ project: 'web', failures: 2 });
    expect(agent.lastApplied).toBe(good);

    // Someone edits the project's unit by hand (healing it means writing it back and restarting the service).
    await m.exec('sh', ['-c', `sed -i '/^\\[Service\\]/a Environment=DEBUG=1' ${UNIT} && systemctl daemon-reload`]);
    const invocation = await unitProperty(m, 'hk-web.service', 'InvocationID');
    await agent.checkDrift('timer');
    expect(await unitProperty(m, 'hk-web.service', 'InvocationID')).toBe(invocation);
    expect(await unitProperty(m, 'hk-web.service', 'ActiveState')).toBe('active');
    expect((await m.host.readFile(UNIT))!.toString('utf8')).toContain('Environment=DEBUG=1');
    const drift = await reportedDrift(remote);
    expect(drift).toMatchObject({ commit: good, policy: 'heal', healed: [], renewed: [] });
    expect(drift!.resources.map((r) => r.id)).toEqual(['unit/hk-web.service']);
    expect(drift!.held).toEqual([{ id: 'unit/hk-web.service', reason: expect.stringMatching(/project web is paused/) }]);
    expect((await remote.log('hostkit-status'))[0]).toBe(`${HOST_NAME}: drift in 1 resource(s), 1 held against ${good}`);
    expect(await remote.show('hostkit-status', `drift/${HOST_NAME}.md`)).toContain('- `unit/hk-web.service` held, not applied: held: project web is paused');
    expect(await isPaused(m.host, STATE, 'web')).toBeDefined(); // the heal did not un-pause it

    // `hostkit resume` lifts the pause: the next check heals the unit and restarts the service (the hold was the pause's doing).
    await resume(m.host, STATE, { project: 'web' });
    await agent.checkDrift('timer');
    expect((await m.host.readFile(UNIT))!.toString('utf8')).not.toContain('DEBUG=1');
    expect(await unitProperty(m, 'hk-web.service', 'InvocationID')).not.toBe(invocation);
    expect(await reportedDrift(remote)).toMatchObject({ healed: ['unit/hk-web.service'], held: [] });
  });
});
