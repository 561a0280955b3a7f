import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { directoryYaml, envFileYaml, HOST_YAML, scratchRoot } from '../../test/support/fixtures.js';
import { AGENT_BASE_YAML, appFile, gitRemote, testAgentConfig, type GitRemote } from '../../test/support/git-remote.js';
import { RunJournal } from '../apply/journal.js';
import { isQuarantined, recordFailure, resume, safetyStatus } from '../apply/quarantine.js';
import { warning } from '../core/diagnostics.js';
import { silentLogger } from '../core/log.js';
import { changeBase } from '../diff/model.js';
import type { ResourceKind } from '../core/resource.js';
import { appendSwitch, currentLink, MARKER, releaseDir, type ReleaseMarker } from '../drivers/release/records.js';
import { drivers } from '../drivers/registry.js';
import type { AnyDriver } from '../drivers/types.js';
import { Redactor } from '../core/secrets.js';
import type { LocalHost } from '../hosts/local.js';
import type { DriftSection } from '../report/status.js';
import { ReportWriter } from '../report/writeback.js';
import { GitSource } from '../sources/git.js';
import { startWebhookServer } from '../sources/webhook.js';
import type { GateResult } from '../fleet/gate.js';
import { Agent, type AgentDeps, type AgentForge } from './agent.js';
import type { AgentConfig } from './config.js';
import { FlapGuard } from './flap.js';
import { AgentMetrics } from './metrics.js';

const TOKEN = 'tok-9f8e7d-very-secret';

const fileManifest = (content: string) => appFile('motd', content);
const BASE = AGENT_BASE_YAML;

const ENVFILE = envFileYaml('HK_TOKEN');

// The file driver, except that replacing /srv/app/cert is owed by time (as the
// certificate driver marks a renewal due): it stands for a certificate on a re-rooted host.
const fileDriver = drivers.get('file')!;
const timeDrivers = new Map<ResourceKind, AnyDriver>([
  ...drivers,
  [
    'file',
    {
      ...fileDriver,
      plan: (input) => {
        const change = fileDriver.plan(input);
        return change.id === 'file/srv/app/cert' && change.action !== 'noop' ? { ...change, owedBy: 'time' } : change;
      },
    },
  ],
]);

// Accounts need useradd, which a re-rooted host cannot run: the project's account is taken as present.
const presentAccounts: AnyDriver = {
  ...drivers.get('account')!,
  observe: async () => new Map(),
  plan: ({ resource }) => ({ ...changeBase(resource), action: 'noop', fields: [], ops: [], disruptive: false }),
};

/** A project of its own ("site", run as tester) with one file, /srv/site/motd. */
const SITE_PROJECT = `apiVersion: hostkit.dev/v1
kind: Project
metadata: { name: site }
spec:
  placement: { hosts: [test-1] }
  runtime: static
  user: tester
  files:
    - name: motd
      content: "site\\n"
      mode: "0644"
`;

async function driftOnBranch(remote: GitRemote): Promise<DriftSection> {
  return (JSON.parse((await remote.show('hostkit-status', 'status/test-1.json'))!) as { drift: DriftSection }).drift;
}

interface Setup {
  remote: GitRemote;
  root: string;
  host: LocalHost;
  state: string;
  agent: Agent;
  source: GitSource;
  metrics: AgentMetrics;
  forge: { statuses: [string, string, string][]; descriptions: string[]; comments: [number, string, string][] } & AgentForge;
  cleanup(): Promise<void>;
}

async function setup(
  options: {
    policy?: 'report' | 'heal';
    flap?: FlapGuard;
    now?: () => number;
    reportBranch?: string;
    spacingMs?: number;
    drivers?: ReadonlyMap<ResourceKind, AnyDriver>;
    keepRuns?: number;
    retry?: AgentConfig['retry'];
    sleep?: (ms: number) => Promise<void>;
    rollout?: AgentDeps['rollout'];
    /** Reuse these (a restarted agent): the remote, the host, the agent's state directory. */
    reuse?: Pick<Setup, 'remote' | 'root' | 'host' | 'state'>;
  } = {},
): Promise<Setup> {
  const remote = options.reuse?.remote ?? (await gitRemote());
  const scratch = options.reuse ? { root: options.reuse.root, host: options.reuse.host, cleanup: async () => undefined } : await scratchRoot();
  const state = options.reuse?.state ?? (await mkdtemp(path.join(os.tmpdir(), 'hostkit-agent-state-')));
  const config: AgentConfig = testAgentConfig({
    url: remote.bare,
    host: 'test-1',
    stateDirectory: state,
    pollIntervalMs: 60_000,
    report: { enabled: true, branch: options.reportBranch ?? 'hostkit-status', authorName: 'HostKit agent', authorEmail: 'hostkit@localhost' },
    drift: { policy: options.policy ?? 'report', intervalMs: 60_000 },
    lockTimeoutMs: 10_000,
    retry: options.retry ?? { attempts: 1, initialDelayMs: 10, maxDelayMs: 10 },
    keepRuns: options.keepRuns ?? 50,
  });
  const log = process.env.AGENT_DEBUG ? (await import('pino')).pino({ level: 'debug' }) : silentLogger();
  const source = new GitSource({ ...config.repository, stateDirectory: state, log });
  const metrics = new AgentMetrics('test-1');
  const statuses: [string, string, string][] = [];
  const descriptions: string[] = [];
  const comments: [number, string, string][] = [];
  const forge = {
    statuses,
    descriptions,
    comments,
    async setCommitStatus(sha: string, host: string, state: string, description: string) {
      statuses.push([sha, host, state]);
      descriptions.push(description);
    },
    async upsertPlanComment(n: number, host: string, markdown: string) {
      comments.push([n, host, markdown]);
      return { id: 1, created: comments.length === 1 };
    },
  };
  const agent = new Agent({
    config,
    host: scratch.host,
    source,
    log,
    metrics,
    redactor: new Redactor(),
    reports: new ReportWriter({ url: remote.bare, branch: config.report.branch, dir: path.join(state, 'reports'), author: { name: 'a', email: 'a@b.c' }, log }),
    forge,
    env: { HK_TOKEN: TOKEN },
    ...(options.flap ? { flap: options.flap } : {}),
    ...(options.drivers ? { drivers: options.drivers } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
    runSpacingMs: options.spacingMs ?? 0,
    ...(options.rollout ? { rollout: options.rollout } : {}),
  });
  return {
    remote,
    root: scratch.root,
    host: scratch.host,
    state,
    agent,
    source,
    metrics,
    forge,
    async cleanup() {
      await agent.stop();
      await scratch.cleanup();
      await remote.cleanup();
      await rm(state, { recursive: true, force: true });
    },
  };
}

describe('reconciler/agent/agent', () => {
  let s: Setup | undefined;
  afterEach(async () => {
    await s?.cleanup();
    s = undefined;
  });

  it('applies the pushed commit, reports it on the status branch naming the commit, and sets commit statuses', async () => {
    s = await setup();
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('hello\n'),
      'files/env.yaml': ENVFILE,
    });
    await s.agent.trigger('test');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
    expect(s.agent.lastApplied).toBe(commit);
    const status = JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!) as {
      commit: string;
      result: string;
      resources: { id: string; state: string }[];
    };
    expect(status).toMatchObject({ commit, result: 'applied' });
    expect(status.resources).toContainEqual({ id: 'file/srv/app/motd', kind: 'file', state: 'created', ms: expect.any(Number) });
    expect((await s.remote.log('hostkit-status'))[0]).toContain(commit);
    expect(await s.remote.show('hostkit-status', 'status/test-1.md')).toContain('applied');
    expect(await s.remote.show('main', 'status/test-1.json')).toBeUndefined(); // main stays clean
    expect(s.forge.statuses).toEqual([
      [commit, 'test-1', 'pending'],
      [commit, 'test-1', 'success'],
    ]);
    // The same commit again: no run, no new report.
    const reports = (await s.remote.log('hostkit-status')).length;
    await s.agent.trigger('again');
    expect((await s.remote.log('hostkit-status')).length).toBe(reports);
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_runs_total')).toContain('result="applied"} 1');
  });

  it('holds a commit the rollout gate does not let through, reports why, and applies it when the bake it waits for ends', async () => {
    let answer: GateResult = { go: false, state: 'waiting', wave: 1, reason: 'waiting for wave 1 (canary) to bake', retryAt: Date.now() + 1500 };
    const asked: string[] = [];
    s = await setup({
      rollout: {
        check: async (commit) => {
          asked.push(commit);
          return answer;
        },
      },
    });
    const commit = await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    await expect(readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).rejects.toThrow(/ENOENT/);
    const held = JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!) as {
      commit?: string;
      rollout: { held: { commit: string; reason: string } };
    };
    expect(held.commit).toBeUndefined(); // nothing applied yet
    expect(held.rollout.held).toMatchObject({ commit, reason: 'waiting for wave 1 (canary) to bake' });
    expect(s.forge.statuses).toEqual([[commit, 'test-1', 'pending']]);
    // Asked again: still waiting, and no second report (one per state).
    const reports = (await s.remote.log('hostkit-status')).length;
    await s.agent.trigger('poll');
    expect((await s.remote.log('hostkit-status')).length).toBe(reports);
    // The bake ends: the agent wakes on its own and applies.
    answer = { go: true, wave: 2, batch: 1 };
    for (let i = 0; i < 100 && s.agent.lastApplied !== commit; i++) await new Promise((r) => setTimeout(r, 50));
    await s.agent.idle();
    expect(s.agent.lastApplied).toBe(commit);
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
    const applied = JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!) as { commit: string; rollout: unknown };
    expect(applied).toMatchObject({ commit, rollout: { wave: 2, batch: 1 } });
    expect(asked.length).toBeGreaterThanOrEqual(3);
  });

  it('a held agent looks again on a report by a host its wait depends on, not on one by a host it does not', async () => {
    const asked: string[] = [];
    s = await setup({
      rollout: {
        check: async (commit) => {
          asked.push(commit);
          return { go: false, state: 'waiting', wave: 1, reason: 'waiting for wave 1 (canary): web-1 has not reported', unaffectedBy: ['test-1', 'web-7'] };
        },
      },
    });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    expect(asked).toHaveLength(1);
    const agent = s.agent;
    const report = (n: number, message: string | undefined) =>
      agent.onWebhook({ kind: 'push', deliveryId: `r${n}`, ref: 'refs/heads/hostkit-status', ...(message !== undefined ? { headMessage: message } : {}) });
    report(1, 'web-7: applied at 0123');
    await new Promise((r) => setTimeout(r, 200));
    await s.agent.idle();
    expect(asked).toHaveLength(1);
    report(2, 'web-1: applied at 0123');
    await new Promise((r) => setTimeout(r, 200));
    await s.agent.idle();
    expect(asked).toHaveLength(2);
    report(3, undefined); // a payload without the head commit: look again
    await new Promise((r) => setTimeout(r, 200));
    await s.agent.idle();
    expect(asked).toHaveLength(3);
    report(4, 'rollout resume at 0123 by ops@laptop'); // a decision: look again
    await new Promise((r) => setTimeout(r, 200));
    await s.agent.idle();
    expect(asked).toHaveLength(4);
  });

  it('looks again when a report the wait depends on landed while the gate was reading the branch', async () => {
    const asked: string[] = [];
    const push = (n: number, message: string) =>
      s!.agent.onWebhook({ kind: 'push', deliveryId: `d${n}`, ref: 'refs/heads/hostkit-status', headMessage: message });
    s = await setup({
      rollout: {
        check: async (commit) => {
          asked.push(commit);
          // Webhooks arriving mid-check: one by a host the wait does not depend on, then (first check only) the canary's.
          push(asked.length * 10, 'web-7: waiting');
          if (asked.length === 1) push(asked.length * 10 + 1, 'web-1: applied at 0123');
          return { go: false, state: 'waiting', wave: 1, reason: 'waiting for wave 1 (canary): web-1 has not reported', unaffectedBy: ['test-1', 'web-7'] };
        },
      },
    });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    for (let i = 0; i < 40 && asked.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    await s.agent.idle();
    expect(asked).toHaveLength(2); // looked again once for the canary's report, not for web-7's
  });

  it('names the release each project with a source serves in its report and in the commit status', async () => {
    // The release driver does nothing here (it needs git and systemd-run): the releases are laid out on the
    // re-rooted host as the driver leaves them, and the agent reads what `current` serves after the run.
    const keptReleases: AnyDriver = {
      ...drivers.get('release')!,
      desire: async (resources) => new Map(resources.map((r) => [r.id, { desired: { buildDigest: '', subjects: [] }, diagnostics: [] }])),
      observe: async () => new Map(),
      plan: ({ resource }) => ({ ...changeBase(resource), action: 'noop', fields: [], ops: [], disruptive: false }),
    };
    s = await setup({ drivers: new Map([...drivers, ['account', presentAccounts], ['release', keptReleases]]) });
    const commit = 'c'.repeat(40);
    const id = `20261207T101500Z-${commit.slice(0, 12)}-b9c8`;
    const marker: ReleaseMarker = {
      source: { git: { url: 'file:///srv/src', ref: commit } },
      commit,
      buildDigest: 'b9c8'.padEnd(64, '0'),
      builtAt: '2026-12-07T10:15:09.000Z',
      buildSeconds: 1,
      id,
    };
    const owner = { uid: 0, gid: 0, mode: 0o755 };
    for (const dir of ['/srv', '/srv/site', '/srv/site/releases', releaseDir('site', id)]) await s.host.mkdir(dir, owner);
    await s.host.writeFile(`${releaseDir('site', id)}/${MARKER}`, JSON.stringify(marker), { ...owner, mode: 0o644 });
    await s.host.symlink(`releases/${id}`, currentLink('site'));
    await appendSwitch(s.host, '/var/lib/hostkit', 'site', { id, at: '2026-12-07T10:15:10.000Z', run: 'r1' });
    const site = SITE_PROJECT.replace('  files:', `  source:\n    git: { url: "file:///srv/src", ref: "${commit}" }\n  files:`);
    const pushed = await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'projects/site.yaml': site });
    await s.agent.trigger('test');
    const status = JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!) as { result: string; releases: unknown };
    expect(status).toMatchObject({ result: 'applied', releases: [{ project: 'site', id, commit }] });
    expect(await s.remote.show('hostkit-status', 'status/test-1.md')).toContain(`- **Release of site:** \`${id}\` (commit \`${commit}\`)`);
    expect(s.forge.statuses.at(-1)).toEqual([pushed, 'test-1', 'success']);
    expect(s.forge.descriptions.at(-1)).toBe(`2 change(s) applied; release: site ${id}`);
  });

  it('never reacts to report commits, even when reports go to the watched branch', async () => {
    s = await setup({ reportBranch: 'main' });
    const commit = await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    const tip = (await s.source.remoteHead())!;
    expect(tip).not.toBe(commit); // the report commit is on main now
    expect(await s.remote.show('main', 'status/test-1.json')).toContain(commit);
    const runsBefore = await s.metrics.registry.getSingleMetricAsString('hostkit_agent_runs_total');
    await s.agent.trigger('poll');
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_runs_total')).toBe(runsBefore);
    expect(s.agent.lastApplied).toBe(commit);
  });

  it('100 signed webhooks (real HTTP) within a second produce at most two reconcile runs, none interleaved', async () => {
    s = await setup({ spacingMs: 1000 });
    const secret = Buffer.from('webhook-secret-for-tests');
    const agent = s.agent;
    const received: number[] = [];
    const onEvent = (e: Parameters<Agent['onWebhook']>[0]) => {
      received.push(performance.now());
      agent.onWebhook(e);
    };
    const server = await startWebhookServer({ host: '127.0.0.1', port: 0, secret, onEvent, log: silentLogger() });
    try {
      // An agent that has been running: the first commit applied, then a push and a burst of webhooks.
      await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('zero\n') });
      await s.agent.trigger('start-up');
      s.agent.runs.length = 0;
      const commit = await s.remote.push({ 'files/motd.yaml': fileManifest('one\n') });
      const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
      const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      const answers: Promise<number>[] = [];
      for (let i = 0; i < 100; i++) {
        const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': `d-${i}`, 'x-hub-signature-256': signature };
        answers.push(fetch(`${server.url}/webhook`, { method: 'POST', headers, body }).then((r) => r.status));
      }
      expect(await Promise.all(answers)).toEqual(Array(100).fill(202));
      expect(received).toHaveLength(100);
      expect(received.at(-1)! - received[0]!).toBeLessThan(1000); // all 100 reached the loop within a second
      await s.agent.idle();
    } finally {
      await server.close();
    }
    const runs = s.agent.runs.filter((r) => r.kind === 'reconcile');
    expect(runs.length).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(2);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('one\n');
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_webhooks_total')).toContain('kind="push"} 100');
  });

  it('pushes to other branches and pings wake nothing', async () => {
    s = await setup();
    s.agent.onWebhook({ kind: 'push', deliveryId: 'x', ref: 'refs/heads/feature' });
    s.agent.onWebhook({ kind: 'ping', deliveryId: 'y' });
    await s.agent.idle();
    expect(s.agent.runs).toEqual([]);
  });

  it('reports drift with field-level diffs and no secret, removes the drift file when it is gone, and heals with a flap back-off', async () => {
    let clock = Date.parse('2026-11-22T06:00:00Z');
    s = await setup({ policy: 'heal', flap: new FlapGuard({ baseMs: 600_000, windowMs: 3_600_000 }), now: () => clock });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n'), 'files/env.yaml': ENVFILE });
    await s.agent.trigger('test');
    const motd = path.join(s.root, 'srv/app/motd');
    const env = path.join(s.root, 'srv/app/app.env');
    // Someone edits both files by hand: first heal is immediate.
    await writeFile(motd, 'tampered\n');
    await writeFile(env, 'MODE=debug\nTOKEN="other-secret-value"\n');
    await s.agent.checkDrift('test');
    expect(await readFile(motd, 'utf8')).toBe('hello\n');
    expect(await readFile(env, 'utf8')).toContain(TOKEN);
    let drift = (await s.remote.show('hostkit-status', 'drift/test-1.md'))!;
    expect(drift).toContain('file/srv/app/motd');
    // A hand edit may hold anything (a pasted password): its size and fingerprint, never its lines.
    expect(drift).toMatch(/changed by hand, 9 bytes, fingerprint hmac:[0-9a-f]{12}/);
    expect(drift).not.toContain('tampered');
    expect(drift).toContain('Healed');
    const everything = drift + (await s.remote.show('hostkit-status', 'status/test-1.json'))! + (await s.remote.show('hostkit-status', 'status/test-1.md'))!;
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain('other-secret-value');
    // It drifts again a minute later: healed once more, then it backs off.
    clock += 60_000;
    await writeFile(motd, 'tampered again\n');
    await s.agent.checkDrift('test');
    expect(await readFile(motd, 'utf8')).toBe('hello\n');
    clock += 60_000;
    await writeFile(motd, 'tampered a third time\n');
    await s.agent.checkDrift('test');
    expect(await readFile(motd, 'utf8')).toBe('tampered a third time\n'); // backing off, not healing
    drift = (await s.remote.show('hostkit-status', 'drift/test-1.md'))!;
    expect(drift).toContain('keeps drifting');
    // After the back-off it heals again, and with no drift left the drift file goes away.
    clock += 600_001;
    await s.agent.checkDrift('test');
    expect(await readFile(motd, 'utf8')).toBe('hello\n');
    clock += 60_000;
    await s.agent.checkDrift('test');
    expect(await s.remote.show('hostkit-status', 'drift/test-1.md')).toBeUndefined();
  });

  it('keeps the newest keepRuns run journals after each apply and each heal', async () => {
    s = await setup({ policy: 'heal', keepRuns: 2 });
    const runs = async () => ((await s!.host.readdir('/var/lib/hostkit/runs')) ?? []).sort();
    for (const text of ['one\n', 'two\n', 'three\n']) {
      await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest(text) });
      await s.agent.trigger(text);
    }
    const afterApplies = await runs();
    expect(afterApplies).toHaveLength(2);
    // The newest two are what `hostkit rollback --last` and `hostkit runs` still need.
    expect((await RunJournal.load(s.host, '/var/lib/hostkit', afterApplies[1]!))!.record.commit).toBe(s.agent.lastApplied);
    await writeFile(path.join(s.root, 'srv/app/motd'), 'tampered\n');
    await s.agent.checkDrift('test');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('three\n');
    const afterHeal = await runs();
    expect(afterHeal).toHaveLength(2);
    expect(afterHeal[0]).toBe(afterApplies[1]);
  });

  it('before healing drift, rolls back a run a killed process left open', async () => {
    s = await setup({ policy: 'heal' });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    // A run that backed up the file, wrote half of its change and was killed.
    const open = await RunJournal.open(s.host, '/var/lib/hostkit', { type: 'apply', host: 'test-1', planned: [] });
    await open.backupFile('file/srv/app/motd', '/srv/app/motd');
    await writeFile(path.join(s.root, 'srv/app/motd'), 'half\n');
    await s.agent.checkDrift('test');
    expect((await RunJournal.load(s.host, '/var/lib/hostkit', open.record.id))!.status).toBe('interrupted-rolled-back');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
  });

  it('with policy report, drift is reported and the host left alone', async () => {
    s = await setup({ policy: 'report' });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    await writeFile(path.join(s.root, 'srv/app/motd'), 'tampered\n');
    await s.agent.checkDrift('test');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('tampered\n');
    expect(await s.remote.show('hostkit-status', 'drift/test-1.md')).toMatch(/file\/srv\/app\/motd[\s\S]*\/content/);
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_drifted_resources')).toContain('} 1');
  });

  it('invalid manifests are reported as such, with the commit status failed, and nothing is applied', async () => {
    s = await setup();
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('x').replace('mode: "0644"', 'mode: 644'),
    });
    await s.agent.trigger('test');
    expect(JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!)).toMatchObject({ commit, result: 'invalid' });
    expect(s.forge.statuses.at(-1)).toEqual([commit, 'test-1', 'failure']);
    await expect(readFile(path.join(s.root, 'srv/app/motd'))).rejects.toThrow();
    expect(s.agent.lastApplied).toBeUndefined();
  });

  it('does not retry a commit whose apply failed and was rolled back, until hostkit resume lifts its quarantine', async () => {
    // The file driver, failing to write one file while `broken` is set (as a full disk would).
    let broken = true;
    const fileDriver = drivers.get('file')!;
    const failing: AnyDriver = {
      ...fileDriver,
      apply: async (change, ctx, state) => {
        if (broken && change.id === 'file/srv/app/blocked') throw new Error('No space left on device (simulated)');
        return fileDriver.apply(change, ctx, state);
      },
    };
    s = await setup({ drivers: new Map([...drivers, ['file', failing]]) });
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('hello\n'),
      'files/blocked.yaml': appFile('blocked', 'x\n'),
    });
    await s.agent.trigger('test');
    expect(JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!)).toMatchObject({ commit, result: 'rolled-back' });
    await expect(readFile(path.join(s.root, 'srv/app/motd'))).rejects.toThrow(); // rolled back
    expect(await isQuarantined(s.host, '/var/lib/hostkit', commit)).toBeDefined();
    const reports = (await s.remote.log('hostkit-status')).length;
    broken = false;
    await s.agent.trigger('again');
    expect((await s.remote.log('hostkit-status')).length).toBe(reports); // quarantined: not retried
    // The operator fixed the disk and lifts the quarantine: the same commit runs again and applies.
    await resume(s.host, '/var/lib/hostkit', { commit });
    await s.agent.trigger('resumed');
    expect(JSON.parse((await s.remote.show('hostkit-status', 'status/test-1.json'))!)).toMatchObject({ commit, result: 'applied' });
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
  });

  it('posts the plan of a pull request head against the live state, without applying it', async () => {
    s = await setup();
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    // A branch with a change, as a pull request head.
    const { execa } = await import('execa');
    const env = { GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@t' };
    await writeFile(path.join(s.remote.work, 'files/motd.yaml'), fileManifest('proposed\n'));
    await execa('git', ['commit', '-qam', 'proposal'], { cwd: s.remote.work, env });
    const head = (await execa('git', ['rev-parse', 'HEAD'], { cwd: s.remote.work })).stdout.trim();
    await execa('git', ['push', '-q', s.remote.bare, 'HEAD:refs/heads/feature'], { cwd: s.remote.work });
    await s.agent.planPullRequest({ number: 7, action: 'opened', headSha: head, headRef: 'feature', baseRef: 'main' });
    expect(s.forge.comments).toHaveLength(1);
    const [n, host, markdown] = s.forge.comments[0]!;
    expect([n, host]).toEqual([7, 'test-1']);
    expect(markdown).toContain(head.slice(0, 12));
    expect(markdown).toContain('file/srv/app/motd');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
  });

  it('retries a fetch that fails for a transient reason with back-off, then applies, and counts no failure', async () => {
    const waits: number[] = [];
    let remoteDir = '';
    s = await setup({
      retry: { attempts: 4, initialDelayMs: 1_000, maxDelayMs: 60_000 },
      // The remote comes back during the second wait.
      sleep: async (ms) => {
        waits.push(ms);
        if (waits.length === 2) await rename(`${remoteDir}.away`, remoteDir);
      },
    });
    remoteDir = s.remote.bare;
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('retried\n'),
      'files/env.yaml': ENVFILE,
    });
    await rename(remoteDir, `${remoteDir}.away`);
    await s.agent.trigger('test');
    expect(waits).toEqual([1_000, 2_000]);
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('retried\n');
    expect(s.agent.lastApplied).toBe(commit);
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_runs_total')).not.toContain('result="error"');
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_failures_total')).not.toMatch(/\} [1-9]/);
  });

  it('a remote that stays away past every try is reported as a failed fetch, and the commit is tried at the next trigger', async () => {
    s = await setup({ retry: { attempts: 3, initialDelayMs: 1, maxDelayMs: 1 } });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('later\n'), 'files/env.yaml': ENVFILE });
    await rename(s.remote.bare, `${s.remote.bare}.away`);
    await s.agent.trigger('test');
    expect(s.agent.lastApplied).toBeUndefined();
    await rename(`${s.remote.bare}.away`, s.remote.bare);
    await s.agent.trigger('test');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('later\n');
  });

  it('at start-up converges the commit it applied last once (what was lost comes back), then follows the branch', async () => {
    s = await setup();
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('kept\n'),
      'files/env.yaml': ENVFILE,
    });
    await s.agent.trigger('test');
    expect(s.agent.lastApplied).toBe(commit);
    await s.agent.stop();
    // While the agent is down the file goes (as a reboot loses what lived in memory).
    await rm(path.join(s.root, 'srv/app/motd'));
    const restarted = await setup({ reuse: s });
    const first = s;
    s = restarted;
    await restarted.agent.start({ poll: false, drift: false });
    await restarted.agent.idle();
    expect(await readFile(path.join(first.root, 'srv/app/motd'), 'utf8')).toBe('kept\n');
    expect(restarted.agent.runs.map((r) => r.kind)).toEqual(['converge', 'reconcile']);
    const status = JSON.parse((await first.remote.show('hostkit-status', 'status/test-1.json'))!) as { commit: string; result: string; trigger: string[] };
    expect(status).toMatchObject({ commit, result: 'applied', trigger: ['startup: the commit applied last'] });
    await first.cleanup();
  });

  it('with policy report, a change owed by time is applied on the drift interval and reported renewed; hand drift is only reported', async () => {
    s = await setup({ policy: 'report', drivers: timeDrivers });
    const commit = await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': BASE,
      'files/motd.yaml': fileManifest('hello\n'),
      'files/cert.yaml': appFile('cert', 'fresh\n'),
    });
    await s.agent.trigger('test');
    const cert = path.join(s.root, 'srv/app/cert');
    const motd = path.join(s.root, 'srv/app/motd');
    await writeFile(cert, 'near expiry\n'); // time passed: its replacement is owed
    await writeFile(motd, 'tampered\n'); // a hand edit
    await s.agent.checkDrift('timer');
    expect(await readFile(cert, 'utf8')).toBe('fresh\n');
    expect(await readFile(motd, 'utf8')).toBe('tampered\n');
    const drift = await driftOnBranch(s.remote);
    expect(drift).toMatchObject({ commit, policy: 'report', renewed: ['file/srv/app/cert'], healed: [], held: [] });
    expect(drift.resources.map((r) => [r.id, r.owedBy])).toEqual([
      ['file/srv/app/cert', 'time'],
      ['file/srv/app/motd', undefined],
    ]);
    expect((await s.remote.log('hostkit-status'))[0]).toBe(`test-1: drift in 1 resource(s), 1 renewed against ${commit}`);
    expect(await s.remote.show('hostkit-status', 'drift/test-1.md')).toContain('Renewed (owed by time, applied whatever the policy): `file/srv/app/cert`.');
    expect(await s.remote.show('hostkit-status', 'status/test-1.md')).toContain('(policy: report); 1 renewed');
    // The renewal went through the one door: a run journal for the commit, only the renewal in it.
    const runs = ((await s.host.readdir('/var/lib/hostkit/runs')) ?? []).sort();
    const renewal = (await RunJournal.load(s.host, '/var/lib/hostkit', runs.at(-1)!))!;
    expect(renewal.record.commit).toBe(commit);
    expect(renewal.record.planned.map((p) => p.id)).toEqual(['file/srv/app/cert']);
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_drifted_resources')).toContain('} 1');
    expect(await s.metrics.registry.getSingleMetricAsString('hostkit_agent_drift_checks_total')).toContain('outcome="renewed"} 1');
    // The hand edit stays reported, and is not applied on later checks either.
    await s.agent.checkDrift('timer');
    expect(await readFile(motd, 'utf8')).toBe('tampered\n');
  });

  it('a renewal that ends in a warning at its origin (as when the CA refuses an order) is not reported renewed; the warning is', async () => {
    const timeFile = timeDrivers.get('file')!;
    const refusing: AnyDriver = {
      ...timeFile,
      apply: async (change, ctx, state) => {
        const undo: unknown = await timeFile.apply(change, ctx, state);
        if (change.owedBy === 'time') ctx.warnings.push(warning('certificate not issued', 'the CA refused the order (simulated)', change.origin));
        return undo;
      },
    };
    s = await setup({ policy: 'report', drivers: new Map([...timeDrivers, ['file', refusing]]) });
    await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/cert.yaml': appFile('cert', 'fresh\n') });
    await s.agent.trigger('test');
    await writeFile(path.join(s.root, 'srv/app/cert'), 'near expiry\n');
    await s.agent.checkDrift('timer');
    const drift = await driftOnBranch(s.remote);
    expect(drift.renewed).toEqual([]);
    expect(drift.warnings).toEqual(['certificate not issued: the CA refused the order (simulated)']);
    expect(await s.remote.show('hostkit-status', 'drift/test-1.md')).toContain('- warning: certificate not issued: the CA refused the order (simulated)');
  });

  it("under heal, a paused project's drift is held (not applied) and reported held; other drift is healed, and the pause stays", async () => {
    s = await setup({ policy: 'heal', drivers: new Map([...drivers, ['account', presentAccounts]]) });
    // The project declares the tester account (as its user), so the base declares only /srv/app.
    await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': directoryYaml('app', '/srv/app', '0755'),
      'files/motd.yaml': fileManifest('hello\n'),
      'projects/site.yaml': SITE_PROJECT,
    });
    await s.agent.trigger('test');
    const siteMotd = path.join(s.root, 'srv/site/motd');
    expect(await readFile(siteMotd, 'utf8')).toBe('site\n');
    // The project failed on later commits (with another desired state) often enough to be paused.
    await recordFailure(
      s.host,
      '/var/lib/hostkit',
      { commit: 'f'.repeat(40), reason: 'health/site failed', projects: [{ name: 'site', fingerprint: 'of-the-failed-commit' }] },
      { pauseAfterFailures: 1, failureWindowMs: 3_600_000 },
    );
    await writeFile(siteMotd, 'tampered\n');
    await writeFile(path.join(s.root, 'srv/app/motd'), 'tampered\n');
    await s.agent.checkDrift('timer');
    expect(await readFile(siteMotd, 'utf8')).toBe('tampered\n');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
    const drift = await driftOnBranch(s.remote);
    expect(drift.healed).toEqual(['file/srv/app/motd']);
    expect(drift.held).toEqual([{ id: 'file/srv/site/motd', reason: expect.stringMatching(/project site is paused/) }]);
    expect(await s.remote.show('hostkit-status', 'drift/test-1.md')).toContain('- `file/srv/site/motd` held, not applied: held: project site is paused');
    expect((await s.remote.log('hostkit-status'))[0]).toMatch(/^test-1: drift in 2 resource\(s\), 1 healed, 1 held against /);
    expect((await safetyStatus(s.host, '/var/lib/hostkit')).paused.map((p) => p.project)).toEqual(['site']);
  });

  it('start-up convergence of the commit applied last un-pauses no project: a paused one stays held', async () => {
    s = await setup({ drivers: new Map([...drivers, ['account', presentAccounts]]) });
    await s.remote.push({
      'hosts/test-1.yaml': HOST_YAML,
      'base.yaml': directoryYaml('app', '/srv/app', '0755'),
      'files/motd.yaml': fileManifest('hello\n'),
      'projects/site.yaml': SITE_PROJECT,
    });
    await s.agent.trigger('test');
    // Paused by later failed commits (another fingerprint); then, while the agent is down, both files go.
    await recordFailure(
      s.host,
      '/var/lib/hostkit',
      { commit: 'f'.repeat(40), reason: 'health/site failed', projects: [{ name: 'site', fingerprint: 'of-the-failed-commit' }] },
      { pauseAfterFailures: 1, failureWindowMs: 3_600_000 },
    );
    await s.agent.stop();
    await rm(path.join(s.root, 'srv/site/motd'));
    await rm(path.join(s.root, 'srv/app/motd'));
    const first = s;
    s = await setup({ reuse: first, drivers: new Map([...drivers, ['account', presentAccounts]]) });
    await s.agent.start({ poll: false, drift: false });
    await s.agent.idle();
    expect(await readFile(path.join(first.root, 'srv/app/motd'), 'utf8')).toBe('hello\n');
    await expect(readFile(path.join(first.root, 'srv/site/motd'), 'utf8')).rejects.toThrow();
    expect((await safetyStatus(first.host, '/var/lib/hostkit')).paused.map((p) => p.project)).toEqual(['site']);
    await first.cleanup();
  });

  it('under heal, drift against a quarantined commit is not healed: it is reported held', async () => {
    s = await setup({ policy: 'heal' });
    const commit = await s.remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': BASE, 'files/motd.yaml': fileManifest('hello\n') });
    await s.agent.trigger('test');
    // e.g. an earlier heal of this commit failed its health check and was rolled back.
    await recordFailure(s.host, '/var/lib/hostkit', { commit, reason: 'health/app failed', projects: [] });
    await writeFile(path.join(s.root, 'srv/app/motd'), 'tampered\n');
    await s.agent.checkDrift('timer');
    expect(await readFile(path.join(s.root, 'srv/app/motd'), 'utf8')).toBe('tampered\n');
    const drift = await driftOnBranch(s.remote);
    expect(drift.healed).toEqual([]);
    expect(drift.held).toEqual([{ id: 'file/srv/app/motd', reason: expect.stringMatching(/quarantined.*hostkit resume/) }]);
  });
});
