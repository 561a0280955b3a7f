// A pull request may be opened by anyone who can read the repository, and the
// agent answers it with a plan computed against the live host. That plan must
// reveal nothing of the host that HostKit did not write itself: files placed on
// the booted host by hand (holding a canary) are shown by size and fingerprint,
// never by a byte of their content. The agent runs in-process against the booted
// host (machine().host), with a bare repository as its source and a fake forge
// that records the comment it would post.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, expect, it } from 'vitest';
import { Agent, type AgentForge } from '../../reconciler/agent/agent.js';
import { DEFAULT_RETRY, type AgentConfig } from '../../reconciler/agent/config.js';
import { AgentMetrics } from '../../reconciler/agent/metrics.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { GitSource } from '../../reconciler/sources/git.js';
import { gitRemote, type GitRemote } from '../support/git-remote.js';
import { describeHost, useHost, type TestHost } from './harness.js';
import { HOST_MANIFEST, HOST_NAME, service } from './reconcile.js';

const CANARY = 'CANARY-7f3e9a';
const GIT_ENV = { GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@t' };

interface Running {
  agent: Agent;
  remote: GitRemote;
  comments: [number, string, string][];
  cleanup(): Promise<void>;
}

let running: Running | undefined;
afterEach(async () => {
  await running?.cleanup();
  running = undefined;
});

async function agentFor(m: TestHost): Promise<Running> {
  const remote = await gitRemote();
  const state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-pr-plan-'));
  const log = silentLogger();
  const config: AgentConfig = {
    file: 'agent.yaml',
    repository: { url: remote.bare, branch: 'main' },
    host: HOST_NAME,
    pollIntervalMs: 3_600_000,
    report: { enabled: false, branch: 'hostkit-status', authorName: 'HostKit agent', authorEmail: 'hostkit@localhost' },
    drift: { policy: 'report', intervalMs: 3_600_000 },
    stateDirectory: state,
    keepRuns: 50,
    logLevel: 'silent',
    lockTimeoutMs: 60_000,
    retry: DEFAULT_RETRY,
    hostMismatchOk: false,
  };
  const comments: [number, string, string][] = [];
  const forge: AgentForge = {
    async setCommitStatus() {},
    async upsertPlanComment(n, host, markdown) {
      comments.push([n, host, markdown]);
      return { id: comments.length, created: true };
    },
  };
  const agent = new Agent({
    config,
    host: m.host,
    source: new GitSource({ ...config.repository, stateDirectory: state, log }),
    log,
    metrics: new AgentMetrics(HOST_NAME),
    redactor: new Redactor(),
    forge,
    env: {},
    runSpacingMs: 0,
  });
  return {
    agent,
    remote,
    comments,
    async cleanup() {
      await agent.stop();
      await remote.cleanup();
      await rm(state, { recursive: true, force: true });
    },
  };
}

/** Push `files` on a branch off main (main is left as it was) and have the agent plan it as pull request `n`; returns the comment. */
async function planPr(r: Running, n: number, files: Record<string, string>): Promise<string> {
  const work = r.remote.work;
  const git = (args: string[]) => execa('git', args, { cwd: work, env: GIT_ENV });
  await git(['checkout', '-q', '-b', `pr-${n}`, 'main']);
  for (const [rel, content] of Object.entries(files))
    await writeFile(path.join(work, rel), content).catch(async () => {
      await execa('mkdir', ['-p', path.dirname(path.join(work, rel))]);
      await writeFile(path.join(work, rel), content);
    });
  await git(['add', '-A']);
  await git(['commit', '-qm', `pull request ${n}`]);
  const head = (await git(['rev-parse', 'HEAD'])).stdout.trim();
  await git(['push', '-q', r.remote.bare, `HEAD:refs/heads/pr-${n}`]);
  await git(['checkout', '-q', 'main']);
  const before = r.comments.length;
  await r.agent.planPullRequest({ number: n, action: 'opened', headSha: head, headRef: `pr-${n}`, baseRef: 'main' });
  expect(r.comments.length).toBe(before + 1);
  return r.comments.at(-1)![2];
}

function file(name: string, p: string, content: string): string {
  return `apiVersion: hostkit.dev/v1
kind: File
metadata: { name: ${name} }
spec:
  placement: { hosts: [${HOST_NAME}] }
  path: ${p}
  owner: root
  group: root
  mode: "0644"
  content: ${JSON.stringify(content)}
`;
}

const ENV_FILE = `apiVersion: hostkit.dev/v1
kind: EnvFile
metadata: { name: app-env }
spec:
  placement: { hosts: [${HOST_NAME}] }
  path: /srv/app/app.env
  owner: root
  group: root
  environment: { MODE: live }
`;

/** Every form a byte of the canary could take in a comment: itself, and its hex and base64 forms. */
function assertNoCanary(markdown: string): void {
  expect(markdown).not.toContain(CANARY);
  expect(markdown).not.toContain('7f3e9a');
  expect(markdown.toLowerCase()).not.toContain(Buffer.from(CANARY).toString('hex'));
  expect(markdown).not.toContain(Buffer.from(CANARY).toString('base64').slice(0, 12));
}

describeHost('pull-request plans reveal only what HostKit wrote (real host, agent PR mode)', () => {
  const machine = useHost();

  it('a File, an EnvFile and a unit declared over host files holding a canary: the comment says they exist (size, fingerprint), never their bytes', async () => {
    const m = machine();
    // Placed on the host by hand, not by HostKit.
    const placed = await m.host.exec('sh', [
      '-c',
      [
        'mkdir -p /srv/app',
        `printf 'token=${CANARY}\\n' > /srv/app/conf.txt`,
        `printf 'API_KEY=${CANARY}\\nMODE=debug\\n' > /srv/app/app.env`,
        `printf '[Service]\\nExecStart=/bin/true\\nEnvironment=KEY=${CANARY}\\n' > /etc/systemd/system/hk-canary.service`,
      ].join(' && '),
    ]);
    expect(placed.exitCode, placed.stderr).toBe(0);
    running = await agentFor(m);
    await running.remote.push({ 'hosts/test-host.yaml': HOST_MANIFEST });
    const markdown = await planPr(running, 21, {
      'hosts/conf.yaml': file('conf', '/srv/app/conf.txt', 'token=from-the-repository\n'),
      'hosts/env.yaml': ENV_FILE,
      'projects/canary.yaml': service('canary', 9511),
    });
    assertNoCanary(markdown);
    for (const [id, bytes] of [
      ['file/srv/app/conf.txt', 20],
      ['envfile/srv/app/app.env', 33],
      ['unit/hk-canary.service', 60],
    ] as const) {
      expect(markdown, id).toContain(`<code>${id}</code>`);
      expect(markdown, id).toMatch(new RegExp(`exists, ${bytes} bytes, fingerprint hmac:[0-9a-f]{12}`));
    }
    // A dry run: the host still holds what was placed there.
    expect((await m.host.readFile('/srv/app/conf.txt'))!.toString()).toContain(CANARY);
  });

  it('a file HostKit wrote shows its diff in the comment; edited by hand since, it shows as changed by hand, without the edit', async () => {
    const m = machine();
    running = await agentFor(m);
    const main = await running.remote.push({ 'hosts/test-host.yaml': HOST_MANIFEST, 'hosts/owned.yaml': file('owned', '/srv/owned/notes.txt', 'v1\n') });
    await running.agent.trigger('push');
    expect(running.agent.lastApplied).toBe(main);
    const proposal = { 'hosts/owned.yaml': file('owned', '/srv/owned/notes.txt', 'v2\n') };
    const diff = await planPr(running, 22, proposal);
    expect(diff).toContain('-v1');
    expect(diff).toContain('+v2');
    const edited = await m.host.exec('sh', ['-c', `printf 'v1\\npassword=${CANARY}\\n' > /srv/owned/notes.txt`]);
    expect(edited.exitCode).toBe(0);
    const drifted = await planPr(running, 23, proposal);
    assertNoCanary(drifted);
    expect(drifted).toMatch(/changed by hand, 26 bytes, fingerprint hmac:[0-9a-f]{12}/);
  });
});
