import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOST_YAML, TEST_HOST, writeRepo } from './support/fixtures.js';
import { manifestYaml } from './support/manifests.js';

const CLI = path.resolve('dist/reconciler/cli.js');
const CACHE = path.join(os.tmpdir(), `hostkit-hooks-cache-${process.pid}`);
// No hostkit on PATH: the hook must use the one that installed it.
const GIT_ENV = {
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: os.tmpdir(),
  HOSTKIT_CACHE_DIR: CACHE,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 't@example.test',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 't@example.test',
  GIT_CONFIG_NOSYSTEM: '1',
};

const DIRECTORY = (mode: string) => manifestYaml({ kind: 'Directory', name: 'app', on: [TEST_HOST], spec: { path: '/srv/app', mode } });

const hostkit = (args: string[]) => execa(process.execPath, [CLI, ...args], { reject: false, env: { HOSTKIT_CACHE_DIR: CACHE } });
const git = (repo: string, args: string[]) => execa('git', args, { cwd: repo, reject: false, env: GIT_ENV, extendEnv: false });

describe('hostkit hooks install', () => {
  let repo: string;

  beforeEach(async () => {
    await rm(CACHE, { recursive: true, force: true });
    await mkdir(CACHE);
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML });
    await git(repo, ['init', '-q', '-b', 'main']);
  });
  afterEach(() => rm(repo, { recursive: true, force: true }));

  it('installs pre-commit: a broken staged manifest is refused by git, a good one is committed', async () => {
    const r = await hostkit(['hooks', 'install', '--repo', repo]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`pre-commit: installed ${path.join(repo, '.git/hooks/pre-commit')}`);
    expect((await stat(path.join(repo, '.git/hooks/pre-commit'))).mode & 0o777).toBe(0o755);

    await writeFile(path.join(repo, 'app.yaml'), DIRECTORY('banana'));
    await git(repo, ['add', '-A']);
    const refused = await git(repo, ['commit', '-m', 'broken']);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/app\.yaml:7:\d+: error: invalid mode/);
    expect(refused.stderr).toMatch(/commit refused/);
    expect((await git(repo, ['rev-parse', '--verify', '-q', 'HEAD'])).exitCode).not.toBe(0); // no commit was made

    await writeFile(path.join(repo, 'app.yaml'), DIRECTORY('0750'));
    await git(repo, ['add', '-A']);
    const ok = await git(repo, ['commit', '-q', '-m', 'good']);
    expect(ok.stderr).toBe('2 manifests valid.'); // git sends a hook's output to stderr
    expect(ok.exitCode).toBe(0);
    expect((await git(repo, ['log', '--format=%s'])).stdout).toBe('good');
    // Each commit validates a new temporary copy: a parse cache of it would only pile up.
    await expect(readdir(CACHE)).resolves.toEqual([]);
  });

  it('validates what is staged, not the working tree', async () => {
    await hostkit(['hooks', 'install', '--repo', repo]);
    await writeFile(path.join(repo, 'app.yaml'), DIRECTORY('banana'));
    await git(repo, ['add', '-A']);
    await writeFile(path.join(repo, 'app.yaml'), DIRECTORY('0750')); // fixed, but not staged
    expect((await git(repo, ['commit', '-m', 'staged is broken'])).exitCode).not.toBe(0);
  });

  it('respects core.hooksPath (relative to the repository)', async () => {
    await git(repo, ['config', 'core.hooksPath', '.githooks']);
    const r = await hostkit(['hooks', 'install', '--repo', repo]);
    expect(r.stdout).toContain(path.join(repo, '.githooks/pre-commit'));
    await access(path.join(repo, '.githooks/pre-commit'), constants.X_OK);
    await expect(access(path.join(repo, '.git/hooks/pre-commit'))).rejects.toThrow();
    await writeFile(path.join(repo, 'app.yaml'), DIRECTORY('banana'));
    await git(repo, ['add', 'app.yaml', 'hosts']);
    expect((await git(repo, ['commit', '-m', 'broken'])).exitCode).not.toBe(0);
  });

  it('refuses to replace a hook it did not install; --force keeps it as a backup; re-installing is idempotent', async () => {
    const foreign = '#!/bin/sh\necho lint-staged\n';
    const hook = path.join(repo, '.git/hooks/pre-commit');
    await writeFile(hook, foreign, { mode: 0o755 });

    const refused = await hostkit(['hooks', 'install', '--repo', repo]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/pre-commit exists and was not installed by HostKit; nothing was changed\. Re-run with --force/);
    expect(await readFile(hook, 'utf8')).toBe(foreign);

    const forced = await hostkit(['hooks', 'install', '--repo', repo, '--force']);
    expect(forced.exitCode).toBe(0);
    expect(forced.stdout).toContain('replaced');
    expect(await readFile(`${hook}.hostkit-backup`, 'utf8')).toBe(foreign);
    expect(await readFile(hook, 'utf8')).toContain('# hostkit-managed-hook');

    const again = await hostkit(['hooks', 'install', '--repo', repo]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(`pre-commit: unchanged ${hook}`);
  });

  it('outside a git repository: a clear error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hostkit-nogit-'));
    try {
      const r = await execa(process.execPath, [CLI, 'hooks', 'install', '--repo', dir], { reject: false, env: { GIT_CEILING_DIRECTORIES: path.dirname(dir) } });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/is not a git repository .*pass --repo DIR \[NOT_A_GIT_REPOSITORY\]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CI templates (hooks/ci)', () => {
  let repo: string;
  let bin: string;
  beforeEach(async () => {
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': DIRECTORY('banana') });
    // `hostkit` on PATH, as `npm install --global` would put it.
    bin = await mkdtemp(path.join(os.tmpdir(), 'hostkit-bin-'));
    await writeFile(path.join(bin, 'hostkit'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`, { mode: 0o755 });
  });
  afterEach(async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(bin, { recursive: true, force: true });
  });
  const env = () => ({ PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOSTKIT_CACHE_DIR: CACHE });

  it('the GitHub workflow fails on an invalid manifest with an annotation on its line, and passes a valid one', async () => {
    const { parse } = await import('yaml');
    const workflow = parse(await readFile('hooks/ci/github-workflow.yml', 'utf8')) as { jobs: { validate: { steps: { name?: string; run?: string }[] } } };
    const script = workflow.jobs.validate.steps.find((s) => s.name === 'Validate manifests')!.run!;
    const bad = await execa('bash', ['-e', '-c', script], { cwd: repo, reject: false, env: env(), extendEnv: false });
    expect(bad.exitCode).toBe(1);
    expect(bad.stdout).toMatch(/^::error file=projects\/app\.yaml,line=7,col=\d+::invalid mode: /m);
    await writeFile(path.join(repo, 'projects/app.yaml'), DIRECTORY('0750'));
    const good = await execa('bash', ['-e', '-c', script], { cwd: repo, reject: false, env: env(), extendEnv: false });
    expect(good.exitCode).toBe(0);
    expect(good.stdout).toContain('2 manifests, 0 errors, 0 warnings');
  });

  it('the GitLab job script fails on an invalid manifest', async () => {
    const { parse } = await import('yaml');
    const job = (parse(await readFile('hooks/ci/gitlab-ci.yml', 'utf8')) as Record<string, { script: string[] }>)['hostkit-validate']!;
    const r = await execa('bash', ['-e', '-c', job.script.join('\n')], { cwd: repo, reject: false, env: env(), extendEnv: false });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/projects\/app\.yaml:7:\d+: error: invalid mode/);
  });
});
