import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { DEFAULT_RETRY, type AgentConfig } from '../../reconciler/agent/config.js';
import { directoryManifest, fileYaml, TESTER_ACCOUNT } from './fixtures.js';
import { manifestYaml } from './manifests.js';

const ENV = { GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.test' };

/** A real bare repository (the "remote") and a working clone to push manifest changes from. */
export interface GitRemote {
  /** The bare repository: the URL agents fetch from. */
  bare: string;
  work: string;
  /** Write files (undefined removes), commit them and push to main; returns the commit. */
  push(files: Record<string, string | undefined>, message?: string): Promise<string>;
  /** The files at the tip of a branch of the bare repository (path -> content). */
  show(branch: string, file: string): Promise<string | undefined>;
  log(branch: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function gitRemote(base?: string): Promise<GitRemote> {
  const root = await mkdtemp(path.join(base ?? os.tmpdir(), 'hostkit-remote-'));
  const bare = path.join(root, 'config.git');
  const work = path.join(root, 'work');
  await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await execa('git', ['init', '-q', '-b', 'main', work]);
  const git = (args: string[], cwd = work) => execa('git', args, { cwd, env: ENV });
  return {
    bare,
    work,
    async push(files, message = 'change manifests') {
      for (const [rel, content] of Object.entries(files)) {
        const full = path.join(work, rel);
        if (content === undefined) await rm(full, { force: true });
        else {
          await mkdir(path.dirname(full), { recursive: true });
          await writeFile(full, content);
        }
      }
      await git(['add', '-A']);
      await git(['commit', '-q', '--allow-empty', '-m', message]);
      await git(['push', '-q', bare, 'HEAD:refs/heads/main']);
      return (await git(['rev-parse', 'HEAD'])).stdout.trim();
    },
    async show(branch, file) {
      const r = await execa('git', ['show', `${branch}:${file}`], { cwd: bare, reject: false });
      return r.exitCode === 0 ? r.stdout : undefined;
    },
    async log(branch) {
      const r = await execa('git', ['log', '--format=%s', branch], { cwd: bare, reject: false });
      return r.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Manifests for agent tests on a re-rooted LocalHost: the "tester" account and /srv/app (file operations only). */
export const AGENT_BASE_YAML = manifestYaml(TESTER_ACCOUNT, directoryManifest('app', '/srv/app', '0755'));

/** A File manifest under /srv/app owned by tester. */
export function appFile(name: string, content: string): string {
  return fileYaml(name, `/srv/app/${name}`, content, '0644');
}

/** An agent configuration for tests: one host following `url`'s main branch, polling and drift checks hourly unless told. */
export function testAgentConfig(
  options: { url: string; host: string; stateDirectory: string } & Partial<Omit<AgentConfig, 'repository' | 'host' | 'stateDirectory'>>,
): AgentConfig {
  const { url, host, stateDirectory, ...rest } = options;
  return {
    file: 'agent.yaml',
    repository: { url, branch: 'main' },
    host,
    pollIntervalMs: 3_600_000,
    report: { enabled: true, branch: 'hostkit-status', authorName: 'HostKit agent', authorEmail: 'hostkit@localhost' },
    drift: { policy: 'report', intervalMs: 3_600_000 },
    stateDirectory,
    keepRuns: 50,
    logLevel: 'silent',
    lockTimeoutMs: 60_000,
    retry: DEFAULT_RETRY,
    hostMismatchOk: false,
    ...rest,
  };
}
