import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { directoryManifest, envFileManifest, fileManifest, gitCommitAll, HOST_YAML, scratchRoot, TESTER_ACCOUNT, writeRepo } from './support/fixtures.js';
import { manifestYaml, type ManifestInput } from './support/manifests.js';

const CLI = path.resolve('dist/reconciler/cli.js');
const SECRET = 'Pr0gress-secret-value-5a4b3c';
const CACHE = path.join(os.tmpdir(), `hostkit-cli-progress-cache-${process.pid}`);

// The CLI as a script or CI runs it: stdout and stderr are pipes, not a terminal, and no colour is forced
// (the test runner's own FORCE_COLOR is not passed on), so only the TTY check decides the colour.
function hostkit(args: string[], extra: Record<string, string> = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'FORCE_COLOR' && k !== 'NO_COLOR'));
  return execa('node', [CLI, ...args], { reject: false, extendEnv: false, env: { ...env, HOSTKIT_CACHE_DIR: CACHE, HK_TEST_TOKEN: SECRET, ...extra } });
}

// tester's /srv/app with app.conf (`conf`) and an env file, and any `more`.
const manifests = (conf = 'x=1\n', ...more: ManifestInput[]) =>
  manifestYaml(
    TESTER_ACCOUNT,
    directoryManifest('app', '/srv/app'),
    fileManifest('conf', '/srv/app/app.conf', conf),
    envFileManifest('HK_TEST_TOKEN'),
    ...more,
  );
const MANIFESTS = manifests();

describe('hostkit reconcile --progress (test/cli-progress)', () => {
  let root: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ root, cleanup } = await scratchRoot()));
  afterEach(async () => cleanup());

  it('-o json: one JSON document on stdout, and on stderr a start and an end line per step, plain, with no secret', async () => {
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': MANIFESTS });
    await gitCommitAll(repo);
    const r = await hostkit(['reconcile', '--repo', repo, '--host', 'test-1', '--root', root, '--progress', '-o', 'json']);
    expect(r.exitCode).toBe(0);
    const report = JSON.parse(r.stdout) as { status: string; applied: { id: string; action: string }[] };
    expect(report.status).toBe('applied');
    expect(report.applied.map((s) => s.id)).toEqual(['directory/srv/app', 'envfile/srv/app/app.env', 'file/srv/app/app.conf']);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(2 * report.applied.length);
    report.applied.forEach((s, i) => {
      expect(lines[2 * i]).toBe(`start  ${s.action.padEnd(8)} ${s.id}`);
      expect(lines[2 * i + 1]).toMatch(new RegExp(`^done {3}${s.action} +${s.id.replaceAll('/', '\\/')} \\(\\d+\\.\\ds\\)$`));
    });
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('\u001b');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(await readFile(path.join(root, 'srv/app/app.env'), 'utf8')).toContain(SECRET);
  });

  it('FORCE_COLOR colours the plain lines (still no carriage return); NO_COLOR wins over it', async () => {
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': MANIFESTS });
    const args = ['reconcile', '--repo', repo, '--host', 'test-1', '--progress', '-o', 'json'];
    const forced = await hostkit([...args, '--root', root], { FORCE_COLOR: '1' });
    expect(forced.exitCode).toBe(0);
    expect(forced.stderr).toContain('\u001b[32mdone  \u001b[39m create   directory/srv/app');
    expect(forced.stderr).not.toContain('\r');
    expect(JSON.parse(forced.stdout)).toMatchObject({ status: 'applied' });
    const other = await scratchRoot();
    try {
      const plain = await hostkit([...args, '--root', other.root], { FORCE_COLOR: '1', NO_COLOR: '1' });
      expect(plain.stderr).toContain('done   create   directory/srv/app');
      expect(plain.stderr).not.toContain('\u001b');
    } finally {
      await other.cleanup();
    }
  });

  it('without a terminal and without --progress, stderr stays as it was: empty', async () => {
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': MANIFESTS });
    const r = await hostkit(['reconcile', '--repo', repo, '--host', 'test-1', '--root', root, '-o', 'json']);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'applied' });
    expect(r.stderr).toBe('');
  });

  it('-o yaml, a run that fails: the failed step, then the rollback steps marked as such, and still one YAML document on stdout', async () => {
    const first = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': MANIFESTS });
    expect((await hostkit(['reconcile', '--repo', first, '--host', 'test-1', '--root', root])).exitCode).toBe(0);
    // A file whose directory is a file on the host: its apply fails after app.conf's update applied.
    await mkdir(path.join(root, 'srv'), { recursive: true });
    await writeFile(path.join(root, 'srv/blocked'), 'not a directory');
    const next = manifests('x=2\n', fileManifest('blocked', '/srv/blocked/b.conf', 'y\n'));
    const repo = await writeRepo({ 'hosts/test-1.yaml': HOST_YAML, 'projects/app.yaml': next });
    const r = await hostkit(['reconcile', '--repo', repo, '--host', 'test-1', '--root', root, '--progress', '-o', 'yaml', '--log-level', 'silent']);
    expect(r.exitCode).toBe(1);
    const docs = parseAllDocuments(r.stdout);
    expect(docs).toHaveLength(1);
    expect((docs as { toJS(): unknown }[])[0]!.toJS()).toMatchObject({ status: 'rolled-back', failed: { id: 'file/srv/blocked/b.conf' } });
    expect(r.stderr.split('\n').filter((l) => l !== '')).toEqual([
      'start  update   file/srv/app/app.conf',
      expect.stringMatching(/^done {3}update {3}file\/srv\/app\/app\.conf \(\d+\.\ds\)$/),
      'start  create   file/srv/blocked/b.conf',
      expect.stringMatching(/^failed create {3}file\/srv\/blocked\/b\.conf \(\d+\.\ds\)$/),
      'rolling back: file/srv/blocked/b.conf failed; undoing 1 change(s), newest first',
      'start  rollback update   file/srv/app/app.conf',
      expect.stringMatching(/^done {3}rollback update {3}file\/srv\/app\/app\.conf \(\d+\.\ds\)$/),
      expect.stringMatching(/^rolled back in \d+\.\ds$/),
    ]);
    expect(await readFile(path.join(root, 'srv/app/app.conf'), 'utf8')).toBe('x=1\n');
  });
});
