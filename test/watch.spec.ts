import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ignoredPath } from '../reconciler/commands/watch.js';
import { HOST_YAML, scratchRoot, TEST_HOST, writeRepo } from './support/fixtures.js';
import { manifestYaml } from './support/manifests.js';

const CLI = path.resolve('dist/reconciler/cli.js');
const CACHE = path.join(os.tmpdir(), `hostkit-watch-cache-${process.pid}`);

const DIRECTORY = (dir: string, mode = '0750') => manifestYaml({ kind: 'Directory', name: 'app', on: [TEST_HOST], spec: { path: dir, mode } });

// Resolves when `read()` matches, or rejects after `ms` with what was seen.
async function until(read: () => string, pattern: RegExp, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output so far:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('hostkit reconcile --watch --dry-run', () => {
  let repo: string;
  let root: string;
  let cleanup: () => Promise<void>;

  beforeEach(async () => {
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': DIRECTORY('/srv/app') });
    await mkdir(path.join(repo, '.git'));
    ({ root, cleanup } = await scratchRoot());
  });
  afterEach(async () => {
    await cleanup();
    await rm(repo, { recursive: true, force: true });
  });

  it('plans, plans again once per burst of changes (reflecting them), ignores .git, and exits 0 on SIGTERM', async () => {
    const child = execa(process.execPath, [CLI, 'reconcile', '--watch', '--dry-run', '--repo', repo, '--host', 'test-1', '--root', root], {
      reject: false,
      env: { HOSTKIT_CACHE_DIR: CACHE, NO_COLOR: '1' },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await until(() => err, /watching .* for changes/);
      expect(out.match(/HostKit plan for host test-1/g)).toHaveLength(1);
      expect(out).toContain('+ directory/srv/app');

      // Under .git: no new plan.
      await writeFile(path.join(repo, '.git/index.lock'), 'x');
      // Three quick saves: one new plan (debounced), which sees the last one.
      for (const dir of ['/srv/a', '/srv/b', '/srv/other']) await writeFile(path.join(repo, 'projects/app.yaml'), DIRECTORY(dir));
      await until(() => out, /\+ directory\/srv\/other/);
      await new Promise((r) => setTimeout(r, 600)); // time for a stray extra plan to show up
      expect(out.match(/HostKit plan for host test-1/g)).toHaveLength(2);
      expect(out).not.toMatch(/srv\/(a|b)\b/);
      expect(err).toMatch(/projects\/app\.yaml changed; planning again/);
      expect(err).not.toContain('.git');

      // A broken manifest is reported and the watch goes on.
      await writeFile(path.join(repo, 'projects/app.yaml'), DIRECTORY('/srv/other', 'banana'));
      await until(() => err, /invalid mode/);
      await writeFile(path.join(repo, 'projects/app.yaml'), DIRECTORY('/srv/fixed'));
      await until(() => out, /\+ directory\/srv\/fixed/);
    } finally {
      child.kill('SIGTERM');
    }
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(result.signal).toBeUndefined();
    expect(err).toMatch(/stopped watching\n$/);
  });

  it('refuses --watch without --dry-run, with a clear error and nothing planned', async () => {
    const r = await execa(process.execPath, [CLI, 'reconcile', '--watch', '--repo', repo, '--host', 'test-1', '--root', root], {
      reject: false,
      env: { HOSTKIT_CACHE_DIR: CACHE },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'hostkit: error: --watch only plans, it never applies: run `hostkit reconcile --watch --dry-run` (or `hostkit plan --watch`) [WATCH_NEEDS_DRY_RUN]',
    );
  });

  it.each([
    ['.git/index', true],
    ['sub/.git/HEAD', true],
    ['projects/.app.yaml.swp', true],
    ['projects/app.yaml~', true],
    ['projects/.#app.yaml', true],
    ['4913', true],
    ['node_modules/x/y.yaml', true],
    ['projects/app.yaml', false],
    ['hosts/web-1.yml', false],
    ['files/nginx.conf', false],
  ])('ignoredPath(%s) = %s', (file, ignored) => {
    expect(ignoredPath(file)).toBe(ignored);
  });
});
