// A simulated fleet on this machine: one real bare repository shared by N agent
// processes (test/support/fleet-agent.ts), each with its own re-rooted host
// directory and state directory, reporting to one report branch. A "forge"
// here watches the bare repository's refs and sends each agent a signed push
// webhook when a branch moves, as GitHub or Gitea would.
import { createHmac, randomUUID } from 'node:crypto';
import nodeFs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { stringify } from 'yaml';
import { gitRemote, type GitRemote } from './git-remote.js';
import { scratchRoot, testHostYaml } from './fixtures.js';
import { manifestYaml, type ManifestInput } from './manifests.js';

export interface SimHost {
  name: string;
  labels: Record<string, string>;
}

export interface SimAgent {
  name: string;
  root: string;
  state: string;
  /** The agent's webhook URL (POST /webhook). */
  url: string;
  child: ResultPromise;
}

export interface SimFleetOptions {
  hosts: readonly SimHost[];
  pollInterval: string;
  /** Send signed push webhooks to every agent when a branch of the bare repository moves. */
  webhooks: boolean;
  /** Extra agent.yaml settings (e.g. notifications). */
  agentConfig?: (host: string) => Record<string, unknown>;
  /** Agents per process (default 1: each agent its own process). */
  perProcess?: number;
  /** Prepare a host's root before its agent starts (e.g. make a path unusable). */
  prepare?: (host: string, root: string) => Promise<void>;
  /** The first commit's files besides the Host manifests and the base manifests. */
  files?: Record<string, string>;
}

export interface SimFleet {
  remote: GitRemote;
  agents: SimAgent[];
  /** The first commit (Host manifests, the tester account, /srv/app). */
  initial: string;
  webhookDeliveries: number;
  /** Wait until `done` holds for the report branch's status files, polling the bare repository. */
  waitFor(done: (reports: Map<string, StatusFile>) => boolean, timeoutMs: number, what: string): Promise<Map<string, StatusFile>>;
  stop(): Promise<void>;
}

/** What the tests read of a status file. */
export interface StatusFile {
  host: string;
  commit?: string;
  result: string;
  startedAt: string;
  finishedAt: string;
  rollout?: { wave?: number; batch?: number; held?: { commit: string; state: string; wave: number; reason: string } };
}

const SECRET = 'fleet-webhook-secret-0123456789';
const CHILD = path.resolve('dist/test/support/fleet-agent.js');

/** Manifests every simulated host gets: the tester account and /srv/app, placed by the label fleet=sim. */
export function baseManifests(): string {
  const on = { matchLabels: { fleet: 'sim' } };
  const account: ManifestInput = { kind: 'Account', name: 'tester', on, spec: { home: '/home/tester', shell: '/bin/sh' } };
  const dir: ManifestInput = { kind: 'Directory', name: 'app', on, spec: { path: '/srv/app', owner: 'tester', group: 'tester', mode: '0755' } };
  return manifestYaml(account, dir);
}

/** A File under /srv/app on every simulated host. */
export function fleetFile(name: string, content: string, p = `/srv/app/${name}`): string {
  return manifestYaml({
    kind: 'File',
    name,
    on: { matchLabels: { fleet: 'sim' } },
    spec: { path: p, owner: 'tester', group: 'tester', mode: '0644', content },
  });
}

export async function startFleet(options: SimFleetOptions): Promise<SimFleet> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'hostkit-fleet-'));
  const remote = await gitRemote(base);
  const secretFile = path.join(base, 'webhook.secret');
  await writeFile(secretFile, SECRET);
  const files: Record<string, string> = { 'base.yaml': baseManifests(), ...options.files };
  for (const h of options.hosts) files[`hosts/${h.name}.yaml`] = testHostYaml({ name: h.name, labels: { fleet: 'sim', ...h.labels } });
  const initial = await remote.push(files, 'fleet: hosts and base manifests');
  const agents: SimAgent[] = [];
  const roots: (() => Promise<void>)[] = [];
  const fleet: SimFleet = {
    remote,
    agents,
    initial,
    webhookDeliveries: 0,
    waitFor: (done, timeoutMs, what) => waitForReports(remote.bare, done, timeoutMs, what),
    async stop() {
      stopForge = true;
      await forge;
      await Promise.all(
        [...new Set(agents.map((a) => a.child))].map(async (child) => {
          child.kill('SIGTERM');
          await child.catch(() => undefined);
        }),
      );
      for (const cleanup of roots) await cleanup();
      await rm(base, { recursive: true, force: true });
    },
  };
  let stopForge = false;
  let forge: Promise<void> = Promise.resolve();
  try {
    const perProcess = options.perProcess ?? 1;
    const pending: { h: SimHost; root: string; state: string; configFile: string }[] = [];
    for (const h of options.hosts) {
      const scratch = await scratchRoot(h.name);
      roots.push(scratch.cleanup);
      await options.prepare?.(h.name, scratch.root);
      const state = await mkdtemp(path.join(base, `state-${h.name}-`));
      const config = {
        repository: { url: remote.bare, branch: 'main' },
        host: h.name,
        pollInterval: options.pollInterval,
        ...(options.webhooks ? { webhook: { listen: '127.0.0.1:0', secretFile } } : {}),
        report: { branch: 'hostkit-status' },
        drift: { policy: 'report', interval: '1h' },
        stateDirectory: state,
        logLevel: 'warn',
        retry: { attempts: 1 },
        ...options.agentConfig?.(h.name),
      };
      const configFile = path.join(state, 'agent.yaml');
      await writeFile(configFile, stringify(config));
      pending.push({ h, root: scratch.root, state, configFile });
    }
    for (let i = 0; i < pending.length; i += perProcess) {
      const group = pending.slice(i, i + perProcess);
      const child = execa('node', [CHILD, ...group.flatMap((g) => [g.configFile, g.root])], {
        env: { HOME: os.homedir(), PATH: process.env.PATH ?? '' },
        extendEnv: false,
        buffer: false,
      });
      child.stderr?.on('data', (b: Buffer) => process.env.HOSTKIT_FLEET_DEBUG && process.stderr.write(`[${group[0]!.h.name}+] ${b}`));
      const urls = await new Promise<Map<string, string>>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (b: Buffer) => {
          out += b.toString();
          const ready = new Map([...out.matchAll(/HOSTKIT-FLEET-AGENT ready (\S+) (\S+)/g)].map((m) => [m[1]!, m[2]!]));
          if (ready.size === group.length) resolve(ready);
        });
        child.catch(reject);
      });
      for (const g of group) agents.push({ name: g.h.name, root: g.root, state: g.state, url: urls.get(g.h.name)!, child });
    }
    if (options.webhooks) {
      forge = (async () => {
        const last = new Map<string, string | undefined>();
        while (!stopForge) {
          for (const branch of ['main', 'hostkit-status']) {
            const sha = await refOf(remote.bare, branch);
            if (sha && sha !== last.get(branch)) {
              last.set(branch, sha);
              const message = await headMessage(remote.bare, sha);
              await Promise.all(agents.map((a) => deliver(a.url, branch, sha, message)));
              fleet.webhookDeliveries += agents.length;
            }
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
    }
  } catch (cause) {
    await fleet.stop();
    throw cause;
  }
  return fleet;
}

// As GitHub and Gitea send it: the head commit's message, which names the host a report is by.
async function headMessage(bare: string, sha: string): Promise<string | undefined> {
  const git = await import('isomorphic-git');
  return git
    .readCommit({ fs: nodeFs, gitdir: bare, oid: sha })
    .then((c) => c.commit.message)
    .catch(() => undefined);
}

async function deliver(url: string, branch: string, after: string, message: string | undefined): Promise<void> {
  const body = JSON.stringify({ ref: `refs/heads/${branch}`, after, ...(message !== undefined ? { head_commit: { id: after, message } } : {}) });
  await fetch(`${url}/webhook`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-hostkit-event': 'push',
      'x-hostkit-delivery': randomUUID(),
      'x-hostkit-signature': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
    },
    body,
    signal: AbortSignal.timeout(10_000), // a stalled agent must not stop deliveries to the others
  }).catch(() => undefined);
}

/** A branch's commit in a bare repository, read from its ref files (no process started). */
export async function refOf(bare: string, branch: string): Promise<string | undefined> {
  const loose = await readFile(path.join(bare, 'refs/heads', branch), 'utf8').catch(() => undefined);
  if (loose) return loose.trim();
  const packed = await readFile(path.join(bare, 'packed-refs'), 'utf8').catch(() => '');
  return packed
    .split('\n')
    .find((l) => l.endsWith(` refs/heads/${branch}`))
    ?.split(' ')[0];
}

/** Every status file at the report branch's tip. */
export async function statusFiles(bare: string): Promise<Map<string, StatusFile>> {
  const out = new Map<string, StatusFile>();
  const ls = await execa('git', ['ls-tree', '--name-only', 'hostkit-status', 'status/'], { cwd: bare, reject: false });
  if (ls.exitCode !== 0) return out;
  const names = ls.stdout.split('\n').filter((n) => n.endsWith('.json'));
  if (names.length === 0) return out;
  const cat = await execa('git', ['cat-file', '--batch'], {
    cwd: bare,
    input: names.map((n) => `hostkit-status:${n}`).join('\n') + '\n',
    encoding: 'buffer',
  });
  for (const doc of splitBatch(cat.stdout)) {
    const r = JSON.parse(doc) as StatusFile;
    out.set(r.host, r);
  }
  return out;
}

// `git cat-file --batch` output: a header line per object, its bytes, a newline.
function splitBatch(out: Uint8Array): string[] {
  const buf = Buffer.from(out);
  const docs: string[] = [];
  let at = 0;
  while (at < buf.length) {
    const eol = buf.indexOf(10, at);
    const m = /^[0-9a-f]{40} blob (\d+)$/.exec(buf.subarray(at, eol).toString());
    if (!m) break;
    const size = Number(m[1]);
    docs.push(buf.subarray(eol + 1, eol + 1 + size).toString('utf8'));
    at = eol + 1 + size + 1;
  }
  return docs;
}

async function waitForReports(
  bare: string,
  done: (reports: Map<string, StatusFile>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Map<string, StatusFile>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const last = await statusFiles(bare);
    if (done(last)) return last;
    if (Date.now() > until) {
      const summary = [...last.values()].map(
        (r) => `${r.host}: ${r.commit?.slice(0, 8)} ${r.result}${r.rollout?.held ? ` held(${r.rollout.held.reason})` : ''}`,
      );
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; reports:\n${summary.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** One report commit: which host's status file it wrote, and what that file said. */
export interface ReportEvent {
  index: number;
  host: string;
  report: StatusFile;
}

/** The report branch's history, oldest first: each commit's status file (one host per commit). */
export async function reportHistory(bare: string): Promise<ReportEvent[]> {
  const log = await execa('git', ['log', '--reverse', '--format=%H', '--name-only', 'hostkit-status', '--', 'status/'], { cwd: bare });
  const events: { commit: string; file: string }[] = [];
  let current = '';
  for (const line of log.stdout.split('\n')) {
    if (/^[0-9a-f]{40}$/.test(line)) current = line;
    else if (line.startsWith('status/') && line.endsWith('.json')) events.push({ commit: current, file: line });
  }
  if (events.length === 0) return [];
  const cat = await execa('git', ['cat-file', '--batch'], {
    cwd: bare,
    input: events.map((e) => `${e.commit}:${e.file}`).join('\n') + '\n',
    encoding: 'buffer',
  });
  return splitBatch(cat.stdout).map((doc, index) => {
    const report = JSON.parse(doc) as StatusFile;
    return { index, host: report.host, report };
  });
}
