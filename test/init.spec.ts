import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchRoot } from './support/fixtures.js';

// `hostkit init` through the built CLI, and what it writes through `hostkit validate` and `plan`.

const CLI = path.resolve('dist/reconciler/cli.js');
let tmp: string;

function hostkit(args: string[], cwd = tmp) {
  return execa('node', [CLI, ...args], { cwd, reject: false, env: { NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(tmp, 'cache') } });
}

async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).filter((f) => !f.startsWith('.git/')).sort();
}

describe('hostkit init', () => {
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hostkit-init-'));
  });
  afterAll(async () => rm(tmp, { recursive: true, force: true }));

  it('writes a repository that `hostkit validate` accepts with no error and no warning, in a new git repository', async () => {
    const init = await hostkit(['init', 'config', '--host', 'web-1']);
    expect(init.stderr).toBe('');
    expect(init.exitCode).toBe(0);
    expect(init.stdout).toContain('a new git repository (git init)');
    expect(init.stdout).toMatch(/hostkit validate --repo config\s/);
    expect(init.stdout).toMatch(/hostkit plan --repo config\s/);
    expect(init.stdout).toMatch(/hostkit hooks install --repo config\s/);
    const dir = path.join(tmp, 'config');
    expect(await tree(dir)).toEqual(['.git', '.gitignore', 'README.md', 'hosts', 'hosts/web-1.yaml', 'projects', 'projects/example.yaml']);
    expect((await stat(path.join(dir, '.git'))).isDirectory()).toBe(true);

    const validate = await hostkit(['validate', '--repo', 'config']);
    expect(validate.exitCode).toBe(0);
    expect(validate.stdout).toBe('2 manifests valid.');
    const json = JSON.parse((await hostkit(['validate', '--repo', 'config', '-o', 'json'])).stdout);
    expect(json).toMatchObject({ valid: true, manifests: 2, errors: 0, warnings: 0 });
  });

  it('defaults to this directory and this machine’s short hostname, and plans without an error', async () => {
    const dir = path.join(tmp, 'here');
    await mkdir(dir);
    const init = await hostkit(['init'], dir);
    expect(init.exitCode).toBe(0);
    const host = os.hostname().split('.')[0]!.toLowerCase();
    expect(await readFile(path.join(dir, `hosts/${host}.yaml`), 'utf8')).toContain(`  name: ${host}\n`);
    expect(await readFile(path.join(dir, 'projects/example.yaml'), 'utf8')).toContain(`hosts: [${host}]`);
    expect((await hostkit(['validate'], dir)).exitCode).toBe(0);
    // The plan of the example on a host that is only a directory: shown, no error (its secret file is missing: a warning).
    const scratch = await scratchRoot(host);
    try {
      const plan = await hostkit(['plan', '--root', scratch.root, '--state-dir', '/var/lib/hostkit'], dir);
      expect(plan.stderr).toBe('');
      expect(plan.exitCode).toBe(0);
      expect(plan.stdout).toContain('+ unit/hk-example.service');
      expect(plan.stdout).toContain('+ site/app.example.com');
    } finally {
      await scratch.cleanup();
    }
  });

  it('refuses when any of its files exists, names them, and writes nothing', async () => {
    const dir = path.join(tmp, 'taken');
    await mkdir(dir);
    await writeFile(path.join(dir, 'README.md'), 'mine\n');
    const r = await hostkit(['init', 'taken', '--host', 'web-1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('taken already has README.md; nothing was written');
    expect(r.stderr).toContain('[INIT_WOULD_OVERWRITE]');
    expect(await tree(dir)).toEqual(['README.md']);
    expect(await readFile(path.join(dir, 'README.md'), 'utf8')).toBe('mine\n');

    const again = await hostkit(['init', 'config', '--host', 'web-1']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('config already has hosts/web-1.yaml, projects/example.yaml, README.md, .gitignore; nothing was written');
  });

  it('inside a git repository already: no repository of its own', async () => {
    const r = await hostkit(['init', 'config/sub', '--host', 'web-1']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('inside the git repository it was already in');
    await expect(stat(path.join(tmp, 'config/sub/.git'))).rejects.toThrow(/ENOENT/);
  });

  it('a name that is not a manifest name is refused, saying how to give one', async () => {
    const r = await hostkit(['init', 'bad', '--host', 'Web_1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('--host "Web_1" is not a manifest name');
    await expect(stat(path.join(tmp, 'bad'))).rejects.toThrow(/ENOENT/);
  });

  it('-q prints nothing when all went well', async () => {
    const r = await hostkit(['-q', 'init', 'quiet', '--host', 'web-1']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });
});
