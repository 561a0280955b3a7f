import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KEEP_RUNS } from '../reconciler/apply/journal.js';
import { NODE_FLAGS } from '../reconciler/core/runtime.js';
import { flockFile } from '../reconciler/hosts/flock.js';
import {
  directoryManifest,
  fileManifest,
  gitCommitAll,
  HOST_YAML,
  scratchRoot,
  TEST_HOST,
  TESTER_ACCOUNT,
  testHostYaml,
  writeRepo,
} from './support/fixtures.js';
import { manifestYaml, type ManifestInput } from './support/manifests.js';

const CLI = path.resolve('dist/reconciler/cli.js');
const SECRET = 'S3cr3t-token-value-9f8e7d';

const CACHE = path.join(os.tmpdir(), `hostkit-cli-cache-${process.pid}`);

function hostkit(args: string[], env: Record<string, string> = {}) {
  return execa('node', [CLI, ...args], { reject: false, env: { NO_COLOR: '', HOSTKIT_CACHE_DIR: CACHE, ...env }, extendEnv: true });
}

// tester's account, /srv/app, a file and an env file in it, placed on `on`.
function primitives(o: { on?: string[]; mode?: string | number; confPath?: string } = {}): string {
  const env: ManifestInput = {
    kind: 'EnvFile',
    name: 'env',
    on: [TEST_HOST],
    spec: { path: '/srv/app/app.env', owner: 'tester', group: 'tester', secrets: { TOKEN: { env: 'HK_CLI_TOKEN' } } },
  };
  const docs = [TESTER_ACCOUNT, directoryManifest('app', '/srv/app', o.mode), fileManifest('conf', o.confPath ?? '/srv/app/app.conf', 'x=1\n'), env];
  return manifestYaml(...docs.map((d) => ({ ...d, on: o.on ?? d.on })));
}

const PRIMITIVES = primitives();

describe('hostkit CLI', () => {
  let repo: string;
  let commit: string;
  let root: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': PRIMITIVES });
    commit = await gitCommitAll(repo);
    ({ root, cleanup } = await scratchRoot());
  });
  afterAll(async () => cleanup());

  it('starts with the runtime V8 flags wherever it is launched: the shebang npm links, and the npm scripts', async () => {
    const shebang = (await readFile(CLI, 'utf8')).split('\n', 1)[0]!;
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    // As the kernel runs it: env splits the line, and node accepts the flags.
    const r = await execa('/usr/bin/env', ['-S', `${shebang.slice('#!/usr/bin/env -S '.length)} ${CLI} --version`], { reject: false });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> };
    for (const script of ['hostkit', 'dry-run']) expect(pkg.scripts[script]).toContain(`node ${NODE_FLAGS.join(' ')} dist/reconciler/cli.js`);
  });

  it('the help of reconcile and runs states the number of runs an apply keeps', async () => {
    for (const cmd of ['reconcile', 'runs']) expect((await hostkit([cmd, '--help'])).stdout.replace(/\s+/g, ' ')).toContain(`(default: ${DEFAULT_KEEP_RUNS}`);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    const r = await hostkit(['--version']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it.each(['validate', 'reconcile', 'plan'])('%s --help describes the command and its options', async (cmd) => {
    const r = await hostkit([cmd, '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`Usage: hostkit ${cmd}`);
    expect(r.stdout).toContain('--repo <dir>');
    expect(r.stdout).toMatch(/-o, --output <format>/);
  });

  it('validate passes example-repo', async () => {
    const r = await hostkit(['validate', '--repo', 'example-repo']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^\d+ manifests valid/m);
  });

  it('validate reports FILE:LINE:COL: error: SUMMARY and exits 1', async () => {
    const bad = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': primitives({ mode: 750 }) });
    const r = await hostkit(['validate', '--repo', bad]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('projects/app.yaml:17:9: error: wrong type (at /spec/mode)');
    expect(r.stdout).toContain('spec.mode must be a quoted octal string such as "0640"');
    const json = await hostkit(['validate', '--repo', bad, '-o', 'json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      valid: false,
      errors: 1,
      diagnostics: [{ summary: 'wrong type', location: { file: 'projects/app.yaml', line: 17 } }],
    });
  });

  it('plan -o json names the host, the commit, each change and the counts', async () => {
    const r = await hostkit(['plan', '--repo', repo, '--host', 'test-1', '--root', root, '-o', 'json'], { HK_CLI_TOKEN: SECRET });
    expect(r.exitCode).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan.host).toBe('test-1');
    expect(plan.commit).toBe(commit);
    expect(plan.changes.map((c: { id: string; action: string }) => [c.id, c.action])).toEqual([
      ['account/tester', 'noop'],
      ['directory/srv/app', 'create'],
      ['envfile/srv/app/app.env', 'create'],
      ['file/srv/app/app.conf', 'create'],
    ]);
    expect(plan.summary).toEqual({ create: 3, update: 0, replace: 0, delete: 0, noop: 1, unsupported: 0, errors: 0, warnings: 0 });
  });

  it('no output format, log line or apply report carries a secret value', async () => {
    const outputs: string[] = [];
    for (const format of ['text', 'json', 'yaml', 'markdown']) {
      const r = await hostkit(['plan', '--repo', repo, '--host', 'test-1', '--root', root, '-o', format, '--log-level', 'trace'], { HK_CLI_TOKEN: SECRET });
      outputs.push(r.stdout, r.stderr);
    }
    expect(outputs.join('\n')).not.toContain(SECRET);
    expect(outputs.join('\n')).toContain('TOKEN=(redacted) hmac:');
  });

  it('--exit-code: 2 while changes are pending, 0 after apply, 2 again after drift by hand', async () => {
    const env = { HK_CLI_TOKEN: SECRET };
    const base = ['--repo', repo, '--host', 'test-1', '--root', root];
    expect((await hostkit(['reconcile', '--dry-run', '--exit-code', ...base], env)).exitCode).toBe(2);
    const applied = await hostkit(['reconcile', ...base], env);
    expect(applied.exitCode).toBe(0);
    expect(applied.stdout).toContain('Applied 3 change(s) to test-1.');
    expect(applied.stdout + applied.stderr).not.toContain(SECRET);
    expect(await readFile(path.join(root, 'srv/app/app.env'), 'utf8')).toContain(SECRET);
    const again = await hostkit(['reconcile', ...base], env);
    expect(again.stdout).toContain('Nothing to apply: the host matches the manifests.');
    expect((await hostkit(['plan', '--exit-code', ...base], env)).exitCode).toBe(0);
    await writeFile(path.join(root, 'srv/app/app.conf'), 'x=2\n');
    const drift = await hostkit(['plan', '--exit-code', ...base], env);
    expect(drift.exitCode).toBe(2);
    expect(drift.stdout).toContain('~ file/srv/app/app.conf');
  });

  it('an unknown host is an error that lists the known ones', async () => {
    const r = await hostkit(['plan', '--repo', repo, '--host', 'nope']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('No Host manifest named "nope"');
    expect(r.stderr).toContain('known hosts: test-1');
  });

  it('a missing repository is an error that says what to pass', async () => {
    const r = await hostkit(['validate', '--repo', '/nonexistent/repo']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('hostkit: error: The config repository /nonexistent/repo does not exist');
  });

  it('an invalid repository is never planned or applied', async () => {
    const bad = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': primitives({ confPath: '/srv/app/../../etc/passwd' }) });
    const r = await hostkit(['reconcile', '--repo', bad, '--host', 'test-1', '--root', root]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('error: path escapes its root');
    expect(r.stderr).toContain('nothing was planned or applied');
  });

  it('markdown output is ready for a pull-request comment', async () => {
    const r = await hostkit(['plan', '--repo', repo, '--host', 'test-1', '--root', root, '-o', 'markdown'], { HK_CLI_TOKEN: SECRET });
    expect(r.stdout).toMatch(/^### HostKit plan for `test-1` at `[0-9a-f]{12}`/);
  });

  describe('between commits: the run lock and the right machine', () => {
    const twoHosts = () =>
      writeRepo({
        'hosts/test-1.yaml': HOST_YAML,
        'hosts/test-2.yaml': testHostYaml({ name: 'test-2', labels: { role: 'other' } }),
        'projects/app.yaml': primitives({ on: ['test-1', 'test-2'] }),
      });

    it('a reconcile waits for the run lock another process holds (saying so), or exits 3 at once with --lock-timeout 0, changing nothing', async () => {
      const fresh = await scratchRoot();
      try {
        const lockDir = path.join(fresh.root, 'var/lib/hostkit');
        await mkdir(lockDir, { recursive: true });
        const held = await flockFile(path.join(lockDir, 'run.lock'), 0);
        if (!held) throw new Error('could not take the lock for the test');
        const args = ['reconcile', '--repo', repo, '--host', 'test-1', '--root', fresh.root];
        const refused = await hostkit([...args, '--lock-timeout', '0'], { HK_CLI_TOKEN: SECRET });
        expect(refused.exitCode).toBe(3);
        expect(refused.stderr).toContain('Another run holds the lock /var/lib/hostkit/run.lock');
        expect(refused.stderr).toContain('[RUN_LOCKED]');
        await expect(stat(path.join(fresh.root, 'srv/app'))).rejects.toThrow();
        const waiting = hostkit([...args, '--lock-timeout', '20s'], { HK_CLI_TOKEN: SECRET });
        await new Promise((r) => setTimeout(r, 1_500));
        await held.release();
        const r = await waiting;
        expect(r.stderr).toMatch(/hostkit: waiting up to 20s for the run lock \/var\/lib\/hostkit\/run\.lock on local:/);
        expect(r.exitCode).toBe(0);
        expect(r.stdout).toMatch(/Applied \d+ change\(s\) to test-1\./);
        expect((await hostkit(['reconcile', '--repo', repo, '--host', 'test-1', '--root', fresh.root, '--lock-timeout', 'soon'])).stderr).toContain(
          '--lock-timeout expects a duration such as 30s, 5m or 0, got "soon"',
        );
      } finally {
        await fresh.cleanup();
      }
    });

    it('an apply of another Host of the repository is refused with both names and nothing changes; a dry run plans it with a warning', async () => {
      const fresh = await scratchRoot('test-1');
      try {
        const two = await twoHosts();
        const refused = await hostkit(['reconcile', '--repo', two, '--host', 'test-2', '--root', fresh.root], { HK_CLI_TOKEN: SECRET });
        expect(refused.exitCode).toBe(1);
        expect(refused.stderr).toContain('The Host manifest "test-2" (hosts/test-2.yaml) does not name this machine');
        expect(refused.stderr).toContain('reports the hostname "test-1"');
        expect(refused.stderr).toContain('[HOST_MISMATCH]');
        await expect(stat(path.join(fresh.root, 'srv/app'))).rejects.toThrow();
        await expect(stat(path.join(fresh.root, 'var/lib/hostkit'))).rejects.toThrow();
        const dry = await hostkit(['reconcile', '--dry-run', '--repo', two, '--host', 'test-2', '--root', fresh.root], { HK_CLI_TOKEN: SECRET });
        expect(dry.exitCode).toBe(0);
        expect(dry.stdout).toContain('+ directory/srv/app');
        expect(dry.stdout).toMatch(/warning: host mismatch/);
        expect(dry.stdout).toContain('An apply would refuse it.');
        const forced = await hostkit(['reconcile', '--repo', two, '--host', 'test-2', '--root', fresh.root, '--host-mismatch-ok'], { HK_CLI_TOKEN: SECRET });
        expect(forced.exitCode).toBe(0);
        expect(await readFile(path.join(fresh.root, 'srv/app/app.conf'), 'utf8')).toBe('x=1\n');
      } finally {
        await fresh.cleanup();
      }
    });

    it('spec.hostnames names the machine under another hostname', async () => {
      const fresh = await scratchRoot('web-prod-7.example.net');
      try {
        const named = await writeRepo({
          'hosts/test-1.yaml': testHostYaml({ spec: { hostnames: ['web-prod-7'] } }),
          'projects/app.yaml': PRIMITIVES,
        });
        const r = await hostkit(['reconcile', '--repo', named, '--host', 'test-1', '--root', fresh.root], { HK_CLI_TOKEN: SECRET });
        expect(r.stderr).toBe('');
        expect(r.exitCode).toBe(0);
      } finally {
        await fresh.cleanup();
      }
    });
  });
});
