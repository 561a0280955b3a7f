// npm run bench:agent -- [--runs 7] [--polls 20]
// The agent's two costs that matter day to day:
//  1. latency from a webhook's receipt (a signed HTTP POST to the real webhook
//     server) to a one-file change applied, and to its report pushed;
//  2. one poll of an unchanged remote (ms, and git processes started).
// Runs in this process against a LocalHost re-rooted into a temp directory
// (File manifests only, so no systemd is needed) and a real bare repository.
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../../reconciler/agent/agent.js';
import type { AgentConfig } from '../../reconciler/agent/config.js';
import { AgentMetrics } from '../../reconciler/agent/metrics.js';
import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { ReportWriter } from '../../reconciler/report/writeback.js';
import { GitSource } from '../../reconciler/sources/git.js';
import { startWebhookServer } from '../../reconciler/sources/webhook.js';
import { HOST_YAML, scratchRoot } from '../support/fixtures.js';
import { AGENT_BASE_YAML, appFile, gitRemote, testAgentConfig } from '../support/git-remote.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, polls: { type: 'string', default: '20' } } });
const runs = Number(values.runs);
const polls = Number(values.polls);
const SECRET = Buffer.from('bench-secret-0123456789');

const page = (n: number) => appFile('index', `version ${n}\n`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const max = (xs: number[]) => Math.max(...xs);

const remote = await gitRemote();
const scratch = await scratchRoot();
const state = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bench-agent-'));
const log = silentLogger();
const config: AgentConfig = testAgentConfig({
  url: remote.bare,
  host: 'test-1',
  stateDirectory: state,
  report: { enabled: true, branch: 'hostkit-status', authorName: 'bench', authorEmail: 'bench@localhost' },
});
const source = new GitSource({ ...config.repository, stateDirectory: state, log });
const metrics = new AgentMetrics('test-1');
const agent = new Agent({
  config,
  host: scratch.host,
  source,
  log,
  metrics,
  redactor: new Redactor(),
  reports: new ReportWriter({ url: remote.bare, branch: 'hostkit-status', dir: path.join(state, 'reports'), author: { name: 'b', email: 'b@b' }, log }),
  runSpacingMs: 0,
});
const server = await startWebhookServer({ host: '127.0.0.1', port: 0, secret: SECRET, onEvent: (e) => agent.onWebhook(e), log });
const target = path.join(scratch.root, 'srv/app/index');

try {
  await remote.push({ 'hosts/test-1.yaml': HOST_YAML, 'base.yaml': AGENT_BASE_YAML, 'site/index.yaml': page(0) });
  await agent.trigger('initial');
  if (agent.report?.result !== 'applied') throw new Error(`the first commit was not applied: ${JSON.stringify(agent.report)}`);
  const applied: number[] = [];
  const reported: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const commit = await remote.push({ 'site/index.yaml': page(i) }, `page ${i}`);
    const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
    const started = performance.now();
    const res = await fetch(`${server.url}/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': randomUUID(),
        'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
      },
      body,
    });
    if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
    for (;;) {
      const text = await readFile(target, 'utf8').catch(() => '');
      if (text === `version ${i}\n`) break;
      if (performance.now() - started > 60_000) throw new Error(`change ${i} not applied after 60 s; last report: ${JSON.stringify(agent.report)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    applied.push(performance.now() - started);
    await agent.idle();
    reported.push(performance.now() - started);
    if (agent.report?.commit !== commit) throw new Error(`report names ${agent.report?.commit}, expected ${commit}`);
  }

  const pollMs: number[] = [];
  const before = source.processes;
  const expected = await remoteHeadOf();
  if (expected !== agent.lastApplied) throw new Error('the remote is not at the applied commit');
  for (let i = 0; i < polls; i++) {
    const t = performance.now();
    const head = await source.remoteHead(); // what the poller does; equal to the last seen commit, so nothing more
    pollMs.push(performance.now() - t);
    if (head !== expected) throw new Error(`unexpected remote head ${head}`);
  }
  const processesPerPoll = (source.processes - before) / polls;

  const rows = [
    ['webhook received -> file applied (ms)', median(applied), max(applied)],
    ['webhook received -> report pushed (ms)', median(reported), max(reported)],
    ['poll of an unchanged remote (ms)', median(pollMs), max(pollMs)],
  ] as const;
  process.stdout.write(
    `hostkit agent benchmark: LocalHost re-rooted into a temp dir (File manifests), real bare git remote on this machine, ${runs} webhook runs, ${polls} polls\n\n`,
  );
  process.stdout.write(`${'measure'.padEnd(42)}${'median'.padStart(10)}${'max'.padStart(10)}\n`);
  for (const [name, med, mx] of rows) process.stdout.write(`${name.padEnd(42)}${med.toFixed(1).padStart(10)}${mx.toFixed(1).padStart(10)}\n`);
  process.stdout.write(`\nprocesses spawned per unchanged poll: ${processesPerPoll} (git ls-remote; no fetch, no ssh for a local remote)\n`);
} finally {
  await server.close();
  await agent.stop();
  await scratch.cleanup();
  await remote.cleanup();
  await rm(state, { recursive: true, force: true });
}

async function remoteHeadOf(): Promise<string> {
  const { execa } = await import('execa');
  return (await execa('git', ['rev-parse', 'main'], { cwd: remote.bare })).stdout.trim();
}
