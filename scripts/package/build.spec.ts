import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../reconciler/core/runtime.js';
import { buildRelease, type BuildResult } from './build.js';
import { packagedAgentUnit } from './layout.js';
import { devOnlyPackages, productionPackages, type Lockfile } from './payload.js';
import { findNode } from './runtime.js';

// One uncompressed .deb of this checkout (built by the unit project's global setup),
// read back with dpkg-deb: what a host would get, minus gzip and, to spare 126 MB of
// copies, the Node binary (true(1) stands in; test/host/package.test.ts runs the real one).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const APP = './usr/lib/hostkit/lib';
const ARCH = process.arch as 'x64' | 'arm64';
const STAND_IN = '/usr/bin/true';

describe('scripts/package/build', () => {
  let out: string;
  let result: BuildResult;
  /** `dpkg-deb -c`: path -> "MODE OWNER SIZE". */
  let contents: Map<string, { mode: string; owner: string; size: number }>;

  beforeAll(async () => {
    out = mkdtempSync(path.join(tmpdir(), 'hostkit-package-'));
    result = await buildRelease({ root: ROOT, out, arch: ARCH, node: STAND_IN, compress: false, keepStage: true, sourceDateEpoch: 1_700_000_000 });
    contents = new Map(
      execFileSync('dpkg-deb', ['-c', result.deb.file], { encoding: 'utf8', maxBuffer: 64 << 20 })
        .trim()
        .split('\n')
        .map((line) => {
          const [mode, owner, size, , , ...rest] = line.split(/\s+/);
          return [rest.join(' ').replace(/ -> .*$/, ''), { mode: mode!, owner: owner!, size: Number(size) }];
        }),
    );
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }), 60_000);

  const field = (name: string) => execFileSync('dpkg-deb', ['-f', result.deb.file, name], { encoding: 'utf8' }).trim();

  it('names the package, the version of package.json, the architecture, and what it depends on', () => {
    const debianArch = ARCH === 'x64' ? 'amd64' : 'arm64';
    expect(path.basename(result.deb.file)).toBe(`hostkit_${pkg.version}_${debianArch}.deb`);
    expect(field('Package')).toBe('hostkit');
    expect(field('Version')).toBe(pkg.version);
    expect(field('Architecture')).toBe(debianArch);
    expect(field('Depends')).toMatch(/^libc6 \(>= 2\.28\), .*\bgit\b.*\bca-certificates\b/);
    expect(field('Maintainer')).toMatch(/ <.+@.+>$/);
  });

  it('holds /usr/bin/hostkit, the runtime, the CLI, schema/, hooks/ and the agent unit, owned by root', () => {
    expect(contents.get('./usr/bin/hostkit')).toMatchObject({ mode: '-rwxr-xr-x', owner: 'root/root' });
    expect(contents.get('./usr/lib/hostkit/node')).toMatchObject({ mode: '-rwxr-xr-x', size: statSync(STAND_IN).size });
    for (const file of [
      'dist/reconciler/cli.js',
      'dist/reconciler/manifests/validators.generated.cjs',
      // Sent to hosts reached over SSH (hosts/ssh.ts).
      'dist/reconciler/hosts/ssh-helper.py',
      'schema/common.schema.json',
      'hooks/pre-commit',
      'package.json',
    ]) {
      expect(contents.has(`${APP}/${file}`), file).toBe(true);
    }
    expect(contents.get('./usr/lib/systemd/system/hostkit-agent.service')).toMatchObject({ mode: '-rw-r--r--' });
    expect(contents.get('./etc/hostkit/')).toMatchObject({ mode: 'drwxr-xr-x' });
    expect([...contents.values()].filter((e) => e.owner !== 'root/root')).toEqual([]);
    expect(readFileSync(path.join(result.stage!, 'usr/lib/systemd/system/hostkit-agent.service'), 'utf8')).toBe(packagedAgentUnit());
  });

  it('installs the agent unit disabled: no symlink under a *.wants or *.requires folder', () => {
    expect([...contents.keys()].filter((p) => /\.(wants|requires)\//.test(p) || contents.get(p)!.mode.startsWith('l'))).toEqual([]);
    expect([...contents.keys()].filter((p) => p.startsWith('./etc/') && p !== './etc/' && p !== './etc/hostkit/')).toEqual([]);
  });

  it('ships exactly the production dependencies: no devDependency, no test or build tool', () => {
    const shipped = new Set([...contents.keys()].filter((p) => /\/node_modules\/(@[^/]+\/)?[^/@]+\/$/.test(p)).map((p) => p.slice(APP.length + 1, -1)));
    const production = productionPackages(lock).map((p) => p.path);
    expect(production.filter((p) => !shipped.has(p))).toEqual([]);
    expect(devOnlyPackages(lock).filter((p) => shipped.has(p))).toEqual([]);
    for (const tool of ['typescript', 'vitest', 'eslint', 'prettier', 'node', '@types/node']) expect(shipped.has(`node_modules/${tool}`), tool).toBe(false);
    expect(
      [...contents.keys()].filter((p) => p.startsWith('./usr/lib/hostkit/lib/dist/') && !p.startsWith(`${APP}/dist/reconciler/`) && p !== `${APP}/dist/`),
    ).toEqual([]);
    expect([...contents.keys()].filter((p) => /\.(d\.[cm]?ts|map)$/.test(p))).toEqual([]);
  });

  it('is of a sane size: the runtime, and dependencies without their type declarations', () => {
    const modules = [...contents].filter(([p]) => p.startsWith(`${APP}/node_modules/`)).reduce((sum, [, e]) => sum + e.size, 0);
    expect(modules / 1e6).toBeGreaterThan(5);
    expect(modules / 1e6).toBeLessThan(60);
    const installed = Number(field('Installed-Size')) * 1024;
    expect(installed).toBeGreaterThan(modules);
    // With the real runtime (126 MB for Node 24) it stays under 250 MB.
    expect((installed + statSync(path.join(ROOT, 'node_modules/node/bin/node')).size) / 1e6).toBeLessThan(250);
  });

  it('the staged CLI runs from its own tree: --version and validate, with the production dependencies only', () => {
    const node = process.execPath;
    const cli = path.join(result.stage!, 'usr/lib/hostkit/lib/dist/reconciler/cli.js');
    const run = (...args: string[]) => execFileSync(node, [...NODE_FLAGS, cli, ...args], { encoding: 'utf8', cwd: out });
    expect(run('--version').trim()).toBe(pkg.version);
    expect(run('validate', '--repo', path.join(ROOT, 'example-repo'))).toMatch(/^\d+ manifests valid/m);
  });
});

describe('scripts/package/runtime', () => {
  it('refuses a node binary of another architecture, or none', async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'hostkit-node-'));
    try {
      await expect(findNode({ root: ROOT, arch: 'arm64', binary: path.join(ROOT, 'node_modules/node/bin/node'), scratch })).rejects.toThrow(
        /^Expected a linux-arm64 node binary at .*, got an ELF binary for machine 62$/,
      );
      await expect(findNode({ root: ROOT, arch: 'x64', binary: path.join(ROOT, 'package.json'), scratch })).rejects.toThrow('got no ELF binary');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('says so clearly when another architecture’s runtime is not obtainable offline', async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'hostkit-node-'));
    const other = process.arch === 'arm64' ? 'x64' : 'arm64';
    try {
      const env = { ...process.env, npm_config_cache: path.join(scratch, 'empty-cache'), npm_config_offline: 'true' };
      await expect(findNode({ root: ROOT, arch: other, scratch, env })).rejects.toThrow(
        new RegExp(`^No Node\\.js \\d+\\.\\d+\\.\\d+ binary for linux-${other}: \`npm pack node-linux-${other}@[\\d.]+\` failed[^]*pass --node PATH`),
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 30_000);
});
