import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { LocalHost } from '../../reconciler/hosts/local.js';
import { manifestYaml, type ManifestInput } from './manifests.js';

/**
 * A scratch directory that stands for "/" of a host: it has an /etc/passwd and
 * /etc/group with a "tester" user, so ownership can be applied for real
 * (without root, "tester" is the user running the tests), and an /etc/hostname
 * naming the machine it stands for (an apply checks it against the Host manifest).
 */
export async function scratchRoot(hostname = 'test-1'): Promise<{ root: string; host: LocalHost; uid: number; gid: number; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'hostkit-root-'));
  // As root, "tester" gets its own uid (root may chown to any); otherwise it is the user running the tests.
  const self = process.getuid?.() ?? 0;
  const uid = self === 0 ? 4242 : self;
  const gid = self === 0 ? 4242 : (process.getgid?.() ?? 0);
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await writeFile(path.join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/bash\ntester:x:${uid}:${gid}:tester:/home/tester:/bin/sh\n`);
  await writeFile(path.join(root, 'etc/group'), `root:x:0:\ntester:x:${gid}:\n`);
  await writeFile(path.join(root, 'etc/hostname'), `${hostname}\n`);
  return { root, host: new LocalHost({ root }), uid, gid, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Write a config repository from a map of relative paths to contents. */
export async function writeRepo(files: Record<string, string>, dir?: string): Promise<string> {
  const root = dir ?? (await mkdtemp(path.join(os.tmpdir(), 'hostkit-repo-')));
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), content);
  }
  return root;
}

/** Make `dir` a real git repository with one commit; returns the commit id. */
export async function gitCommitAll(dir: string, message = 'manifests'): Promise<string> {
  const env = { GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 't@example.test' };
  await execa('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  await execa('git', ['add', '-A'], { cwd: dir });
  await execa('git', ['commit', '-q', '-m', message], { cwd: dir, env });
  return (await execa('git', ['rev-parse', 'HEAD'], { cwd: dir })).stdout.trim();
}

// The engine's tests are about applying, not about who may write what: their
// repository has one operator, so every manifest in it is host-level, and the
// agent variables their env files read are listed.
export const TEST_HOST = 'test-1';

/** The engine tests' Host; `o` renames or relabels it, or sets more of its spec. */
export function testHostYaml(o: { name?: string; labels?: Record<string, string>; spec?: Record<string, unknown> } = {}): string {
  return manifestYaml({
    kind: 'Host',
    name: o.name ?? TEST_HOST,
    labels: o.labels ?? { role: 'web' },
    spec: {
      stateDirectory: '/var/lib/hostkit',
      policy: { hostLevelPaths: ['/'] },
      secrets: { env: ['HK_TOKEN', 'HK_TEST_TOKEN', 'HK_FP_TOKEN', 'HK_CLI_TOKEN'] },
      ...o.spec,
    },
  });
}

export const HOST_YAML = testHostYaml();

// Primitive manifests for the host of HOST_YAML: the "tester" account, and
// directories, files and env files it owns (file operations only, so they apply
// to a re-rooted LocalHost).
export const TESTER_ACCOUNT: ManifestInput = { kind: 'Account', name: 'tester', on: [TEST_HOST], spec: { home: '/home/tester', shell: '/bin/sh' } };
export const TESTER_ACCOUNT_YAML = manifestYaml(TESTER_ACCOUNT);

/** A directory of tester's; `mode` as written (a number is not a valid mode). */
export function directoryManifest(name: string, p: string, mode: string | number = '0750'): ManifestInput {
  return { kind: 'Directory', name, on: [TEST_HOST], spec: { path: p, owner: 'tester', group: 'tester', mode } };
}

export function directoryYaml(name: string, p: string, mode = '0750'): string {
  return manifestYaml(directoryManifest(name, p, mode));
}

export function fileManifest(name: string, p: string, content: string, mode = '0640'): ManifestInput {
  return { kind: 'File', name, on: [TEST_HOST], spec: { path: p, owner: 'tester', group: 'tester', mode, content } };
}

export function fileYaml(name: string, p: string, content: string, mode = '0640'): string {
  return manifestYaml(fileManifest(name, p, content, mode));
}

/** /srv/app/app.env with `environment` (MODE=live) and TOKEN from the agent environment variable `tokenVariable`. */
export function envFileManifest(tokenVariable: string, environment: Record<string, string> = { MODE: 'live' }): ManifestInput {
  return {
    kind: 'EnvFile',
    name: 'app-env',
    on: [TEST_HOST],
    spec: { path: '/srv/app/app.env', owner: 'tester', group: 'tester', environment, secrets: { TOKEN: { env: tokenVariable } } },
  };
}

export function envFileYaml(tokenVariable: string, environment?: Record<string, string>): string {
  return manifestYaml(envFileManifest(tokenVariable, environment));
}
