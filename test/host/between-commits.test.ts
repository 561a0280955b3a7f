// Safe between commits, on a real host (issue #17): the agent and an
// operator's `hostkit reconcile` never run at once (the run lock, taken from
// this side through the container's root by the agent and inside the host by
// the CLI: one flock on one file); a git remote that fails twice is retried
// and the commit applied with no failure counted; and an apply of another
// Host of the repository is refused on this machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Agent } from '../../reconciler/agent/agent.js';
import type { AgentConfig } from '../../reconciler/agent/config.js';
import { AgentMetrics } from '../../reconciler/agent/metrics.js';
import { safetyStatus } from '../../reconciler/apply/quarantine.js';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { GitSource } from '../../reconciler/sources/git.js';
import { gitRemote, testAgentConfig, type GitRemote } from '../support/git-remote.js';
import { checkoutMounts, describeHost, useHost, type TestHost } from './harness.js';
import { eventually, HOST_MANIFEST, HOST_NAME, service } from './reconcile.js';

const WORKTREE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(WORKTREE, 'node_modules/node/bin/node');
const CLI = path.join(WORKTREE, 'dist/reconciler/cli.js');
const STATE = '/var/lib/hostkit';
// Shared read-write into the host: the remote's working clone is where the CLI inside reads the manifests.
const SHARED = mkdtempSync(path.join(os.tmpdir(), 'hostkit-between-'));

const slowWeb = (tag: string, seconds: number) =>
  service(
    'web',
    9311,
    `    environment:
      TAG: ${tag}
  lifecycle:
    - name: migrate
      phase: before-start
      command: [/bin/sleep, "${seconds}"]
`,
  );

const OTHER_HOST = HOST_MANIFEST.replace(`name: ${HOST_NAME}`, 'name: other-host');

function agentConfig(remote: GitRemote, state: string): AgentConfig {
  return testAgentConfig({
    url: remote.bare,
    host: HOST_NAME,
    stateDirectory: state,
    report: { enabled: false, branch: 'hostkit-status', authorName: 'HostKit agent', authorEmail: 'hostkit@localhost' },
    retry: { attempts: 4, initialDelayMs: 300, maxDelayMs: 2_000 },
  });
}

describeHost('safe between commits on a real host: the run lock, retries, the right machine', () => {
  const machine = useHost({
    bindReadOnly: checkoutMounts(WORKTREE),
    bind: [{ hostPath: SHARED }],
  });
  let remote: GitRemote;
  const agentStates: string[] = [];

  beforeAll(async () => {
    remote = await gitRemote(SHARED);
  });
  afterAll(async () => {
    await remote?.cleanup();
    for (const s of agentStates) rmSync(s, { recursive: true, force: true });
    rmSync(SHARED, { recursive: true, force: true });
  });

  // The CLI as an operator runs it on the host itself.
  const hostkit = (m: TestHost, args: string[]) => m.host.exec(NODE, [...NODE_FLAGS, CLI, ...args], { env: { NO_COLOR: '1' }, timeoutMs: 120_000 });

  function agent(m: TestHost, onSleep?: (n: number) => Promise<void>) {
    const state = mkdtempSync(path.join(os.tmpdir(), 'hostkit-between-agent-'));
    agentStates.push(state);
    const config = agentConfig(remote, state);
    const log = silentLogger();
    let sleeps = 0;
    const metrics = new AgentMetrics(HOST_NAME);
    const a = new Agent({
      config,
      host: m.host,
      source: new GitSource({ ...config.repository, stateDirectory: state, log }),
      log,
      metrics,
      redactor: new Redactor(),
      env: {},
      runSpacingMs: 0,
      sleep: async (ms) => {
        await new Promise((r) => setTimeout(r, ms));
        await onSleep?.(++sleeps);
      },
    });
    return { agent: a, metrics, sleeps: () => sleeps };
  }

  it('an operator reconcile waits while the agent applies a slow change, then finds nothing to do; with --lock-timeout 0 it exits 3; nothing is rolled back', async () => {
    const m = machine();
    const commit = await remote.push({ 'hosts/test-host.yaml': HOST_MANIFEST, 'projects/web.yaml': slowWeb('one', 12) }, 'web: slow migration');
    const { agent: a } = agent(m);
    const applying = a.trigger('test');
    // The agent holds the lock once it writes who holds it (from this side, through the container's root).
    expect(await eventually(async () => ((await m.host.readFile(`${STATE}/run.lock.json`))?.toString() ?? '').includes('hostkit agent'), 30_000, 100)).toBe(
      true,
    );
    const refused = await hostkit(m, ['reconcile', '--repo', remote.work, '--host', HOST_NAME, '--lock-timeout', '0']);
    expect(refused.exitCode).toBe(3);
    expect(refused.stderr).toContain(`Another run holds the lock ${STATE}/run.lock`);
    expect(refused.stderr).toContain(`hostkit agent (commit ${commit.slice(0, 12)})`);
    const started = Date.now();
    const waited = await hostkit(m, ['reconcile', '--repo', remote.work, '--host', HOST_NAME]);
    const waitedMs = Date.now() - started;
    await applying;
    expect(waited.stderr).toContain(`hostkit: waiting up to 5m for the run lock ${STATE}/run.lock`);
    expect(waited.stdout).toContain('Nothing to apply: the host matches the manifests.');
    expect(waited.exitCode).toBe(0);
    expect(waitedMs).toBeGreaterThan(2_000); // it really waited for the agent's migration
    expect(a.lastApplied).toBe(commit);
    const runs = JSON.parse((await hostkit(m, ['runs', '-o', 'json'])).stdout) as { runs: { status: string; commit?: string }[]; quarantined: unknown[] };
    expect(runs.runs.map((r) => r.status)).toEqual(['applied']);
    expect(runs.quarantined).toEqual([]);
    expect((await m.host.exec('systemctl', ['is-active', 'hk-web.service'])).stdout.trim()).toBe('active');
    await a.stop();
  });

  it('a git remote that fails twice, then answers: the agent retries and applies, and no failure is counted', async () => {
    const m = machine();
    const commit = await remote.push({ 'hosts/test-host.yaml': HOST_MANIFEST, 'projects/web.yaml': slowWeb('two', 0) }, 'web: tag two');
    await rename(remote.bare, `${remote.bare}.away`);
    // The remote comes back after the agent's second wait, so its first two fetches fail.
    const {
      agent: a,
      metrics,
      sleeps,
    } = agent(m, async (n) => {
      if (n === 2) await rename(`${remote.bare}.away`, remote.bare);
    });
    await a.trigger('test');
    expect(sleeps()).toBe(2);
    expect(a.lastApplied).toBe(commit);
    const env = (await m.host.readFile('/etc/hostkit/env/web.env'))!.toString();
    expect(env).toContain('TAG="two"');
    expect(await metrics.registry.getSingleMetricAsString('hostkit_agent_runs_total')).toMatch(/result="applied"\} 1/);
    expect(await metrics.registry.getSingleMetricAsString('hostkit_agent_failures_total')).not.toMatch(/\} [1-9]/);
    expect(await safetyStatus(m.host, STATE)).toMatchObject({ quarantined: [], paused: [] });
    await a.stop();
  });

  it('`hostkit reconcile --host` naming another Host of the repository is refused with both names and changes nothing; --dry-run plans it with a warning', async () => {
    const m = machine();
    await remote.push(
      {
        'hosts/test-host.yaml': HOST_MANIFEST,
        'hosts/other-host.yaml': OTHER_HOST,
        'projects/web.yaml': slowWeb('two', 0),
        'projects/other.yaml': service('other', 9312).replace(`hosts: [${HOST_NAME}]`, 'hosts: [other-host]'),
      },
      'another host',
    );
    const snapshot = async () => ({
      inventory: (await m.host.readFile(`${STATE}/inventory.json`))?.toString(),
      runs: await m.host.readdir(`${STATE}/runs`),
      units: (await m.host.readdir('/etc/systemd/system'))?.filter((u) => u.startsWith('hk-')),
    });
    const before = await snapshot();
    const refused = await hostkit(m, ['reconcile', '--repo', remote.work, '--host', 'other-host']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('The Host manifest "other-host" (hosts/other-host.yaml) does not name this machine');
    expect(refused.stderr).toContain(`reports the hostname "${HOST_NAME}"`);
    expect(refused.stderr).toContain('[HOST_MISMATCH]');
    expect(await m.host.stat('/etc/systemd/system/hk-other.service')).toBeUndefined();
    expect(await m.host.stat('/etc/hostkit/env/other.env')).toBeUndefined();
    const dry = await hostkit(m, ['reconcile', '--dry-run', '--repo', remote.work, '--host', 'other-host']);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toContain('+ unit/hk-other.service');
    expect(dry.stdout).toContain('warning: host mismatch');
    expect(await snapshot()).toEqual(before);
  });
});
