import { chmod, chown, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../reconciler/cli.js';
import { commandPath, HELP } from '../reconciler/commands/help.js';
import { renderRunsMarkdown } from '../reconciler/commands/runs-markdown.js';
import { flockFile } from '../reconciler/hosts/flock.js';
import { defaultCacheDir } from '../reconciler/manifests/parse-cache.js';
import { directoryManifest, fileManifest, HOST_YAML, scratchRoot, TESTER_ACCOUNT, writeRepo } from './support/fixtures.js';
import { manifestYaml } from './support/manifests.js';

// Options every command shares (--help examples, -q, --no-color), markdown
// output of validate and runs, and where the parse cache is (not) written.

const CLI = path.resolve('dist/reconciler/cli.js');
let tmp: string;

function hostkit(args: string[], env: Record<string, string> = {}, options: { cwd?: string; uid?: number } = {}) {
  const environment = { NO_COLOR: '1', HOSTKIT_CACHE_DIR: path.join(tmp, 'cache'), ...env };
  const argv = ['node', CLI, ...args];
  // As another user: setpriv keeps the environment and drops to that uid and gid.
  const [file, ...rest] = options.uid === undefined ? argv : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', '--', ...argv];
  return execa(file!, rest, { reject: false, env: environment, ...(options.cwd ? { cwd: options.cwd } : {}) });
}

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

function helpOf(cmd: Command): string {
  let out = '';
  cmd.configureOutput({ writeOut: (s) => (out += s), getOutHelpWidth: () => 80 });
  cmd.outputHelp();
  return out;
}

// /srv/app's mode as written: a number is an error.
const app = (mode?: string | number) =>
  manifestYaml(TESTER_ACCOUNT, directoryManifest('app', '/srv/app', mode), fileManifest('conf', '/srv/app/app.conf', 'x=1\n'));
const APP = app();
// Placed on no host: a warning, not an error.
const NOWHERE = manifestYaml({ ...directoryManifest('nowhere', '/srv/nowhere'), on: { matchLabels: { role: 'none' } } });
const asRoot = process.geteuid?.() === 0;

// A scratch directory standing for the host's root, removed after `fn`.
async function withScratch(fn: (root: string) => Promise<void>): Promise<void> {
  const scratch = await scratchRoot();
  try {
    await fn(scratch.root);
  } finally {
    await scratch.cleanup();
  }
}

describe('hostkit CLI: options of every command', () => {
  let repo: string;
  let warned: string;
  let broken: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'hostkit-cli-options-'));
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': APP });
    warned = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': APP, 'projects/nowhere.yaml': NOWHERE });
    broken = await writeRepo({
      'hosts/test-1.yaml': HOST_YAML,
      'projects/app.yaml': app(750),
      'projects/nowhere.yaml': NOWHERE,
    });
  });
  afterAll(async () => {
    for (const dir of [tmp, repo, warned, broken]) await rm(dir, { recursive: true, force: true });
  });

  describe('--help', () => {
    const program = buildProgram();
    const commands = allCommands(program);

    it('of every registered command ends with examples, and each has an entry in commands/help.ts', () => {
      expect(commands.length).toBeGreaterThanOrEqual(12);
      for (const cmd of commands) {
        const name = commandPath(cmd) || 'hostkit';
        expect(HELP[commandPath(cmd)], name).toBeDefined();
        expect(helpOf(cmd), name).toMatch(/\nExamples:\n {2}\$ (sudo )?hostkit /);
      }
    });

    it('keeps the main help to one line per command, and shows -q and --no-color with every command', async () => {
      const r = await hostkit(['--help']);
      const list = r.stdout
        .slice(r.stdout.indexOf('Commands:\n') + 'Commands:\n'.length)
        .split('\n\n')[0]!
        .split('\n');
      expect(list.length).toBe(program.commands.length + 1); // and `help`
      for (const line of list) expect(line).toMatch(/^ {2}[a-z]/);
      expect((await hostkit(['plan', '--help'])).stdout).toMatch(/Global Options:[\s\S]*-q, --quiet[\s\S]*--no-color[\s\S]*Examples:/);
    });
  });

  describe('--no-color', () => {
    it('turns colour off even when FORCE_COLOR asks for it, before or after the command', async () => {
      const args = ['validate', '--repo', broken];
      const env = { NO_COLOR: '', FORCE_COLOR: '1' };
      expect((await hostkit(args, env)).stdout).toContain('\u001b[');
      expect((await hostkit([...args, '--no-color'], env)).stdout).not.toContain('\u001b[');
      expect((await hostkit(['--no-color', ...args], env)).stdout).not.toContain('\u001b[');
    });
  });

  describe('the commands run on a host, without --repo', () => {
    it('stop with one line when the current directory is not a config repository, and read it when it is', async () => {
      const bare = await mkdtemp(path.join(tmp, 'not-a-repo-'));
      const runs: string[][] = [
        ['status', '--host', 'test-1'],
        ['health', '--host', 'test-1'],
        ['logs', 'app', '--host', 'test-1'],
        ['rollback', '--project', 'app', '--to', '20261207T101500Z-1a2b3c4d5e6f-b9c8', '--host', 'test-1'],
      ];
      for (const args of runs) {
        const r = await hostkit(args, {}, { cwd: bare });
        expect([r.exitCode, r.stdout], args.join(' ')).toEqual([1, '']);
        expect(r.stderr.trim().split('\n')[0], args.join(' ')).toBe(
          `error: ${bare} is not a config repository (no hosts/ or projects/ folder); run hostkit ${args[0]} from the repository or pass --repo DIR: a clone of it`,
        );
      }
      // rollback --last needs no repository; from the repository the command reads it (a release the host does not keep).
      expect((await hostkit(['rollback', '--last', '--dry-run', '--state-dir', path.join(bare, 'state')], {}, { cwd: bare })).stderr).not.toContain(
        'config repository',
      );
      const inRepo = await hostkit(runs[3]!.concat('--state-dir', path.join(bare, 'state')), {}, { cwd: repo });
      expect(inRepo.stderr).not.toContain('is not a config repository');
      expect(inRepo.exitCode).toBe(2);
    });
  });

  describe('-q', () => {
    it('validate -q: nothing when valid (warnings left out), errors only when not', async () => {
      expect((await hostkit(['validate', '--repo', warned])).stdout).toContain('warning: placement matches no host');
      const quiet = await hostkit(['validate', '-q', '--repo', warned]);
      expect([quiet.exitCode, quiet.stdout, quiet.stderr]).toEqual([0, '', '']);
      const errors = await hostkit(['-q', 'validate', '--repo', broken]);
      expect(errors.exitCode).toBe(1);
      expect(errors.stdout).toContain('projects/app.yaml:17:9: error: wrong type (at /spec/mode)');
      expect(errors.stdout).toContain('1 error in');
    });

    it('the data asked for is still printed; log lines below error are not, whatever HOSTKIT_LOG_LEVEL says; --log-level still wins', () =>
      withScratch(async (root) => {
        const args = ['plan', '--repo', repo, '--host', 'test-1', '--root', root, '-o', 'json'];
        expect((await hostkit(args, { HOSTKIT_LOG_LEVEL: 'debug' })).stderr).toContain('"msg":"observed"');
        const quiet = await hostkit(['-q', ...args], { HOSTKIT_LOG_LEVEL: 'debug' });
        expect(quiet.stderr).toBe('');
        expect(JSON.parse(quiet.stdout)).toMatchObject({ host: 'test-1', summary: { create: 2 } });
        expect((await hostkit(['-q', ...args, '--log-level', 'debug'])).stderr).toContain('"msg":"observed"');
      }));

    it('waiting for the run lock is not said, the error that ends the wait is', () =>
      withScratch(async (root) => {
        await mkdir(path.join(root, 'var/lib/hostkit'), { recursive: true });
        const held = await flockFile(path.join(root, 'var/lib/hostkit/run.lock'), 0);
        if (!held) throw new Error('could not take the lock for the test');
        try {
          const args = ['reconcile', '--repo', repo, '--host', 'test-1', '--root', root, '--lock-timeout', '1s'];
          expect((await hostkit(args)).stderr).toContain('hostkit: waiting up to 1s for the run lock');
          const quiet = await hostkit(['-q', ...args]);
          expect([quiet.exitCode, quiet.stderr.includes('waiting'), quiet.stderr.includes('[RUN_LOCKED]')]).toEqual([3, false, true]);
        } finally {
          await held.release();
        }
      }));
  });

  describe('-o markdown', () => {
    it('validate: a verdict line, then each problem with FILE:LINE:COL and its field', async () => {
      const ok = await hostkit(['validate', '--repo', warned, '-o', 'markdown']);
      expect(ok.exitCode).toBe(0);
      expect(ok.stdout).toMatch(
        /^### HostKit validation of `.*`\n\n✅ 5 manifests valid, 1 warning\.\n\n- \*\*warning\*\* `projects\/nowhere\.yaml:5:\d+`: placement matches no host \(at `\/spec\/placement\/selector`\): /,
      );
      const bad = await hostkit(['validate', '--repo', broken, '-o', 'markdown']);
      expect(bad.exitCode).toBe(1);
      expect(bad.stdout).toContain('❌ **1 error**. Nothing was applied.');
      expect(bad.stdout).toContain('- **error** `projects/app.yaml:17:9`: wrong type (at `/spec/mode`): ');
    });

    it('runs: a table of the runs recorded on the host', () =>
      withScratch(async (root) => {
        const empty = await hostkit(['runs', '--root', root, '-o', 'markdown']);
        expect(empty.stdout).toBe('### HostKit runs in `/var/lib/hostkit/runs`\n\nNo runs recorded.');
        expect((await hostkit(['reconcile', '--repo', repo, '--host', 'test-1', '--root', root])).exitCode).toBe(0);
        const r = await hostkit(['runs', '--root', root, '-o', 'markdown']);
        expect(r.exitCode).toBe(0);
        expect(r.stdout).toMatch(
          /\| Run \| Type \| Status \| Commit \| What \|\n\|---\|---\|---\|---\|---\|\n\| `\d{8}T\d+Z-[0-9a-f]{6}` \| apply \| ✅ applied \| - \| 2 change\(s\) \|/,
        );
        expect((await hostkit(['runs', '--root', root, '-o', 'markdown', '--verbose'])).stdout).toMatch(/<details><summary><code>\d{8}T/);
      }));

    it('runs: failures, quarantined commits, paused projects and held releases, with pipes escaped', () => {
      const md = renderRunsMarkdown(
        '/var/lib/hostkit',
        [
          {
            id: 'r1',
            type: 'apply',
            status: 'rolled-back',
            commit: 'a'.repeat(40),
            startedAt: 't',
            changes: 3,
            failed: { id: 'unit/hk-x.service', error: 'exit 1 | boom\nmore' },
          },
        ],
        {
          quarantined: [{ commit: 'b'.repeat(40), at: 't0', reason: 'health check failed', projects: ['x'] }],
          paused: [{ project: 'x', at: 't1', failures: 3, fingerprint: 'f', reason: 'r' }],
          held: [{ project: 'y', release: '20261207T101500Z-1a2b3c4d5e6f-b9c8', at: 't2', specDigest: 'd' }],
        },
      );
      expect(md).toContain('| `r1` | apply | ❌ rolled-back | `aaaaaaaaaaaa` | 3 change(s); failed at `unit/hk-x.service`: exit 1 \\| boom |');
      expect(md).toContain('- `bbbbbbbbbbbb` since t0: health check failed');
      expect(md).toContain('- `x` since t1, after 3 failed applies');
      expect(md).toContain('- `y` on `20261207T101500Z-1a2b3c4d5e6f-b9c8` since t2');
    });
  });

  describe('the parse cache', () => {
    // The pack file a validate of `dir` writes (parse-cache.ts: one per repository folder).
    const packName = (dir: string) => `parse-${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 16)}.json`;

    it.runIf(asRoot)('as root with the HOME and XDG_CACHE_HOME of another user (sudo -E): nothing is written in that home', async () => {
      const alice = path.join(tmp, 'alice');
      await mkdir(alice);
      await chown(alice, 4242, 4242);
      const env = { HOME: alice, XDG_CACHE_HOME: path.join(alice, '.cache'), HOSTKIT_CACHE_DIR: '' };
      const expected = defaultCacheDir({ env });
      expect(expected).toBeDefined();
      expect(expected!.startsWith(alice)).toBe(false);
      const pack = path.join(expected!, packName(repo));
      try {
        const r = await hostkit(['validate', '--repo', repo], env);
        expect([r.exitCode, r.stderr]).toEqual([0, '']);
        expect(await readdir(alice)).toEqual([]);
        await expect(stat(pack)).resolves.toBeTruthy(); // cached where root's cache belongs instead
      } finally {
        await rm(pack, { force: true });
      }
    });

    it.runIf(asRoot)('a user who cannot write where the cache would go: validate works, says nothing of it, and writes nothing', async () => {
      const home = path.join(tmp, 'locked-home'); // root's, 0755: not writable by nobody
      await mkdir(home);
      const readable = await mkdtemp(path.join(os.tmpdir(), 'hostkit-nobody-'));
      await chmod(readable, 0o755);
      const visible = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': APP }, readable);
      try {
        for (const env of [
          { HOME: home, HOSTKIT_CACHE_DIR: '' },
          { HOME: home, HOSTKIT_CACHE_DIR: path.join(home, 'cache') },
        ]) {
          const r = await hostkit(['validate', '--repo', visible], env, { uid: 65534 });
          expect([r.exitCode, r.stderr, r.stdout]).toEqual([0, '', '4 manifests valid.']);
          expect(await readdir(home)).toEqual([]);
        }
      } finally {
        await rm(readable, { recursive: true, force: true });
      }
    });
  });
});
